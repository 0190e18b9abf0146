// Package vz is the macOS driver: every machine is a VM of Apple's
// Virtualization framework (through github.com/Code-Hex/vz/v3) booting the
// arm64 kit's kernel with the daemon's arca-agent as init, the image as a
// shared read-only disk, the container's writable layer on a disk of its
// own, block volumes as disks of their own, volumes and binds over
// virtiofs, and the agent's stream over vsock.
//
// Everything but the framework calls is plain Go, built and tested on
// every platform: vmConfig says exactly what a machine gets, and only
// vz_darwin.go turns it into framework objects. See docs/macos.md.
package vz

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/wire"
)

// DefaultDiskBytes is a container's writable disk: sparse, so it takes
// host space only as the container writes. Memory and vCPUs default as
// on every VM driver (vm.MemoryBytes, vm.CPUs).
const DefaultDiskBytes = 16 << 30

// AgentPort is the vsock port the agent listens on. The guest learns it
// from the kernel command line (wire.VMStreamParam), so host and agent
// cannot disagree.
const AgentPort uint32 = 1024

// Block device identifiers: the guest sees them as the virtio disks'
// serials, and VMInit links the disks by them under /dev/disk/by-id, as
// for qemu. The framework takes at most 20 ASCII bytes, virtio-blk's
// serial size.
const (
	imageSerial     = "arca-image"
	containerSerial = "arca-rw"
	maxSerial       = 20
)

// fixedDisks are the disks every machine has (the image's, the
// container's); block volumes follow them in Disks.
const fixedDisks = 2

// volumeSerial is the identifier of a machine's i-th block volume and
// volumeMount where the agent mounts its filesystem: the names qemu's
// driver gives them, so a guest looks the same under either.
func volumeSerial(i int) string { return "arca-vol" + strconv.Itoa(i) }
func volumeMount(i int) string  { return "/mnt/vol" + strconv.Itoa(i) }

// Inside the writable disk: the overlay's upper and work directories.
const (
	rwUpper = "upper"
	rwWork  = "work"
)

// vmConfig is everything a machine is made of: a value, so tests can
// inspect what a spec turns into; vz_darwin.go only translates it.
type vmConfig struct {
	Kernel      string // the kit's uncompressed arm64 Image
	Initrd      string // packed by guest/vm/kit from the kit and the agent
	CPUs        uint
	MemoryBytes uint64
	Disks       []blockDevice // the image's, the container's, then the block volumes in spec order
	Shares      []share       // virtiofs, tagged vm.ShareTag(i) in order
	AgentPort   uint32        // vsock: the host connects, the agent listens
	NIC         *nic          // nil: no network device
	Console     string        // the guest's hvc0 goes to this file
}

// blockDevice is a virtio block device backed by a disk image file.
type blockDevice struct {
	Path     string
	ReadOnly bool
	ID       string // the guest sees it as the disk's serial
}

// share is a host directory given to the guest over virtiofs.
type share struct {
	Tag      string
	HostPath string
	ReadOnly bool
}

// nic is a virtio network device on the daemon's underlay switch: File is
// the VM's end of a unix datagram socket pair, one Ethernet frame per
// datagram (VZFileHandleNetworkDeviceAttachment), whose other end is a
// port of the switch. Its address is the host's to give, as on qemu: no
// DHCP, and no NAT network of the framework's.
type nic struct {
	MAC  net.HardwareAddr
	File *os.File
}

// machineFiles are the host files a machine boots from.
type machineFiles struct {
	Kernel, Initrd string
	ImageDisk      string   // the image's shared read-only disk
	RWDisk         string   // the container's own
	NIC            *os.File // the VM's end of its NIC's socket pair, when the spec asks for one
}

