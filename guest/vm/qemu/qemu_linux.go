// Package qemu is the driver that makes every machine a real VM:
// qemu-system-x86_64 -M microvm (or, for an arm64 kit,
// qemu-system-aarch64 -M virt) booting the kit's Debian kernel with the
// daemon's arca-agent as init, the image as a shared read-only ext4 disk,
// the container's writable layer on a disk of its own (or a host directory
// as the root, over 9p), and the agent's stream over virtio-serial. See
// docs/qemu.md.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"github.com/arcavm/arca/guest/vm/hostproc"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/imagedisk"
	"github.com/arcavm/arca/guest/vm/kit"
	"github.com/arcavm/arca/guest/vm/underlay"
	"golang.org/x/sys/unix"
)

// Config is how the daemon sets up the driver.
type Config struct {
	Kit   string // kit directory; DefaultKit if ""
	Agent string // the static arca-agent to pack as the guest's init
	// Root is the daemon's state directory: image disks go to disks/,
	// the packed initramfs and the KVM verdict to qemu/.
	Root string
	// QEMU is the binary; the kit's architecture's qemu-system-x86_64 or
	// qemu-system-aarch64 (from PATH) if "".
	QEMU string
	// Accel forces "kvm" or "tcg"; "" probes (see Probe).
	Accel string
	// DiskBytes is a container's writable disk size; DefaultDiskBytes if 0.
	DiskBytes int64
	// ColdBoot boots every machine from its kernel. Else, under TCG on
	// amd64, machines restore a template of their shape (template.go).
	ColdBoot bool
	Log      *slog.Logger
}

// Driver boots qemu machines. It is safe for concurrent use.
type Driver struct {
	cfg       Config
	kit       *Kit
	initrd    string
	accel     string
	tscKHz    int64
	disks     *imagedisk.Cache
	underlay  *underlay.Bridge // with switch nil: machines get no NIC
	sw        *underlay.Switch
	templates *templates // nil: every machine boots cold
}

// UseUnderlay gives machines a NIC on the daemon's kernel underlay: a tap
// on its bridge behind a virtio-net device. Called before the first Boot.
func (d *Driver) UseUnderlay(b *underlay.Bridge) { d.underlay = b }

// UseSwitch gives machines a NIC on the daemon's user-space underlay: one
// end of a datagram socket pair on its switch, behind a virtio-net device
// (-netdev dgram), as the vz driver does on a Mac. Called before the first
// Boot; it wins over UseUnderlay.
func (d *Driver) UseSwitch(s *underlay.Switch) { d.sw = s }

// HostPathMounts reports that host directories reach the guest (as 9p
// shares), so volumes and binds work.
func (d *Driver) HostPathMounts() bool { return true }

var _ vm.Driver = (*Driver)(nil)

