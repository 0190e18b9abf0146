package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/qemu"
	"github.com/arcavm/arca/guest/vm/sandbox"
	"golang.org/x/sys/unix"
)

// defaultSocket is where the daemon serves and `arca actors` asks.
const defaultSocket = "/var/run/arca.sock"

// hostPaths are the daemon's default places on this platform.
type hostPaths struct{ socket, root, kit, kitHow string }

func defaultPaths() hostPaths {
	return hostPaths{socket: defaultSocket, root: "/var/lib/arca", kit: qemu.DefaultKit, kitHow: "make kit builds it"}
}

// selectDriver picks the guest driver. "auto" means the best one that
// really works here: qemu where KVM boots a guest, else the namespace
// sandbox. The note is what docker info shows beside the name.
func selectDriver(name string, o driverOptions) (vm.Driver, string, error) {
	log := o.Log
	qemuConfig := qemu.Config{Kit: o.Kit, Agent: o.Agent, Root: o.Root, ColdBoot: o.ColdBoot, Log: log}
	switch name {
	case "auto":
		if _, err := os.Stat(o.Kit); err == nil {
			d, err := qemu.New(context.Background(), qemuConfig)
			if err == nil && d.Acceleration() == "KVM" {
				log.Info("driver auto: KVM boots guests, using qemu")
				return d, d.Acceleration(), nil
			}
			log.Info("driver auto: KVM does not boot guests here, using sandbox", "err", err)
		} else {
			log.Info("driver auto: no qemu kit, using sandbox", "kit", o.Kit)
		}
		return newSandbox(o.Agent, o.Root), "namespaces", nil
	case "sandbox":
		return newSandbox(o.Agent, o.Root), "namespaces", nil
	case "qemu":
		d, err := qemu.New(context.Background(), qemuConfig)
		if err != nil {
			return nil, "", err
		}
		return d, d.Acceleration(), nil
	case "vz":
		return nil, "", fmt.Errorf("driver vz needs macOS (Apple's Virtualization framework); on Linux use qemu or sandbox")
	}
	return nil, "", fmt.Errorf("unknown driver %q (auto, sandbox, qemu or vz)", name)
}

// releaseStale undoes the block volume mounts, loop devices and cgroups a
// killed daemon's sandboxes left (see sandbox.ReleaseStaleDisks and
// ReleaseStaleCgroups).
func releaseStale(root string) error {
	return errors.Join(
		sandbox.ReleaseStaleDisks(filepath.Join(root, "volumes")),
		sandbox.ReleaseStaleCgroups(cgroupGroup(root)),
	)
}

// releaseOnStop removes the sandboxes' cgroup group of the daemon of
// root, which its start made (see sandbox.ReleaseCgroupGroup).
func releaseOnStop(root string) error {
	return sandbox.ReleaseCgroupGroup(cgroupGroup(root))
}

// releaseStaleMounts unmounts what a killed daemon left mounted below dir.
func releaseStaleMounts(dir string) error { return sandbox.ReleaseStaleMounts(dir) }

func newSandbox(agent, root string) *sandbox.Driver {
	d := sandbox.New(agent)
	d.UseCgroupGroup(cgroupGroup(root))
	return d
}

// cgroupGroup is where the sandboxes of the daemon of root keep their
// cgroups: its own, so that its start can clear what it left when killed
// without touching another daemon's.
func cgroupGroup(root string) string {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	sum := sha256.Sum256([]byte(abs))
	return "arca/" + hex.EncodeToString(sum[:6])
}

// markInheritedCloseOnExec keeps whatever the daemon inherited past its
// stdio from passing on to the processes it starts.
func markInheritedCloseOnExec() {
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
}