// newVMConfig is what spec becomes on a host with hostCPUs cores.
func newVMConfig(spec vm.MachineSpec, files machineFiles, hostCPUs int) (vmConfig, error) {
	if spec.StateDir == "" {
		return vmConfig{}, errors.New("no state dir")
	}
	if files.ImageDisk == "" || files.RWDisk == "" {
		return vmConfig{}, errors.New("no disks")
	}
	c := vmConfig{
		Kernel:      files.Kernel,
		Initrd:      files.Initrd,
		CPUs:        uint(vm.CPUs(spec.NanoCPUs, hostCPUs)),
		MemoryBytes: uint64(vm.MemoryBytes(spec.MemoryBytes)), // whole MiB, as the framework wants
		Disks: []blockDevice{
			// Shared by every machine of the image, so never written.
			{Path: files.ImageDisk, ReadOnly: true, ID: imageSerial},
			{Path: files.RWDisk, ID: containerSerial},
		},
		AgentPort: AgentPort,
		Console:   filepath.Join(spec.StateDir, consoleLog),
	}
	for i, sh := range spec.Shares {
		if !filepath.IsAbs(sh.HostPath) {
			return vmConfig{}, fmt.Errorf("share %q: not an absolute path", sh.HostPath)
		}
		c.Shares = append(c.Shares, share{Tag: vm.ShareTag(i), HostPath: filepath.Clean(sh.HostPath), ReadOnly: sh.ReadOnly})
	}
	seen := map[string]bool{}
	for i, d := range spec.Disks {
		// The framework opens the image itself: a relative path would be
		// the daemon's working directory's. One image attached twice would
		// be two filesystems writing the same blocks.
		if !filepath.IsAbs(d.Image) {
			return vmConfig{}, fmt.Errorf("block volume %q: not an absolute path", d.Image)
		}
		img := filepath.Clean(d.Image)
		if seen[img] {
			return vmConfig{}, fmt.Errorf("block volume %s: given twice", img)
		}
		seen[img] = true
		c.Disks = append(c.Disks, blockDevice{Path: img, ReadOnly: d.ReadOnly, ID: volumeSerial(i)})
	}
	for _, d := range c.Disks {
		if len(d.ID) > maxSerial {
			return vmConfig{}, fmt.Errorf("disk %s: identifier %q is over %d bytes", d.Path, d.ID, maxSerial)
		}
	}
	if spec.UnderlayMAC != "" {
		mac, err := net.ParseMAC(spec.UnderlayMAC)
		if err != nil {
			return vmConfig{}, fmt.Errorf("underlay mac: %w", err)
		}
		if files.NIC == nil {
			return vmConfig{}, errors.New("a NIC was asked for but the driver has no underlay")
		}
		c.NIC = &nic{MAC: mac, File: files.NIC}
	}
	return c, nil
}

// consoleLog is the guest's console in the machine's state dir.
const consoleLog = "console.log"

// kernelCmdline is the guest kernel's command line. Everything after "--"
// goes to init: the agent, booting in VM mode, told to listen on vsock.
func (c vmConfig) kernelCmdline() string {
	return strings.Join([]string{
		// The framework's console device is the guest's hvc0.
		"console=hvc0", "quiet", "loglevel=3",
		// A panic reboots at once, which ends the VM: Err says why.
		"panic=-1",
		"rdinit=/init",
		"cryptomgr.notests", "random.trust_cpu=on",
		fmt.Sprintf("%s=%d", wire.VMDiskParam, len(c.Disks)),
		fmt.Sprintf("%s=vsock:%d", wire.VMStreamParam, c.AgentPort),
		"--", "-vm",
	}, " ")
}

// rootfs is how the agent mounts the container's root: both disks, by
// serial, then the overlay of the image under the writable layer. The
// shares and block volumes are mounted alongside, for the binds made from
// them.
func (c vmConfig) rootfs() vm.RootfsSpec {
	const image, rw = "/mnt/image", "/mnt/rw"
	spec := vm.RootfsSpec{
		Mounts: []vm.DeviceMount{
			{Source: wire.VMDiskByID + "/virtio-" + imageSerial, Target: image, FSType: "ext4", ReadOnly: true},
			{Source: wire.VMDiskByID + "/virtio-" + containerSerial, Target: rw, FSType: "ext4"},
		},
		Lower: []string{image},
		Upper: rw + "/" + rwUpper,
		Work:  rw + "/" + rwWork,
	}
	for i, sh := range c.Shares {
		spec.Mounts = append(spec.Mounts, vm.DeviceMount{
			Source: sh.Tag, Target: vm.ShareMount(i), FSType: "virtiofs", ReadOnly: sh.ReadOnly,
		})
	}
	for i, d := range c.volumes() {
		spec.Mounts = append(spec.Mounts, vm.DeviceMount{
			Source: wire.VMDiskByID + "/virtio-" + d.ID, Target: volumeMount(i), FSType: "ext4", ReadOnly: d.ReadOnly,
		})
	}
	return spec
}

// volumes are the block volumes' disks, in spec order.
func (c vmConfig) volumes() []blockDevice {
	if len(c.Disks) <= fixedDisks {
		return nil
	}
	return c.Disks[fixedDisks:]
}

// diskPath is where the agent finds the filesystem of the block volume
// whose image is image (vm.DiskPaths).
func (c vmConfig) diskPath(image string) (string, bool) {
	image = filepath.Clean(image)
	for i, d := range c.volumes() {
		if d.Path == image {
			return volumeMount(i), true
		}
	}
	return "", false
}

// guestPath maps a host path inside one of the shares to the agent's view.
func (c vmConfig) guestPath(hostPath string) (string, bool) {
	shares := make([]vm.Share, len(c.Shares))
	for i, sh := range c.Shares {
		shares[i] = vm.Share{HostPath: sh.HostPath, ReadOnly: sh.ReadOnly}
	}
	return vm.GuestPath(shares, hostPath)
}
