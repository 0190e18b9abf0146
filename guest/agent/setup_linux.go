package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// defaultHosts is /etc/hosts when the host sends none, as Docker writes it
// for a container without a network.
const defaultHosts = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::	ip6-localnet
ff00::	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// Paths Docker hides or makes read-only in /proc and /sys by default; in a
// sandbox they would otherwise reach the host's kernel.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
		// Not in Docker's list: with CAP_SYSLOG a sandbox container would
		// read, and so take from it, the host kernel's log.
		"/proc/kmsg",
	}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// Setup implements wire.Handler. It runs once; a failure leaves the machine
// unusable and the host is expected to kill it.
func (a *Agent) Setup(ctx context.Context, req wire.SetupRequest) error {
	a.setupMu.Lock()
	defer a.setupMu.Unlock()
	a.mu.Lock()
	done := a.root != nil
	a.mu.Unlock()
	if done {
		return wire.Errorf(wire.KindConflict, "container is already set up")
	}
	rootPath := filepath.Join(a.runDir, "rootfs")
	if err := mountRootfs(req.Rootfs, rootPath, filepath.Join(a.runDir, "layers")); err != nil {
		return err
	}
	root, err := openRootDir(rootPath, a.procDir)
	if err != nil {
		return err
	}
	if req.Rootfs.Upper != "" {
		// For Usage; a failure only costs docker ps -s its figure.
		if f, err := os.Open(req.Rootfs.Upper); err == nil {
			a.upper = f
		} else {
			a.log.Warn("writable layer not measurable", "err", err)
		}
		for _, l := range req.Rootfs.Lower {
			f, err := os.Open(l)
			if err != nil {
				// Without every layer a diff would be wrong, not partial.
				a.lowersErr = fmt.Errorf("open image layer for diff: %w", err)
				a.log.Warn("image layers not readable", "err", err)
				break
			}
			a.lowers = append(a.lowers, f)
		}
	}
	devices, err := makeDevices(filepath.Join(a.runDir, "dev"))
	if err != nil {
		root.close()
		return err
	}
	if err := mountKernelFS(root, devices, a.netNS(), req.ShmSize, req.Privileged); err != nil {
		root.close()
		return err
	}
	if err := mountAll(root, req.Mounts); err != nil {
		root.close()
		return err
	}
	if err := a.provideEtc(root, req); err != nil {
		root.close()
		return err
	}
	if req.ReadonlyRootfs {
		// Last, over the mounts and /etc files just made in it, which
		// keep their own modes, as runc does for --read-only.
		if err := remountReadonly(rootPath); err != nil {
			root.close()
			return err
		}
	}
	if req.PidsLimit > 0 && a.cg.ok() {
		// Exact on the container's cgroup where the pids controller is
		// there (a VM); on a v1 host the sandbox bounds the machine.
		if err := a.cg.limitPids(req.PidsLimit); err != nil {
			a.log.Warn("pids limit left to the machine's cgroup", "err", err)
		}
	}
	if req.Hostname != "" {
		if err := unix.Sethostname([]byte(req.Hostname)); err != nil {
			root.close()
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	// From here on the agent lives in its own small tree: the container
	// is /rootfs, and whatever the machine booted from is gone from view,
	// so escaping the chroot leads nowhere.
	pivoted, err := a.pivot()
	if err != nil {
		root.close()
		return err
	}
	if pivoted {
		rootPath = "/rootfs"
		root.proc = a.procDir
	}
	a.mu.Lock()
	a.root, a.rootPath, a.privileged = root, rootPath, req.Privileged
	a.mu.Unlock()
	return nil
}

// mountRootfs mounts the overlay (after any devices it is built from) on
// target; linkDir is the agent's, for short names of long layer chains.
func mountRootfs(spec vm.RootfsSpec, target, linkDir string) error {
	for _, m := range spec.Mounts {
		if err := os.MkdirAll(m.Target, 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.Source, err)
		}
		var flags uintptr
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		// Shared filesystems (qemu's 9p, vz's virtiofs) are extra modules.
		if m.FSType == "9p" || m.FSType == "virtiofs" {
			if err := loadModuleGroup(shareModules); err != nil {
				return err
			}
		}
		if err := unix.Mount(m.Source, m.Target, m.FSType, flags, m.Options); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Source, m.Target, err)
		}
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mount rootfs: %w", err)
	}
	if spec.Dir != "" {
		// Assembled by the host and written in place (a build step's
		// snapshot). nodev: see makeDevices.
		if err := unix.Mount(spec.Dir, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mount rootfs: %w", err)
		}
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("remount rootfs: %w", err)
		}
		return nil
	}
	if len(spec.Lower) == 0 {
		return wire.Errorf(wire.KindInvalid, "rootfs has no layers")
	}
	if spec.Upper == "" && len(spec.Lower) == 1 {
		// Read-only, one layer: a bind does.
		if err := unix.Mount(spec.Lower[0], target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("mount rootfs: %w", err)
		}
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("remount rootfs read-only: %w", err)
		}
		return nil
	}
	// nodev: see makeDevices.
	opts := overlayOptions(spec)
	if len(opts) >= os.Getpagesize()-1 {
		// Options are limited to a page, which long layer chains exceed:
		// then each path is given by a short link, from the links' dir.
		var short vm.RootfsSpec
		var err error
		if short, err = shortLinks(spec, linkDir); err != nil {
			return fmt.Errorf("mount overlay rootfs: %w", err)
		}
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("mount overlay rootfs: %w", err)
		}
		if err := os.Chdir(linkDir); err != nil {
			return fmt.Errorf("mount overlay rootfs: %w", err)
		}
		defer os.Chdir(wd)
		opts = overlayOptions(short)
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount overlay rootfs: %w", err)
	}
	return nil
}

