// Command arca is the Arca daemon and its small companion commands:
//
//	arca daemon --socket PATH --root DIR --driver auto|sandbox|qemu|vz
//	arca actors [--socket PATH]     prints the live actor tree
//	arca version
package main

import (
	"fmt"
	"os"
)

// Set at build time with -ldflags "-X main.version=...".
var (
	version   = "0.1.0-dev"
	gitCommit = "unknown"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "daemon":
		err = runDaemon(os.Args[2:])
	case "actors":
		err = runActors(os.Args[2:])
	case "version", "--version", "-v":
		fmt.Printf("arca %s (%s)\n", version, gitCommit)
	case "help", "--help", "-h":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "arca: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "arca: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  arca daemon [--socket PATH] [--root DIR] [--driver auto|sandbox|qemu|vz] [--agent PATH]
  arca actors [--socket PATH] [--json]
  arca version
`)
}