// New loads the kit, packs the initramfs and settles the acceleration
// (probing KVM once per kernel and qemu version when cfg.Accel is "").
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.Kit == "" {
		cfg.Kit = DefaultKit
	}
	if cfg.DiskBytes == 0 {
		cfg.DiskBytes = DefaultDiskBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Root == "" {
		return nil, errors.New("qemu driver: no root directory")
	}
	k, err := LoadKit(cfg.Kit)
	if err != nil {
		return nil, err
	}
	if cfg.QEMU == "" {
		cfg.QEMU = qemuBinary[k.Arch]
	}
	qemuPath, err := exec.LookPath(cfg.QEMU)
	if err != nil {
		return nil, fmt.Errorf("qemu driver: %w (Debian: apt-get install %s, or make deps)", err, qemuPackage[k.Arch])
	}
	cfg.QEMU = qemuPath
	initrd, err := kit.Initramfs(k, cfg.Agent, filepath.Join(cfg.Root, "qemu"))
	if err != nil {
		return nil, err
	}
	d := &Driver{cfg: cfg, kit: k, initrd: initrd, disks: &imagedisk.Cache{Dir: filepath.Join(cfg.Root, "disks"), Build: imagedisk.FromLayers}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		d.tscKHz = hostTSCkHz(string(b))
	}
	switch {
	case cfg.Accel == AccelKVM || cfg.Accel == AccelTCG:
		d.accel = cfg.Accel
	case cfg.Accel == "" && k.Arch != runtime.GOARCH:
		d.accel = AccelTCG // another architecture's guest: emulated
	case cfg.Accel == "":
		d.accel = d.probe(ctx)
	default:
		return nil, fmt.Errorf("qemu driver: unknown acceleration %q (kvm or tcg)", cfg.Accel)
	}
	// Under KVM a cold boot is already fast, and the arm64 virt machine's
	// devices are not what the templates were proven with.
	if !cfg.ColdBoot && d.accel == AccelTCG && k.Arch == ArchAMD64 {
		d.templates, err = openTemplates(filepath.Join(cfg.Root, "qemu", "templates"),
			identity(cfg.QEMU, k.Kernel, d.initrd), cfg.Log, d.buildTemplate)
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

// The emulator of each guest architecture, and its Debian package.
var (
	qemuBinary  = map[string]string{ArchAMD64: "qemu-system-x86_64", ArchARM64: "qemu-system-aarch64"}
	qemuPackage = map[string]string{ArchAMD64: "qemu-system-x86", ArchARM64: "qemu-system-arm"}
)

// Name implements vm.Driver.
func (d *Driver) Name() string { return "qemu" }

// Acceleration is what docker info shows: "KVM" or "TCG".
func (d *Driver) Acceleration() string { return strings.ToUpper(d.accel) }

// BootMode is how machines boot, for docker info.
func (d *Driver) BootMode() string {
	if d.templates != nil {
		return "template restore"
	}
	return "cold"
}

// Kit is the loaded kit.
func (d *Driver) Kit() *Kit { return d.kit }

// GuestKernel names the kernel machines boot, for docker info and the
// actor tree.
func (d *Driver) GuestKernel() string { return d.kit.Describe() }

// Boot implements vm.Driver. It returns once qemu runs with the agent's
// stream connected to it; the agent answers on it once the guest is up
// (the first call waits for that).
func (d *Driver) Boot(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if spec.StateDir == "" {
		return nil, errors.New("boot qemu: no state dir")
	}
	if len(spec.Layers) == 0 && spec.RootDir == "" {
		return nil, errors.New("boot qemu: no layers")
	}
	if spec.RootDir != "" {
		// Checked before anything is made: qemu would only fail once
		// started, in its own words.
		if !filepath.IsAbs(spec.RootDir) {
			return nil, fmt.Errorf("boot qemu: root dir %q is not absolute", spec.RootDir)
		}
		if st, err := os.Stat(spec.RootDir); err != nil {
			return nil, fmt.Errorf("boot qemu: root dir: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("boot qemu: root dir %s is not a directory", spec.RootDir)
		}
	}
	if err := os.MkdirAll(spec.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("boot qemu: %w", err)
	}
	l := d.launch(spec.StateDir, spec.MemoryBytes, spec.NanoCPUs)
	l.Shares = spec.Shares
	l.Disks = spec.Disks
	if spec.RootDir != "" {
		// The root is one more 9p share, after the volumes' so that their
		// tags and mount points stay those GuestPath gives; no image or
		// container disk. Templates serve this shape as any other: the
		// template's root share is a placeholder directory like its
		// volumes' and the guest mounts none before it is resumed with
		// the machine's own (qemu blocks migration only while a 9p export
		// is mounted).
		l.Shares = append(slices.Clip(spec.Shares), vm.Share{HostPath: spec.RootDir})
		l.RootShare = true
	} else {
		image, err := d.disks.Get(ctx, spec.Layers)
		if err != nil {
			return nil, fmt.Errorf("boot qemu: %w", err)
		}
		rw, err := containerDisk(ctx, spec.StateDir, d.cfg.DiskBytes)
		if err != nil {
			return nil, fmt.Errorf("boot qemu: %w", err)
		}
		l.ImageDisk, l.RWDisk = image, rw
	}
	var extra []*os.File
	var release []func()
	if spec.UnderlayMAC != "" {
		f, remove, dgram, err := d.openNIC(spec.UnderlayMAC)
		if err != nil {
			return nil, fmt.Errorf("boot qemu: %w", err)
		}
		defer f.Close() // qemu holds its own copy
		release = append(release, remove)
		l.NIC = &nic{FD: l.StreamFD + 1 + len(extra), MAC: spec.UnderlayMAC, Dgram: dgram}
		extra = append(extra, f)
	}
	if d.templates != nil {
		m, err := d.restore(ctx, l, extra, release)
		if err == nil {
			return m, nil
		}
		d.cfg.Log.Debug("qemu: booting cold", "machine", spec.ID, "err", err)
	}
	m, err := d.start(l, extra, release)
	if err != nil {
		return nil, fmt.Errorf("boot qemu: %w", err)
	}
	return m, nil
}

// openNIC makes a machine's link to the underlay: a socket on the switch
// (dgram) or a tap on the bridge, with what removes it once qemu is gone.
func (d *Driver) openNIC(mac string) (f *os.File, remove func(), dgram bool, err error) {
	switch {
	case d.sw != nil:
		hw, err := net.ParseMAC(mac)
		if err != nil {
			return nil, nil, false, fmt.Errorf("underlay mac: %w", err)
		}
		f, remove, err = d.sw.OpenNIC(hw)
		return f, remove, true, err
	case d.underlay != nil:
		f, remove, err = d.underlay.OpenTap()
		return f, remove, false, err
	}
	return nil, nil, false, errors.New("a NIC was asked for but the driver has no underlay")
}

// restore boots l from its shape's template. On error nothing is left
// but what the caller passed (release has not run): it boots cold.
func (d *Driver) restore(ctx context.Context, l launch, extra []*os.File, release []func()) (*machine, error) {
	dir, err := d.templates.get(ctx, l.shape())
	if err != nil {
		return nil, err
	}
	r, err := l.restore(dir, l.StreamFD+1+len(extra))
	if err != nil {
		return nil, err
	}
	defer r.close()
	m, err := d.start(l, append(extra, r.files()...), nil)
	if err != nil {
		return nil, err
	}
	if err := r.run(m); err != nil {
		err = fmt.Errorf("restore %s: %w%s", filepath.Base(dir), err, detail(m.stderr.String(), ""))
		m.Kill()
		// A template no machine restores is made anew by the next.
		d.templates.discard(dir)
		d.cfg.Log.Warn("qemu template dropped", "err", err)
		return nil, err
	}
	m.adopt(release)
	return m, nil
}

// launch fills in what every machine of this driver shares.
func (d *Driver) launch(stateDir string, memory, nanoCPUs int64) launch {
	return launch{
		Arch:        d.kit.Arch,
		Accel:       d.accel,
		Kernel:      d.kit.Kernel,
		Compiled:    d.kit.Source != "",
		Initrd:      d.initrd,
		Console:     filepath.Join(stateDir, consoleLog),
		MemoryBytes: vm.MemoryBytes(memory),
		CPUs:        vm.CPUs(nanoCPUs, runtime.NumCPU()),
		StreamFD:    3,
		TSCkHz:      d.tscKHz,
	}
}

// vmRootfs is how the agent mounts the container's root: both disks, by
// serial, then the overlay of the image under the writable layer; or, for
// a RootDir machine, its root share, bound as it is. The volumes' shares
// are mounted alongside, for the binds made from them.
func vmRootfs(l launch) vm.RootfsSpec {
	var spec vm.RootfsSpec
	if l.RootShare {
		spec.Mounts = []vm.DeviceMount{{
			Source: vm.ShareTag(len(l.Shares) - 1), Target: rootShareMount, FSType: "9p", Options: rootShareOptions,
		}}
		spec.Dir = rootShareMount
	} else {
		const image, rw = "/mnt/image", "/mnt/rw"
		spec = vm.RootfsSpec{
			Mounts: []vm.DeviceMount{
				{Source: "/dev/disk/by-id/virtio-" + imageSerial, Target: image, FSType: "ext4", ReadOnly: true},
				{Source: "/dev/disk/by-id/virtio-" + containerSerial, Target: rw, FSType: "ext4"},
			},
			Lower: []string{image},
			Upper: rw + "/" + rwUpper,
			Work:  rw + "/" + rwWork,
		}
	}
	for i, sh := range l.volumeShares() {
		spec.Mounts = append(spec.Mounts, vm.DeviceMount{
			Source: vm.ShareTag(i), Target: vm.ShareMount(i), FSType: "9p", ReadOnly: sh.ReadOnly, Options: shareOptions,
		})
	}
	for i, d := range l.Disks {
		spec.Mounts = append(spec.Mounts, vm.DeviceMount{
			Source: "/dev/disk/by-id/virtio-" + volumeSerial(i), Target: volumeMount(i), FSType: "ext4", ReadOnly: d.ReadOnly,
		})
	}
	return spec
}

// start runs qemu for l, the agent's stream on a socketpair whose one end
// qemu inherits as fd 3, extra files after it. release runs when the
// machine is gone. Nothing is left behind on error.
func (d *Driver) start(l launch, extra []*os.File, release []func()) (m *machine, err error) {
	defer func() {
		if err != nil {
			for _, r := range release {
				r()
			}
		}
	}()
	console, err := os.OpenFile(l.Console, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	console.Close() // qemu writes it; opened here to start each boot afresh
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	guestEnd := os.NewFile(uintptr(fds[1]), "agent-stream")
	defer guestEnd.Close()
	hostEnd := os.NewFile(uintptr(fds[0]), "host-stream")
	conn, err := net.FileConn(hostEnd)
	hostEnd.Close()
	if err != nil {
		return nil, err
	}
	stderr := &tailBuffer{max: 4096}
	cmd := &exec.Cmd{
		Path:       d.cfg.QEMU,
		Args:       append([]string{d.cfg.QEMU}, l.args()...),
		Env:        []string{},
		Stdout:     stderr,
		Stderr:     stderr,
		ExtraFiles: append([]*os.File{guestEnd}, extra...), // fd 3, then the extras
		SysProcAttr: &syscall.SysProcAttr{
			// The daemon's death takes its machines with it.
			Pdeathsig: unix.SIGKILL,
			Setpgid:   true,
		},
	}
	if err := hostproc.StartOnSteadyThread(cmd); err != nil {
		conn.Close()
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	m = &machine{cmd: cmd, conn: conn, console: l.Console, stderr: stderr, rootfs: vmRootfs(l),
		shares: l.volumeShares(), disks: l.Disks, release: release, done: make(chan struct{})}
	go m.wait()
	return m, nil
}

// machine is one running qemu.
type machine struct {
	cmd     *exec.Cmd
	conn    net.Conn
	console string
	stderr  *tailBuffer
	rootfs  vm.RootfsSpec
	shares  []vm.Share
	disks   []vm.Disk
	release []func() // run once qemu is gone (the tap); under mu

	done     chan struct{}
	err      error
	killed   bool // by Kill: an expected end
	exited   bool // wait has taken release
	mu       sync.Mutex
	killOnce sync.Once
}

// Conn implements vm.Machine.
func (m *machine) Conn() net.Conn { return m.conn }

// Rootfs implements vm.Machine.
func (m *machine) Rootfs() vm.RootfsSpec { return m.rootfs }

// GuestPath implements vm.GuestPaths: a host path inside a share, as the
// agent sees it.
func (m *machine) GuestPath(hostPath string) (string, bool) {
	return vm.GuestPath(m.shares, hostPath)
}

// DiskPath implements vm.DiskPaths.
func (m *machine) DiskPath(image string) (string, bool) { return diskPath(m.disks, image) }

// Done implements vm.Machine.
func (m *machine) Done() <-chan struct{} { return m.done }

// Err implements vm.Machine: nil after the guest powered off, else why
// qemu ended, with the end of its output and of the guest's console.
func (m *machine) Err() error {
	select {
	case <-m.done:
		return m.err
	default:
		return nil
	}
}

// Pid is qemu's process ID.
func (m *machine) Pid() int { return m.cmd.Process.Pid }

func (m *machine) wait() {
	err := m.cmd.Wait()
	// The guest is gone: so is the stream, at once, for whoever reads it.
	m.conn.Close()
	m.mu.Lock()
	killed := m.killed
	m.exited = true
	release := m.release
	m.mu.Unlock()
	console := hostproc.Tail(m.console, 2048)
	switch {
	case killed:
		err = nil
	case err != nil:
		err = fmt.Errorf("qemu: %w%s", err, detail(m.stderr.String(), console))
	case strings.Contains(console, "Kernel panic"):
		// A panic resets the guest and -no-reboot ends qemu with status 0.
		err = fmt.Errorf("qemu: guest kernel panicked%s", detail("", console))
	}
	m.err = err
	for _, r := range release {
		r()
	}
	close(m.done)
}

// adopt makes release m's to run once qemu is gone, now if it is.
func (m *machine) adopt(release []func()) {
	m.mu.Lock()
	if !m.exited {
		m.release = append(m.release, release...)
		release = nil
	}
	m.mu.Unlock()
	for _, r := range release {
		r()
	}
}

// Kill implements vm.Machine.
func (m *machine) Kill() error {
	m.killOnce.Do(func() {
		m.mu.Lock()
		m.killed = true
		m.mu.Unlock()
		select {
		case <-m.done:
		default:
			m.cmd.Process.Kill() // ESRCH only: it exited since the check
		}
		<-m.done
		m.conn.Close()
	})
	return nil
}

func detail(stderr, console string) string {
	var parts []string
	if s := strings.TrimSpace(stderr); s != "" {
		parts = append(parts, "qemu says: "+s)
	}
	if s := strings.TrimSpace(console); s != "" {
		parts = append(parts, "console ends: "+s)
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