// overlayOptions are the overlayfs mount options for spec.
func overlayOptions(spec vm.RootfsSpec) string {
	opts := "lowerdir=" + strings.Join(spec.Lower, ":")
	if spec.Upper != "" {
		opts += ",upperdir=" + spec.Upper + ",workdir=" + spec.Work
	}
	return opts
}

// shortLinks makes a symlink in dir for every path of spec (overlayfs
// follows them) and returns spec with the links' names, relative to dir.
func shortLinks(spec vm.RootfsSpec, dir string) (vm.RootfsSpec, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return spec, err
	}
	link := func(name, target string) (string, error) {
		return name, os.Symlink(target, filepath.Join(dir, name))
	}
	var short vm.RootfsSpec
	for i, l := range spec.Lower {
		name, err := link(strconv.Itoa(i), l)
		if err != nil {
			return spec, err
		}
		short.Lower = append(short.Lower, name)
	}
	if spec.Upper != "" {
		var err error
		if short.Upper, err = link("u", spec.Upper); err != nil {
			return spec, err
		}
		if short.Work, err = link("w", spec.Work); err != nil {
			return spec, err
		}
	}
	return short, nil
}

func remountReadonly(target string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	const keep = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME
	flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | uintptr(st.Flags)&keep
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}

type kernelMount struct {
	target, fstype, source string
	flags                  uintptr
	data                   string
}

// mountKernelFS gives the container /sys and a /dev of its own, as runc
// does for Docker: /sys read-only unless the container is privileged.
// sysfs is mounted from the container's network namespace, whose
// interfaces it then lists. /proc, the masks over /proc and /sys, and a
// privileged container's /sys/fs/cgroup come with the main process
// (mainStage): a procfs shows the pid namespace of whoever mounts it, a
// cgroup2 mount the cgroup namespace.
func mountKernelFS(root *rootDir, devices string, ns *netNS, shmSize int64, privileged bool) error {
	shm := "mode=1777,size=65536k"
	if shmSize > 0 {
		shm = fmt.Sprintf("mode=1777,size=%dk", (shmSize+1023)/1024)
	}
	sysFlags := uintptr(unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RDONLY)
	if privileged {
		sysFlags &^= unix.MS_RDONLY
	}
	mounts := []kernelMount{
		{"/sys", "sysfs", "sysfs", sysFlags, ""},
		{"/dev", "tmpfs", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_STRICTATIME, "mode=755,size=65536k"},
		{"/dev/pts", "devpts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{"/dev/shm", "tmpfs", "shm", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, shm},
		{"/dev/mqueue", "mqueue", "mqueue", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	}
	for _, m := range mounts {
		var err error
		if m.fstype == "sysfs" {
			err = ns.do(func() error { return mountAt(root, m) })
		} else {
			err = mountAt(root, m)
		}
		if err != nil {
			return err
		}
		if m.target == "/dev" {
			if err := populateDev(root, devices); err != nil {
				return err
			}
		}
	}
	return nil
}

func mountAt(root *rootDir, m kernelMount) error {
	fd, err := root.mkdirAll(m.target)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.target, err)
	}
	defer unix.Close(fd)
	if err := unix.Mount(m.source, root.fdPath(fd), m.fstype, m.flags, m.data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
	}
	return nil
}

