package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// templateDeferredModules are the boot modules a template leaves for its
// restored machines: the block driver would read the template's
// placeholder disks, and each machine brings its own.
var templateDeferredModules = []string{"virtio_blk"}

// virtioBlkDriver is the block driver's directory in sysfs: there when
// the driver is loaded, or built in (Arca's own kernel), which binds the
// template's placeholder disks before init runs.
const virtioBlkDriver = "/sys/bus/virtio/drivers/virtio_blk"

// parkedDisks are the virtio devices a template's agent took from a
// built-in block driver, to give back once restored.
var parkedDisks []string

// parkDisks unbinds every device the block driver in drv has bound and
// returns their names. A template's kernel with the driver built in has
// already read its 1 MiB placeholders: their size and the blocks it read
// would be the restored machine's view of its own disks. Unbound, they
// are forgotten (the disk and its cache go with the binding), and
// unparkDisks binds them again after the restore, when qemu serves the
// machine's own disks: the driver then reads their real size. No driver
// there (Debian's kernel, the module not loaded yet) is none to park.
func parkDisks(drv string) ([]string, error) {
	entries, err := os.ReadDir(drv)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vm init: park disks: %w", err)
	}
	var parked []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "virtio") {
			continue
		}
		if err := os.WriteFile(filepath.Join(drv, "unbind"), []byte(e.Name()), 0); err != nil {
			return parked, fmt.Errorf("vm init: park disk %s: %w", e.Name(), err)
		}
		parked = append(parked, e.Name())
	}
	return parked, nil
}

// unparkDisks binds the devices parkDisks took back to the driver in drv.
func unparkDisks(drv string, parked []string) error {
	for _, dev := range parked {
		if err := os.WriteFile(filepath.Join(drv, "bind"), []byte(dev), 0); err != nil {
			return fmt.Errorf("resume: bind disk %s: %w", dev, err)
		}
	}
	return nil
}

// resumeTemplate runs in a template's agent with the stream open: it
// waits there (this is where the host snapshots the guest), then, running
// as a restored machine, takes the host's Resume, renews what the machine
// must not share with its template, and finds its disks.
func resumeTemplate(log *slog.Logger, rw io.ReadWriter, disks int) error {
	r, err := wire.AwaitResume(rw)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := applyResume(r); err != nil {
		return err
	}
	if err := unparkDisks(virtioBlkDriver, parkedDisks); err != nil {
		return err
	}
	if err := loadModuleGroup(templateDeferredModules); err != nil {
		return err
	}
	if err := linkDisks("/sys/block", "/dev", wire.VMDiskByID, disks, vmDeviceWait); err != nil {
		return err
	}
	log.Info("resumed from template", "took", time.Since(start), "at", sinceBoot())
	return nil
}

// applyResume sets the clock, reseeds the kernel's random generator and
// notes the network card's placeholder address.
func applyResume(r wire.Resume) error {
	ts := unix.NsecToTimespec(r.UnixNano)
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("resume: set clock: %w", err)
	}
	if err := reseed(r.Seed); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if r.TemplateMAC != "" {
		mac, err := net.ParseMAC(r.TemplateMAC)
		if err != nil {
			return fmt.Errorf("resume: template nic: %w", err)
		}
		nicAlias.set(mac)
	}
	return nil
}

// reseed credits seed to the kernel's entropy pool and makes its
// generator reseed now, so that no two machines restored from one
// template draw the same numbers from here on.
func reseed(seed []byte) error {
	f, err := os.OpenFile("/dev/random", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("reseed: %w", err)
	}
	defer f.Close()
	// struct rand_pool_info: entropy_count (bits), buf_size (bytes), buf.
	buf := make([]byte, 8+len(seed))
	binary.NativeEndian.PutUint32(buf[0:], uint32(8*len(seed)))
	binary.NativeEndian.PutUint32(buf[4:], uint32(len(seed)))
	copy(buf[8:], seed)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
		return fmt.Errorf("reseed: add entropy: %w", e)
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDRESEEDCRNG, 0); e != 0 {
		return fmt.Errorf("reseed: %w", e)
	}
	return nil
}

// nicAlias is the address a restored machine's network card still has
// from its template: linkByMAC takes that card for the one asked for.
var nicAlias macAlias

type macAlias struct {
	mu  sync.Mutex
	mac net.HardwareAddr
}

func (a *macAlias) set(mac net.HardwareAddr) {
	a.mu.Lock()
	a.mac = mac
	a.mu.Unlock()
}

func (a *macAlias) get() net.HardwareAddr {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mac
}
