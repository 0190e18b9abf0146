// Package vm defines the one interface every guest driver implements:
// sandbox (namespaces), qemu and vz. A driver turns a MachineSpec into a
// running Machine whose only door is the byte stream to its agent.
package vm

import (
	"context"
	"net"
)

// Driver boots machines. Implementations are safe for concurrent use.
type Driver interface {
	Name() string
	// Boot starts a machine with the agent as PID 1 and returns once the
	// agent's byte stream is connected. On error nothing is left behind.
	Boot(ctx context.Context, spec MachineSpec) (Machine, error)
}

// KernelNamer is implemented by drivers that boot a guest kernel:
// GuestKernel names it (its release and where it came from), for docker
// info and the actor tree.
type KernelNamer interface {
	GuestKernel() string
}

// GuestKernel is what d says of its guest kernel; "" for a driver that
// boots none (the sandbox runs on the host's).
func GuestKernel(d Driver) string {
	if k, ok := d.(KernelNamer); ok {
		return k.GuestKernel()
	}
	return ""
}

// MachineSpec is what the host prepares before boot.
type MachineSpec struct {
	ID       string // container ID
	StateDir string // host directory owned by this machine (sockets, disks, work dirs)
	// Rootfs is the image's layers, base first, each an unpacked directory
	// on the host; the driver decides how the guest sees them (overlay of
	// host paths in the sandbox, a disk image in a VM).
	Layers []string
	// UpperDir and WorkDir hold the container's writable layer; they
	// survive the machine so a restarted container keeps its changes.
	UpperDir string
	WorkDir  string
	// RootDir, when set, replaces Layers, UpperDir and WorkDir: the root
	// filesystem is this host directory, already assembled by the host
	// (a build step's snapshot, mounted), used and written in place.
	RootDir     string
	Hostname    string
	MemoryBytes int64 // 0: driver default
	NanoCPUs    int64 // 0: driver default
	// PidsLimit is --pids-limit (0: none). The agent sets it exactly on
	// the container's own cgroup where it can; the sandbox also bounds
	// the whole machine, agent included, a little above it.
	PidsLimit int64
	// UnderlayMAC, when set, asks for a NIC on the daemon's underlay
	// network with this hardware address; the agent finds it by that.
	UnderlayMAC string
	// Shares are host directories the guest needs (volumes, binds). The
	// sandbox sees host paths as they are; a VM gets each as a shared
	// filesystem, and its Machine tells where (see GuestPaths).
	Shares []Share
	// Disks are filesystem images the guest gets as block devices of its
	// own (block volumes), each mounted where its Machine tells (see
	// DiskPaths).
	Disks []Disk
}

// Disk is an ext4 image file on the host, given to one machine at a time.
type Disk struct {
	Image    string
	ReadOnly bool
}

// DiskPaths is implemented by machines given Disks: DiskPath says where
// the agent finds the filesystem of the disk made from image.
type DiskPaths interface {
	DiskPath(image string) (string, bool)
}

// Share is a host directory given to the guest.
type Share struct {
	HostPath string
	ReadOnly bool // every use of it is read-only
}

// GuestPaths is implemented by machines that see host directories under
// other paths (VMs): GuestPath says where a host path, inside one of the
// spec's Shares, appears to the agent.
type GuestPaths interface {
	GuestPath(hostPath string) (string, bool)
}

// Machine is one running guest.
type Machine interface {
	// Conn is the byte stream to the agent (one per machine).
	Conn() net.Conn
	// Rootfs tells the agent how to mount the container's root filesystem
	// inside this machine.
	Rootfs() RootfsSpec
	// Done is closed when the machine has stopped; Err then says why (nil
	// for a clean power-off).
	Done() <-chan struct{}
	Err() error
	// Kill stops the machine at once and releases everything it held.
	// It is idempotent.
	Kill() error
}

// RootfsSpec is the agent's instruction for mounting the rootfs. It travels
// over the wire, so it is plain data.
type RootfsSpec struct {
	// Overlay: Lower dirs (top first, as overlayfs wants), Upper, Work,
	// all paths as the agent sees them.
	Lower []string `json:"lower"`
	Upper string   `json:"upper"`
	Work  string   `json:"work"`
	// Devices to mount before the overlay (VMs): device path -> mount point.
	Mounts []DeviceMount `json:"mounts,omitempty"`
	// Dir, when set, is a directory (as the agent sees it, after Mounts)
	// bound writable as the root instead of an overlay: a MachineSpec's
	// RootDir.
	Dir string `json:"dir,omitempty"`
}

// DeviceMount is a block device the agent mounts before the overlay.
type DeviceMount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	FSType   string `json:"fstype"`
	ReadOnly bool   `json:"readOnly"`
	Options  string `json:"options,omitempty"` // mount data, e.g. 9p's trans=virtio
}
