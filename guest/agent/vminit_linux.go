package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// inVM is set by VMInit: the agent is a VM's init.
var inVM atomic.Bool

// syncIfVM flushes the VM's filesystems. The host may kill the VM right
// after Shutdown, and the container's writable disk must keep what was
// written; a sandbox's files are the host's and need no such care.
func syncIfVM() {
	if inVM.Load() {
		unix.Sync()
	}
}

// How long VMInit waits for devices that the modules it loaded bring up.
const vmDeviceWait = 10 * time.Second

// VMBoot is what VMInit settles for Run: Config.Stream and Config.Resume.
type VMBoot struct {
	Stream string
	Resume func(io.ReadWriter) error // nil unless the guest is a template
}

// VMInit readies a VM whose init the agent is, booted from a VM
// driver's initramfs: it mounts the kernel filesystems, loads the boot
// modules (only those: loading modules is most of a guest's boot time),
// links the disks by serial and settles the agent's stream: the one the
// kernel command line names (vz: vsock), else the virtio-serial port
// (qemu).
//
// A template (wire.VMTemplateParam) is booted to be snapshotted and restored
// as many machines: it leaves its disks alone, since each machine brings
// its own, until Resume has the host's word (see vmresume_linux.go).
func VMInit(log *slog.Logger) (VMBoot, error) {
	start := time.Now()
	initAt := sinceBoot()
	inVM.Store(true)
	for _, m := range []kernelMount{
		{"/proc", "proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"/sys", "sysfs", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"/dev", "devtmpfs", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"/run", "tmpfs", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	} {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return VMBoot{}, fmt.Errorf("vm init: %w", err)
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return VMBoot{}, fmt.Errorf("vm init: mount %s: %w", m.target, err)
		}
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	template := kernelParamInt(string(cmdline), wire.VMTemplateParam) == 1
	var deferred []string
	if template {
		deferred = templateDeferredModules
	}
	n, err := loadModules(wire.VMModuleList, wire.VMModuleDir, deferred)
	if err != nil {
		return VMBoot{}, err
	}
	loaded := time.Since(start)
	disks := kernelParamInt(string(cmdline), wire.VMDiskParam)
	if template {
		if parkedDisks, err = parkDisks(virtioBlkDriver); err != nil {
			return VMBoot{}, err
		}
	} else {
		if err := linkDisks("/sys/block", "/dev", wire.VMDiskByID, disks, vmDeviceWait); err != nil {
			return VMBoot{}, err
		}
	}
	stream, err := vmStream(string(cmdline), func() (string, error) {
		return waitPort("/sys/class/virtio-ports", wire.VMPortName, vmDeviceWait)
	})
	if err != nil {
		return VMBoot{}, err
	}
	if strings.HasPrefix(stream, "vsock:") {
		// The kits pack the vsock transport as an extra (qemu boots on
		// virtio-serial): no connection arrives before it is loaded.
		if err := loadModuleGroup(vsockModules); err != nil {
			return VMBoot{}, err
		}
	}
	log.Info("vm ready", "modules", n, "modulesTook", loaded, "took", time.Since(start), "stream", stream,
		"template", template, "initAt", initAt, "readyAt", sinceBoot())
	boot := VMBoot{Stream: stream}
	if !template {
		// A template's machines have no balloon (qemu would punch the
		// freed pages out of the template's memory file they all share).
		go loadBalloon(log)
	}
	if template {
		boot.Resume = func(rw io.ReadWriter) error { return resumeTemplate(log, rw, disks) }
	}
	return boot, nil
}

// PowerOff ends the machine the agent is init of, after a sync: a reset
// when the kernel command line asks for one (wire.VMPowerOffParam), else a
// power-off. Without a way to power off (no ACPI), the kernel would halt
// and the hypervisor would keep the machine; qemu with -no-reboot ends at
// a reset. It returns only if the kernel refused.
func PowerOff() error {
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	cmdline, _ := os.ReadFile("/proc/cmdline")
	if powerOffCmd(string(cmdline)) == "reset" {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	return unix.Reboot(cmd)
}

// powerOffCmd is how the command line asks a machine to end: "reset" or
// "" (a power-off).
func powerOffCmd(cmdline string) string {
	if v, _ := kernelParam(cmdline, wire.VMPowerOffParam); v == "reset" {
		return v
	}
	return ""
}

// sinceBoot is the time since the kernel started (CLOCK_BOOTTIME): with
// it the console log tells the kernel's part of a boot from the agent's.
func sinceBoot() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// vmStream is the Config.Stream a VM's agent serves on: what the kernel
// command line's wire.VMStreamParam names (vz listens on vsock), else the
// virtio-serial port findPort finds (qemu).
func vmStream(cmdline string, findPort func() (string, error)) (string, error) {
	if s, ok := kernelParam(cmdline, wire.VMStreamParam); ok {
		if _, err := parseStream(s); err != nil {
			return "", fmt.Errorf("vm init: %s: %w", wire.VMStreamParam, err)
		}
		return s, nil
	}
	dev, err := findPort()
	if err != nil {
		return "", err
	}
	return "file:" + dev, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// kernelParam reads name=value from a kernel command line; arguments
// after "--" are init's, not the kernel's.
func kernelParam(cmdline, name string) (string, bool) {
	for _, f := range strings.Fields(cmdline) {
		if f == "--" {
			break
		}
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// kernelParamInt reads name=N from a kernel command line; 0 if absent.
func kernelParamInt(cmdline, name string) int {
	v, _ := kernelParam(cmdline, name)
	n, _ := strconv.Atoi(v)
	return n
}

// linkDisks links byID/virtio-SERIAL to each virtio disk in sysBlock that
// has a serial, waiting up to wait until want of them have one.
func linkDisks(sysBlock, devDir, byID string, want int, wait time.Duration) error {
	if err := os.MkdirAll(byID, 0o755); err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	deadline := time.Now().Add(wait)
	linked := map[string]bool{}
	for {
		entries, _ := os.ReadDir(sysBlock)
		for _, e := range entries {
			name := e.Name()
			if !strings.HasPrefix(name, "vd") || linked[name] {
				continue
			}
			serial, err := os.ReadFile(filepath.Join(sysBlock, name, "serial"))
			s := strings.TrimSpace(string(serial))
			if err != nil || s == "" {
				continue
			}
			link := filepath.Join(byID, "virtio-"+s)
			os.Remove(link)
			if err := os.Symlink(filepath.Join(devDir, name), link); err != nil {
				return fmt.Errorf("vm init: link disk %s: %w", s, err)
			}
			linked[name] = true
		}
		if len(linked) >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vm init: %d of %d disks appeared within %s", len(linked), want, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitPort finds the device of the virtio-serial port called name: its
// number (vportNpM) depends on probe order, its name does not.
func waitPort(sysPorts, name string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		entries, _ := os.ReadDir(sysPorts)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(sysPorts, e.Name(), "name"))
			if err != nil || strings.TrimSpace(string(b)) != name {
				continue
			}
			dev := filepath.Join("/dev", e.Name())
			if _, err := os.Stat(dev); err == nil {
				return dev, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("vm init: no virtio-serial port %q within %s", name, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
