//go:build linux

// Command arca-agent is PID 1 inside every Arca machine. Build it static:
// CGO_ENABLED=0 go build ./cmd/arca-agent. The work is in guest/agent.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/arcavm/arca/guest/agent"
)

func main() {
	if agent.IsStage() {
		agent.RunStage() // a container's process on its way in; never returns
	}
	stream := flag.String("stream", "fd:3", "the host's byte stream: fd:N, vsock:PORT or file:PATH")
	runDir := flag.String("run-dir", agent.DefaultRunDir, "the agent's own directory (a tmpfs is mounted on it)")
	powerOff := flag.Bool("poweroff", false, "power the machine off on exit (a VM's init; exiting would panic the kernel)")
	vmInit := flag.Bool("vm", false, "boot a VM from a VM driver's initramfs first (kernel filesystems, modules, disks, the stream the kernel command line names or the virtio port); implies -poweroff")
	args := os.Args[1:]
	if os.Getpid() == 1 && slices.Contains(args, "-vm") {
		// A VM's init, its arguments from the kernel command line: the
		// kernel hands init the parameters it does not know (those
		// without a dot or "="), in front of ours. They are not ours, and
		// flag parsing would stop at the first and miss -vm. (A VM's
		// agent takes its settings from the command line, as flags in
		// -name=value form or as arca.* parameters.)
		args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return !strings.HasPrefix(a, "-") })
	}
	flag.CommandLine.Parse(args)

	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", os.Getpid())
	var err error
	cfg := agent.Config{Stream: *stream, RunDir: *runDir, Log: log}
	if *vmInit {
		*powerOff = true
		var boot agent.VMBoot
		boot, err = agent.VMInit(log)
		cfg.Stream, cfg.Resume = boot.Stream, boot.Resume
	}
	if err == nil {
		err = agent.Run(context.Background(), cfg)
	}
	code := 0
	if err != nil {
		log.Error("agent stopped", "err", err)
		code = 1
	}
	if *powerOff {
		if err := agent.PowerOff(); err != nil {
			log.Error("power off", "err", err)
		}
	}
	os.Exit(code)
}
