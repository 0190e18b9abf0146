package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/guest/vm"
)

// A sandbox's block volumes are ext4 images the host attaches to loop
// devices and mounts, before the agent starts, on a directory beside the
// image (never inside the machine's state directory, which removing a
// container deletes, mounts and all); the agent binds them into the
// container like any host directory. The loop devices clear themselves
// once their filesystem is unmounted, which the machine does when its
// agent has gone.

// DiskMountDir is where, beside its image, a disk's filesystem is mounted
// while a machine has it.
const DiskMountDir = "mnt"

// mountedDisk is one attached image.
type mountedDisk struct {
	image, target string
}

// attachDisks mounts each of spec's disk images; on error none is left.
func attachDisks(spec vm.MachineSpec) ([]mountedDisk, error) {
	var out []mountedDisk
	for _, d := range spec.Disks {
		target := filepath.Join(filepath.Dir(d.Image), DiskMountDir)
		if err := mountImage(d.Image, target, d.ReadOnly); err != nil {
			detachDisks(out)
			return nil, fmt.Errorf("attach %s: %w", d.Image, err)
		}
		out = append(out, mountedDisk{image: d.Image, target: target})
	}
	return out, nil
}

// mountImage attaches image to a free loop device (cleared on its last
// unmount) and mounts its ext4 filesystem on target.
func mountImage(image, target string, readOnly bool) error {
	if err := os.MkdirAll(target, 0o700); err != nil {
		return err
	}
	flags := os.O_RDWR
	if readOnly {
		flags = os.O_RDONLY
	}
	f, err := os.OpenFile(image, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer ctl.Close()
	var dev string
	var loop *os.File
	// Another process may take the free device first: ask again.
	for try := 0; ; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return fmt.Errorf("free loop device: %w", err)
		}
		dev = "/dev/loop" + strconv.Itoa(n)
		if loop, err = openLoop(dev, n); err != nil {
			return err
		}
		cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		if readOnly {
			cfg.Info.Flags |= unix.LO_FLAGS_READ_ONLY
		}
		copy(cfg.Info.File_name[:], image)
		err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
		if err == nil {
			break
		}
		loop.Close()
		if !errors.Is(err, unix.EBUSY) || try == 10 {
			return fmt.Errorf("configure %s: %w", dev, err)
		}
	}
	mflags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if readOnly {
		mflags |= unix.MS_RDONLY
	}
	err = unix.Mount(dev, target, "ext4", mflags, "")
	// The mount holds the device now; closing ours lets autoclear free
	// it once the filesystem is unmounted (or at once, if the mount failed).
	loop.Close()
	if err != nil {
		return fmt.Errorf("mount %s: %w", dev, err)
	}
	return nil
}

// openLoop opens a loop device, making its node where no devtmpfs did.
func openLoop(dev string, n int) (*os.File, error) {
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
	if os.IsNotExist(err) {
		if err := unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(7, uint32(n)))); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("create %s: %w", dev, err)
		}
		f, err = os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
	}
	return f, err
}

// detachDisks unmounts what attachDisks mounted. A filesystem still busy
// (the agent's namespace not yet gone) is retried for a moment, then
// detached lazily so its loop device clears once the last user goes.
func detachDisks(ds []mountedDisk) error {
	var errs []error
	for _, d := range ds {
		if err := unmountRetrying(d.target); err != nil {
			errs = append(errs, fmt.Errorf("detach %s: %w", d.image, err))
		}
		os.Remove(d.target)
	}
	return errors.Join(errs...)
}

func unmountRetrying(target string) error {
	var err error
	for try := 0; try < 20; try++ {
		if err = unix.Unmount(target, 0); err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(25 * time.Millisecond)
	}
	return unix.Unmount(target, unix.MNT_DETACH)
}

// ReleaseStaleDisks undoes what a daemon killed before its machines were
// cleaned up left behind: disk mounts beside the images under volumesDir,
// and loop devices backed by those images (a crash between attach and
// mount). Run at daemon start, before any machine boots.
func ReleaseStaleDisks(volumesDir string) error {
	var errs []error
	mounts, err := mountPoints()
	if err != nil {
		return err
	}
	prefix := filepath.Clean(volumesDir) + "/"
	for _, mp := range mounts {
		rest, ok := strings.CutPrefix(mp, prefix)
		if !ok {
			continue
		}
		// <volume>/mnt
		if parts := strings.Split(rest, "/"); len(parts) == 2 && parts[1] == DiskMountDir {
			if err := unmountRetrying(mp); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	backings, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, b := range backings {
		file, err := os.ReadFile(b)
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(file)), prefix) {
			continue
		}
		dev := "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(b)))
		f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// EBUSY: still mounted somewhere; autoclear frees it when that goes.
		if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("clear %s: %w", dev, err))
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// mountPoints lists the host's mount points, from /proc/self/mountinfo.
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ReleaseStaleMounts unmounts whatever is mounted below dir, deepest
// first: the build steps' snapshots a killed daemon left mounted in its
// temporary directory. Run at daemon start, before any build.
func ReleaseStaleMounts(dir string) error {
	mounts, err := mountPoints()
	if err != nil {
		return err
	}
	prefix := filepath.Clean(dir) + "/"
	var stale []string
	for _, mp := range mounts {
		if strings.HasPrefix(mp, prefix) {
			stale = append(stale, mp)
		}
	}
	// Longest first: a mount inside another goes before it.
	sort.Slice(stale, func(i, j int) bool { return len(stale[i]) > len(stale[j]) })
	var errs []error
	for _, mp := range stale {
		if err := unmountRetrying(mp); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}
