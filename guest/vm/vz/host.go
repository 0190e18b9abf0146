package vz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/imagedisk"
	"github.com/arcavm/arca/guest/vm/kit"
)

// Config is how the daemon sets up the driver.
type Config struct {
	Kit   string // the arm64 kit's directory (DefaultKit under the user's home if "")
	Agent string // the static linux/arm64 arca-agent packed as the guest's init
	// Root is the daemon's state directory: image disks go to disks/,
	// the packed initramfs to vz/.
	Root string
	// DiskBytes is a container's writable disk size; DefaultDiskBytes if 0.
	DiskBytes int64
	// Disks writes the ext4 images machines boot with. macOS has no
	// mkfs.ext4, so the daemon wires a Go ext4 writer here; New fails
	// without one.
	Disks DiskBuilder
	Log   *slog.Logger
}

// DiskBuilder writes ext4 images. The driver caches what it builds and
// gives the builder a temporary path it renames once the build succeeded,
// so a builder need not care about partial files or concurrent readers.
type DiskBuilder interface {
	// ImageDisk writes at out one ext4 filesystem holding layers (host
	// directories, base first, in overlayfs format: a whiteout is a 0/0
	// character device, an opaque directory has trusted.overlay.opaque)
	// flattened as overlayfs would show them. The guest mounts it
	// read-only and shares it among every machine of the image.
	ImageDisk(ctx context.Context, layers []string, out string) error
	// WritableDisk writes at out an ext4 filesystem of size bytes (a
	// sparse file) holding only the directories upper (0755) and work
	// (0700), owned by root: a container's writable layer.
	WritableDisk(ctx context.Context, out string, size int64) error
}

// DefaultKitDir is where `make kit-arm64`'s kit is looked for on a Mac:
// ~/.arca/kit/current.
func DefaultKitDir(home string) string { return filepath.Join(home, ".arca", "kit", "current") }

// host is the driver's platform-neutral part: the kit, the packed
// initramfs and the disks, all that a machine needs before the framework
// is asked for it.
type host struct {
	cfg    Config
	kit    *kit.Kit
	initrd string
	images *imagedisk.Cache
	nics   NICs // nil: machines get no network device
}

// NICs makes the network card with hardware address hw: the end of a
// datagram socket pair the VM gets, the other end on the daemon's underlay
// switch (*underlay.Switch), and what takes that port off again.
type NICs interface {
	OpenNIC(hw net.HardwareAddr) (vmEnd *os.File, detach func(), err error)
}

// newHost checks cfg, loads the kit and packs the initramfs.
func newHost(cfg Config) (*host, error) {
	if cfg.Root == "" {
		return nil, errors.New("vz driver: no root directory")
	}
	if cfg.Kit == "" {
		return nil, errors.New("vz driver: no kit directory")
	}
	if cfg.Disks == nil {
		return nil, errors.New("vz driver: no disk builder (the daemon must wire an ext4 writer: macOS has no mkfs.ext4)")
	}
	if cfg.DiskBytes == 0 {
		cfg.DiskBytes = DefaultDiskBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	k, err := kit.Load(cfg.Kit)
	if err != nil {
		return nil, fmt.Errorf("vz driver: %w", err)
	}
	initrd, err := kit.Initramfs(k, cfg.Agent, filepath.Join(cfg.Root, "vz"))
	if err != nil {
		return nil, fmt.Errorf("vz driver: %w", err)
	}
	return &host{cfg: cfg, kit: k, initrd: initrd, images: &imagedisk.Cache{Dir: filepath.Join(cfg.Root, "disks"), Build: cfg.Disks.ImageDisk}}, nil
}

// prepare makes what spec's machine boots from (its state dir, the
// image's disk on first use, the container's disk once, its NIC's socket)
// and returns the machine's configuration, with what releases the NIC
// once the VM is gone (on error nothing is left to release).
func (h *host) prepare(ctx context.Context, spec vm.MachineSpec) (vmConfig, func(), error) {
	c, err := h.files(ctx, spec)
	if err != nil {
		return vmConfig{}, nil, err
	}
	release := func() {}
	if spec.UnderlayMAC != "" && h.nics != nil {
		hw, err := net.ParseMAC(spec.UnderlayMAC)
		if err != nil {
			return vmConfig{}, nil, fmt.Errorf("underlay mac: %w", err)
		}
		f, detach, err := h.nics.OpenNIC(hw)
		if err != nil {
			return vmConfig{}, nil, err
		}
		c.NIC = f
		release = func() { f.Close(); detach() }
	}
	cfg, err := newVMConfig(spec, c, runtime.NumCPU())
	if err != nil {
		release()
		return vmConfig{}, nil, err
	}
	return cfg, release, nil
}

// files makes what spec's machine boots from but its NIC: its state dir,
// the image's disk on first use, the container's disk once. Block
// volumes' images are the volumes actor's; they are only checked.
func (h *host) files(ctx context.Context, spec vm.MachineSpec) (machineFiles, error) {
	if err := ctx.Err(); err != nil {
		return machineFiles{}, err
	}
	if spec.StateDir == "" {
		return machineFiles{}, errors.New("no state dir")
	}
	if spec.RootDir != "" {
		// It would take a writable virtiofs root (the qemu driver's is 9p);
		// refused rather than booted from Layers, which are not set.
		return machineFiles{}, errors.New("root directory machines are not supported on vz yet")
	}
	if len(spec.Layers) == 0 {
		return machineFiles{}, errors.New("no layers")
	}
	if err := checkVolumeImages(spec.Disks); err != nil {
		return machineFiles{}, err
	}
	if err := os.MkdirAll(spec.StateDir, 0o700); err != nil {
		return machineFiles{}, err
	}
	image, err := h.images.Get(ctx, spec.Layers)
	if err != nil {
		return machineFiles{}, err
	}
	rw, err := containerDisk(ctx, spec.StateDir, h.cfg.DiskBytes, h.cfg.Disks)
	if err != nil {
		return machineFiles{}, err
	}
	return machineFiles{Kernel: h.kit.Kernel, Initrd: h.initrd, ImageDisk: image, RWDisk: rw}, nil
}
