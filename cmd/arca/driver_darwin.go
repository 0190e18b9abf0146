package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/vz"
)

// On a Mac everything lives under ~/.arca: the daemon runs as the user
// (the Virtualization framework needs no root), like Docker Desktop.
var defaultSocket = filepath.Join(homeDir(), ".arca", "arca.sock")

// hostPaths are the daemon's default places on this platform.
type hostPaths struct{ socket, root, kit, kitHow string }

func defaultPaths() hostPaths {
	home := homeDir()
	return hostPaths{
		socket: defaultSocket,
		root:   filepath.Join(home, ".arca", "root"),
		kit:    vz.DefaultKitDir(home),
		kitHow: "the arm64 kit; see docs/macos.md",
	}
}

func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	return "/tmp"
}

// selectDriver picks the guest driver: on macOS "auto" is vz, the only
// one that runs here. Its disks come from the project's own ext4 writer (a
// Mac has no mkfs.ext4). The note is what docker info shows beside the name.
func selectDriver(name string, o driverOptions) (vm.Driver, string, error) {
	switch name {
	case "auto", "vz":
		d, err := vz.New(context.Background(), vz.Config{Kit: o.Kit, Agent: o.Agent, Root: o.Root, Disks: vz.Ext4Disks{}, Log: o.Log})
		if err != nil {
			return nil, "", err
		}
		return d, "Virtualization.framework", nil
	case "sandbox", "qemu":
		return nil, "", fmt.Errorf("driver %s needs Linux; on macOS use vz", name)
	}
	return nil, "", fmt.Errorf("unknown driver %q (auto or vz on macOS)", name)
}

// releaseStale has nothing to do on a Mac: only the Linux sandbox mounts
// block volumes on the host.
func releaseStale(root string) error { return nil }

// releaseOnStop: the vz driver makes no cgroups.
func releaseOnStop(string) error { return nil }

// releaseStaleMounts: nothing is mounted on the host on macOS.
func releaseStaleMounts(string) error { return nil }

// markInheritedCloseOnExec: the vz driver starts no processes.
func markInheritedCloseOnExec() {}
