// Command arca is the Arca daemon and its small companion commands:
//
//	arca daemon [flags]   serves the Docker Engine API (arca daemon -h)
//	arca actors [flags]   prints the live actor tree
//	arca doctor [flags]   checks this machine for what Arca needs
//	arca version          version, commit and build date
//	arca help [COMMAND]   what each does
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Set at build time by the Makefile: -ldflags "-X main.version=... -X
// main.gitCommit=... -X main.buildDate=...".
var (
	version   = "0.1.0-dev"
	gitCommit = "unknown"
	buildDate = "unknown"
)

// command is one subcommand: its synopsis for `arca --help` and what its
// own -h says above the flags.
type command struct {
	name, args, summary, about string
	run                        func(args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"daemon", "[flags]", "serve the Docker Engine API on a unix socket",
			`Serves the Docker Engine API on --socket, every container in its own
machine of --driver. Under systemd it takes the socket systemd made
(socket activation, arca.socket) and tells systemd when it serves
(Type=notify). With --ui 127.0.0.1:PORT it also serves a live page of
the actor tree on that loopback address.`, runDaemon},
		{"actors", "[flags]", "print the daemon's live actor tree",
			`Asks the daemon on --socket (or DOCKER_HOST=unix://...) for its actor
tree: each actor's kind, state, restart count and a container's last
start, step by step.`, runActors},
		{"doctor", "[flags]", "check this machine for what Arca needs",
			`Checks KVM, the qemu guest kit and qemu, the cgroup layout, free disk
under --root, the daemon's socket, the docker CLI's context and its
buildx and compose plugins (on a Mac: the macOS version, the binary's
signature and virtualization entitlement, the arm64 kit). Each line is
OK, WARN or FAIL, with what to do; the exit status is 1 if any check
fails. With --full it then drives the daemon through the docker CLI
(the arca context): an image pulled, a container run and an exec in one,
two containers on a user network reaching each other by name, a local
and a block volume, a published port reached from the host; it prints a
report with versions, the host, and each step's result and time, to
paste into an issue, and removes what it made.`, runDoctor},
		{"version", "", "print version, commit and build date",
			`Prints the version, the commit it was built from and when.`, runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args and returns the exit status: 0, 1 for a failure,
// 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "--help", "-help", "-h":
		if len(args) > 1 && name == "help" {
			if c := lookup(args[1]); c != nil {
				return run([]string{args[1], "-h"}, stdout, stderr)
			}
			fmt.Fprintf(stderr, "arca: unknown command %q\n", args[1])
			return 2
		}
		usage(stdout)
		return 0
	case "--version", "-v":
		name = "version"
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "arca: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	err := c.run(args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errChecksFailed):
		return 1
	}
	fmt.Fprintf(stderr, "arca: %v\n", err)
	return 1
}

// errUsage: the flag package has already said what was wrong.
var errUsage = errors.New("usage")

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "arca runs every Docker container in a machine of its own.\n\nusage: arca COMMAND [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "help", "this, or a command's own help (arca help daemon, arca daemon -h)")
	fmt.Fprintf(w, "\nPoint the docker CLI at the daemon with `docker context use arca` (made by\nmake install) or DOCKER_HOST=unix://%s.\n", defaultSocket)
}

// newFlags is a subcommand's flag set, whose -h prints what the command
// does and its flags.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		c := lookup(name)
		fmt.Fprintf(w, "usage: arca %s %s\n\n%s\n", c.name, c.args, c.about)
		if hasFlags(fs) {
			fmt.Fprintf(w, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parse parses args, mapping a bad flag to errUsage (the flag package
// has printed it) and -h to flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return errUsage
}

func runVersion(args []string) error {
	fs := newFlags("version")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "arca version: unexpected %s\n", strings.Join(fs.Args(), " "))
		return errUsage
	}
	fmt.Print(versionText())
	return nil
}

func versionText() string {
	return fmt.Sprintf("arca %s\n  commit: %s\n  built:  %s\n  go:     %s %s/%s\n",
		version, gitCommit, buildDate, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