// The device nodes a container gets, as Docker gives them.
var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// makeDevices creates the device nodes on a tmpfs of the agent's own.
//
// Docker lets a container mknod and relies on the devices cgroup to keep
// it from opening, say, the host's disk. Without that cgroup the sandbox
// mounts every filesystem the container can write to nodev instead, and
// binds these nodes in one by one: a bind mount keeps the flags of its
// source, so they work while any node the container makes does not.
func makeDevices(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("device nodes: %w", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=755,size=64k"); err != nil {
		return "", fmt.Errorf("device nodes: %w", err)
	}
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, d := range devices {
		if err := unix.Mknod(filepath.Join(dir, d.name), unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return "", fmt.Errorf("create device %s: %w", d.name, err)
		}
	}
	return dir, nil
}

// populateDev fills a fresh /dev: the device nodes from nodes, bound over
// empty files, and the usual links.
func populateDev(root *rootDir, nodes string) error {
	dev, err := root.open("/dev", unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("populate /dev: %w", err)
	}
	defer unix.Close(dev)
	for _, d := range devices {
		fd, err := unix.Openat(dev, d.name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
		if err != nil {
			return fmt.Errorf("create /dev/%s: %w", d.name, err)
		}
		err = unix.Mount(filepath.Join(nodes, d.name), root.fdPath(fd), "", unix.MS_BIND, "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("bind /dev/%s: %w", d.name, err)
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}, {"/proc/kcore", "core"},
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dev, l[1]); err != nil {
			return fmt.Errorf("create /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// maskPaths hides and write-protects what Docker does. The targets lie in
// the fresh proc and sys mounts, which the image cannot have shaped.
func maskPaths(rootPath string) error {
	for _, p := range maskedPaths {
		target := rootPath + p
		var st unix.Stat_t
		if err := unix.Lstat(target, &st); err != nil {
			continue // not in this kernel
		}
		var err error
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
		} else {
			err = unix.Mount(rootPath+"/dev/null", target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	for _, p := range readonlyPaths {
		target := rootPath + p
		if err := unix.Mount(target, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("protect %s: %w", p, err)
		}
		if err := remountReadonly(target); err != nil {
			return err
		}
	}
	return nil
}

// provideEtc writes /etc/hostname, /etc/hosts and /etc/resolv.conf into
// the agent's own directory and binds them over the image's, as Docker
// does: the image and the writable layer are left alone (but for an empty
// placeholder where the image has no such file to mount over).
func (a *Agent) provideEtc(root *rootDir, req wire.SetupRequest) error {
	dir := filepath.Join(a.runDir, "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("container files: %w", err)
	}
	hosts := req.Hosts
	if hosts == nil {
		hosts = []byte(defaultHosts)
	}
	files := []struct {
		name string
		data []byte
	}{{"hosts", hosts}}
	if req.Hostname != "" {
		files = append(files, struct {
			name string
			data []byte
		}{"hostname", []byte(req.Hostname + "\n")})
	}
	if req.ResolvConf != nil {
		files = append(files, struct {
			name string
			data []byte
		}{"resolv.conf", req.ResolvConf})
	}
	for _, f := range files {
		src := filepath.Join(dir, f.name)
		if err := os.WriteFile(src, f.data, 0o644); err != nil {
			return fmt.Errorf("container files: %w", err)
		}
		fd, err := root.ensureFile("/etc/" + f.name)
		if err != nil {
			return fmt.Errorf("container files: %w", err)
		}
		err = unix.Mount(src, root.fdPath(fd), "", unix.MS_BIND, "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("bind /etc/%s: %w", f.name, err)
		}
	}
	return nil
}

// pivot makes the agent's run directory its root and drops the old root
// from view. On an initramfs, whose root cannot be pivoted away, it leaves
// things as they are: there the machine itself is the boundary.
func (a *Agent) pivot() (bool, error) {
	if err := pivotRoot(a.runDir); err != nil {
		if err == unix.EINVAL {
			a.log.Warn("agent root cannot be pivoted; staying in the machine's root", "err", err)
			return false, nil
		}
		return false, err
	}
	a.runDir = "/"
	a.procDir = "/proc"
	a.cg.moved(a.procDir, "/cgroup-v1")
	return true, nil
}
