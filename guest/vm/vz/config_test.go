package vz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/imagedisk"
	"github.com/arcavm/arca/guest/vm/underlay"
	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

var files = machineFiles{Kernel: "/kit/Image", Initrd: "/root/vz/initramfs-x.cpio", ImageDisk: "/root/disks/abc.ext4", RWDisk: "/state/disk.ext4"}

func TestNewVMConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    vm.MachineSpec
		check   func(t *testing.T, c vmConfig)
		wantErr string
	}{
		{
			name: "defaults",
			spec: vm.MachineSpec{ID: "c1", StateDir: "/state"},
			check: func(t *testing.T, c vmConfig) {
				if c.CPUs != vm.DefaultCPUs || c.MemoryBytes != vm.DefaultMemoryBytes {
					t.Errorf("cpus %d memory %d", c.CPUs, c.MemoryBytes)
				}
				if c.Kernel != files.Kernel || c.Initrd != files.Initrd || c.Console != "/state/console.log" {
					t.Errorf("boot files %q %q, console %q", c.Kernel, c.Initrd, c.Console)
				}
				want := []blockDevice{{files.ImageDisk, true, "arca-image"}, {files.RWDisk, false, "arca-rw"}}
				if !slices.Equal(c.Disks, want) {
					t.Errorf("disks %+v, want %+v", c.Disks, want)
				}
				if c.NIC != nil || len(c.Shares) != 0 || c.AgentPort != AgentPort {
					t.Errorf("nic %v shares %v port %d", c.NIC, c.Shares, c.AgentPort)
				}
			},
		},
		{
			name: "limits, nic and shares",
			spec: vm.MachineSpec{StateDir: "/state", MemoryBytes: 1 << 30, NanoCPUs: 2e9, UnderlayMAC: "02:42:ac:11:00:02",
				Shares: []vm.Share{{HostPath: "/Users/me/src/"}, {HostPath: "/var/lib/arca/volumes/v/_data", ReadOnly: true}}},
			check: func(t *testing.T, c vmConfig) {
				if c.CPUs != 2 || c.MemoryBytes != 1<<30 {
					t.Errorf("cpus %d memory %d", c.CPUs, c.MemoryBytes)
				}
				if c.NIC == nil || c.NIC.MAC.String() != "02:42:ac:11:00:02" || c.NIC.File != os.Stdin {
					t.Errorf("nic %+v", c.NIC)
				}
				want := []share{{"arca0", "/Users/me/src", false}, {"arca1", "/var/lib/arca/volumes/v/_data", true}}
				if !slices.Equal(c.Shares, want) {
					t.Errorf("shares %+v, want %+v", c.Shares, want)
				}
			},
		},
		{name: "bad mac", spec: vm.MachineSpec{StateDir: "/s", UnderlayMAC: "nope"}, wantErr: "underlay mac"},
		{name: "nic without underlay", spec: vm.MachineSpec{StateDir: "/s", UnderlayMAC: "02:42:ac:11:00:02"}, wantErr: "no underlay"},
		{name: "relative share", spec: vm.MachineSpec{StateDir: "/s", Shares: []vm.Share{{HostPath: "data"}}}, wantErr: "absolute"},
		{name: "no state dir", spec: vm.MachineSpec{}, wantErr: "state dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := files
			if tc.name == "limits, nic and shares" {
				f.NIC = os.Stdin // any file: the framework gets it as it is
			}
			c, err := newVMConfig(tc.spec, f, 8)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// TestBlockVolumes: a machine's block volumes are disks after the image's
// and the container's, in spec order, read-only as asked, each with the
// identifier its mount names, so the agent finds it by serial as on qemu.
func TestBlockVolumes(t *testing.T) {
	fixed := []blockDevice{{files.ImageDisk, true, "arca-image"}, {files.RWDisk, false, "arca-rw"}}
	for _, tc := range []struct {
		name       string
		disks      []vm.Disk
		wantDisks  []blockDevice // after the fixed two
		wantMounts []vm.DeviceMount
		wantErr    string
	}{
		{name: "none"},
		{
			name:       "one read-write",
			disks:      []vm.Disk{{Image: "/r/volumes/db/disk.ext4"}},
			wantDisks:  []blockDevice{{"/r/volumes/db/disk.ext4", false, "arca-vol0"}},
			wantMounts: []vm.DeviceMount{{Source: "/dev/disk/by-id/virtio-arca-vol0", Target: "/mnt/vol0", FSType: "ext4"}},
		},
		{
			name: "read-only and read-write, in order",
			disks: []vm.Disk{
				{Image: "/r/volumes/b2/disk.ext4", ReadOnly: true},
				{Image: "/r/volumes/b1/disk.ext4"},
				{Image: "/r/volumes/b3//disk.ext4", ReadOnly: true},
			},
			wantDisks: []blockDevice{
				{"/r/volumes/b2/disk.ext4", true, "arca-vol0"},
				{"/r/volumes/b1/disk.ext4", false, "arca-vol1"},
				{"/r/volumes/b3/disk.ext4", true, "arca-vol2"},
			},
			wantMounts: []vm.DeviceMount{
				{Source: "/dev/disk/by-id/virtio-arca-vol0", Target: "/mnt/vol0", FSType: "ext4", ReadOnly: true},
				{Source: "/dev/disk/by-id/virtio-arca-vol1", Target: "/mnt/vol1", FSType: "ext4"},
				{Source: "/dev/disk/by-id/virtio-arca-vol2", Target: "/mnt/vol2", FSType: "ext4", ReadOnly: true},
			},
		},
		{name: "relative image", disks: []vm.Disk{{Image: "volumes/b/disk.ext4"}}, wantErr: "absolute"},
		{name: "one image twice", disks: []vm.Disk{{Image: "/r/b/disk.ext4"}, {Image: "/r/b/./disk.ext4", ReadOnly: true}}, wantErr: "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := vm.MachineSpec{StateDir: "/s", Disks: tc.disks, Shares: []vm.Share{{HostPath: "/data"}}}
			c, err := newVMConfig(spec, files, 1)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := append(slices.Clone(fixed), tc.wantDisks...); !slices.Equal(c.Disks, want) {
				t.Errorf("disks\n%+v\nwant\n%+v", c.Disks, want)
			}
			// The agent waits for every disk the kernel line counts.
			if want := fmt.Sprintf("arca.disks=%d", 2+len(tc.disks)); !slices.Contains(strings.Fields(c.kernelCmdline()), want) {
				t.Errorf("kernel line %q lacks %s", c.kernelCmdline(), want)
			}
			// After the two disks and the share come the volumes.
			mounts := c.rootfs().Mounts
			if got := mounts[3:]; !slices.Equal(got, tc.wantMounts) && len(got)+len(tc.wantMounts) > 0 {
				t.Errorf("volume mounts\n%+v\nwant\n%+v", got, tc.wantMounts)
			}
			for i, d := range tc.disks {
				got, ok := c.diskPath(d.Image)
				if want := tc.wantMounts[i].Target; !ok || got != want {
					t.Errorf("disk path of %s: %q %v, want %q", d.Image, got, ok, want)
				}
			}
			if p, ok := c.diskPath(files.RWDisk); ok {
				t.Errorf("the container's own disk has a volume path: %s", p)
			}
			for _, d := range c.Disks {
				if len(d.ID) > maxSerial {
					t.Errorf("identifier %q over the framework's %d bytes", d.ID, maxSerial)
				}
			}
		})
	}
}

func TestKernelCmdline(t *testing.T) {
	c, err := newVMConfig(vm.MachineSpec{StateDir: "/s"}, files, 1)
	if err != nil {
		t.Fatal(err)
	}
	line := c.kernelCmdline()
	kernel, init, ok := strings.Cut(line, " -- ")
	if !ok || init != "-vm" {
		t.Fatalf("init's arguments: %q", line)
	}
	for _, want := range []string{"console=hvc0", "rdinit=/init", "panic=-1", "arca.disks=2", "arca.stream=vsock:1024"} {
		if !slices.Contains(strings.Fields(kernel), want) {
			t.Errorf("kernel line %q lacks %s", kernel, want)
		}
	}
	// The names the agent reads.
	if !strings.Contains(kernel, wire.VMStreamParam+"=vsock:") || !strings.Contains(kernel, wire.VMDiskParam+"=") {
		t.Errorf("kernel line %q does not use the agent's parameter names", kernel)
	}
}

func TestRootfs(t *testing.T) {
	c, err := newVMConfig(vm.MachineSpec{StateDir: "/s", Shares: []vm.Share{{HostPath: "/data", ReadOnly: true}, {HostPath: "/src"}}}, files, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := c.rootfs()
	want := []vm.DeviceMount{
		{Source: "/dev/disk/by-id/virtio-arca-image", Target: "/mnt/image", FSType: "ext4", ReadOnly: true},
		{Source: "/dev/disk/by-id/virtio-arca-rw", Target: "/mnt/rw", FSType: "ext4"},
		{Source: "arca0", Target: "/mnt/share0", FSType: "virtiofs", ReadOnly: true},
		{Source: "arca1", Target: "/mnt/share1", FSType: "virtiofs"},
	}
	if !slices.Equal(r.Mounts, want) {
		t.Errorf("mounts\n%+v\nwant\n%+v", r.Mounts, want)
	}
	if !slices.Equal(r.Lower, []string{"/mnt/image"}) || r.Upper != "/mnt/rw/upper" || r.Work != "/mnt/rw/work" {
		t.Errorf("overlay %+v does not sit on the disks", r)
	}
	// Each disk mount names a disk the VM has, by its identifier.
	for i, d := range c.Disks {
		if !strings.HasSuffix(r.Mounts[i].Source, "/virtio-"+d.ID) || r.Mounts[i].ReadOnly != d.ReadOnly {
			t.Errorf("mount %+v does not match disk %+v", r.Mounts[i], d)
		}
	}
}

func TestGuestPath(t *testing.T) {
	c, err := newVMConfig(vm.MachineSpec{StateDir: "/s", Shares: []vm.Share{{HostPath: "/var/lib/arca/volumes/v/_data"}, {HostPath: "/etc/app/"}}}, files, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/arca/volumes/v/_data", "/mnt/share0"},
		{"/var/lib/arca/volumes/v/_data/sub/f", "/mnt/share0/sub/f"},
		{"/etc/app/nginx.conf", "/mnt/share1/nginx.conf"},
		{"/etc/app", "/mnt/share1"},
		{"/var/lib/arca/volumes/v/_database", ""},
		{"/elsewhere", ""},
	} {
		got, ok := c.guestPath(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: got %q %v, want %q", tc.in, got, ok, tc.want)
		}
	}
}

// fakeDisks writes marker files and counts builds; fail makes every build
// fail after writing half a file.
type fakeDisks struct {
	images, writables atomic.Int32
	fail              bool
}

func (f *fakeDisks) ImageDisk(ctx context.Context, layers []string, out string) error {
	f.images.Add(1)
	if f.fail {
		os.WriteFile(out, []byte("half"), 0o644)
		return errors.New("writer broke")
	}
	return os.WriteFile(out, []byte("image:"+strings.Join(layers, ",")), 0o644)
}

func (f *fakeDisks) WritableDisk(ctx context.Context, out string, size int64) error {
	f.writables.Add(1)
	if f.fail {
		return errors.New("writer broke")
	}
	return os.WriteFile(out, []byte("rw"), 0o644)
}

// fakeKit writes a kit as scripts/kit.sh lays it out.
func fakeKit(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		".complete": "", "release": "6.1.0-test-arm64\n", "vmlinux": "KERNEL",
		"modules.boot": "virtio_blk.ko\n", "modules.extra": "virtiofs.ko\n",
		"modules/virtio_blk.ko": "a", "modules/virtiofs.ko": "b",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestNewHost(t *testing.T) {
	agentBin := filepath.Join(t.TempDir(), "arca-agent")
	os.WriteFile(agentBin, []byte("AGENT"), 0o755)
	kitDir := fakeKit(t)
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"ok", Config{Kit: kitDir, Agent: agentBin, Root: t.TempDir(), Disks: &fakeDisks{}}, ""},
		{"no disk builder", Config{Kit: kitDir, Agent: agentBin, Root: t.TempDir()}, "disk builder"},
		{"no root", Config{Kit: kitDir, Agent: agentBin, Disks: &fakeDisks{}}, "root"},
		{"no kit", Config{Kit: filepath.Join(t.TempDir(), "none"), Agent: agentBin, Root: t.TempDir(), Disks: &fakeDisks{}}, "kit"},
		{"no agent", Config{Kit: kitDir, Agent: "/nonexistent/arca-agent", Root: t.TempDir(), Disks: &fakeDisks{}}, "arca-agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := newHost(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Dir(h.initrd) != filepath.Join(tc.cfg.Root, "vz") || h.cfg.DiskBytes != DefaultDiskBytes {
				t.Errorf("initrd %s, disk bytes %d", h.initrd, h.cfg.DiskBytes)
			}
			if _, err := os.Stat(h.initrd); err != nil {
				t.Errorf("initramfs not packed: %v", err)
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	agentBin := filepath.Join(t.TempDir(), "arca-agent")
	os.WriteFile(agentBin, []byte("AGENT"), 0o755)
	root := t.TempDir()
	disks := &fakeDisks{}
	h, err := newHost(Config{Kit: fakeKit(t), Agent: agentBin, Root: root, Disks: disks})
	if err != nil {
		t.Fatal(err)
	}
	chain := strings.Repeat("ab", 32)
	layers := []string{filepath.Join(root, "layers", chain, "diff")}

	// Machines of one image booting at once: one image disk, one
	// writable disk each.
	var wg sync.WaitGroup
	cfgs := make([]vmConfig, 4)
	errs := make([]error, 4)
	for i := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfgs[i], _, errs[i] = h.prepare(context.Background(), vm.MachineSpec{
				ID: "c", StateDir: filepath.Join(root, "containers", string(rune('a'+i))), Layers: layers,
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("machine %d: %v", i, err)
		}
	}
	if n := disks.images.Load(); n != 1 {
		t.Errorf("image disk built %d times, want once", n)
	}
	if n := disks.writables.Load(); n != 4 {
		t.Errorf("%d writable disks, want 4", n)
	}
	for _, c := range cfgs {
		if c.Disks[0].Path != filepath.Join(root, "disks", chain+".ext4") || filepath.Base(c.Disks[1].Path) != "disk.ext4" {
			t.Errorf("disks %+v", c.Disks)
		}
		if c.Kernel != filepath.Join(h.kit.Dir, "vmlinux") || c.Initrd != h.initrd {
			t.Errorf("boot files %s %s", c.Kernel, c.Initrd)
		}
	}

	// A restart keeps the container's disk.
	if _, _, err := h.prepare(context.Background(), vm.MachineSpec{StateDir: filepath.Join(root, "containers", "a"), Layers: layers}); err != nil {
		t.Fatal(err)
	}
	if disks.images.Load() != 1 || disks.writables.Load() != 4 {
		t.Errorf("a restart rebuilt disks: %d images, %d writable", disks.images.Load(), disks.writables.Load())
	}

	if _, _, err := h.prepare(context.Background(), vm.MachineSpec{StateDir: filepath.Join(root, "x")}); err == nil {
		t.Error("a spec without layers was prepared")
	}
	rootDir := vm.MachineSpec{StateDir: filepath.Join(root, "z"), RootDir: t.TempDir()}
	if _, _, err := h.prepare(context.Background(), rootDir); err == nil || !strings.Contains(err.Error(), "not supported on vz") {
		t.Errorf("a root dir machine: %v", err)
	}
	if _, err := os.Stat(rootDir.StateDir); !os.IsNotExist(err) {
		t.Errorf("a refused root dir machine left its state dir: %v", err)
	}
	// Block volumes' images are the volumes actor's: used as they are,
	// and a missing one is refused before anything is made.
	vol := filepath.Join(root, "volumes", "b", "disk.ext4")
	os.MkdirAll(filepath.Dir(vol), 0o755)
	os.WriteFile(vol, nil, 0o600)
	c, _, err := h.prepare(context.Background(), vm.MachineSpec{StateDir: filepath.Join(root, "v"), Layers: layers, Disks: []vm.Disk{{Image: vol}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Disks) != 3 || c.Disks[2] != (blockDevice{vol, false, "arca-vol0"}) {
		t.Errorf("disks with a block volume: %+v", c.Disks)
	}
	missing := vm.MachineSpec{StateDir: filepath.Join(root, "w"), Layers: layers, Disks: []vm.Disk{{Image: filepath.Join(root, "volumes", "gone", "disk.ext4")}}}
	if _, _, err := h.prepare(context.Background(), missing); err == nil || !strings.Contains(err.Error(), "block volume") {
		t.Errorf("a missing block volume image: %v", err)
	}
	if _, err := os.Stat(missing.StateDir); !os.IsNotExist(err) {
		t.Errorf("a refused machine left its state dir: %v", err)
	}
	dirVol := vm.MachineSpec{StateDir: filepath.Join(root, "w"), Layers: layers, Disks: []vm.Disk{{Image: filepath.Dir(vol)}}}
	if _, _, err := h.prepare(context.Background(), dirVol); err == nil || !strings.Contains(err.Error(), "not a disk image") {
		t.Errorf("a directory as a block volume image: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := h.prepare(ctx, vm.MachineSpec{StateDir: filepath.Join(root, "y"), Layers: layers}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled boot: %v", err)
	}
}

// A container's machine on a network gets a NIC on the daemon's switch:
// the VM's end of a unix datagram socket pair (what
// VZFileHandleNetworkDeviceAttachment takes), the other end a port of the
// switch, released with the VM. A frame the VM sends reaches another
// machine's NIC, as on qemu, where the same switch runs the same code.
func TestPrepareNICOnSwitch(t *testing.T) {
	agentBin := filepath.Join(t.TempDir(), "arca-agent")
	os.WriteFile(agentBin, []byte("AGENT"), 0o755)
	root := t.TempDir()
	h, err := newHost(Config{Kit: fakeKit(t), Agent: agentBin, Root: root, Disks: &fakeDisks{}})
	if err != nil {
		t.Fatal(err)
	}
	sw, err := underlay.NewSwitch(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	h.nics = sw
	layers := []string{filepath.Join(root, "layers", "l", "diff")}
	mac := "02:42:c6:12:00:02"
	c, release, err := h.prepare(context.Background(), vm.MachineSpec{StateDir: filepath.Join(root, "containers", "a"), Layers: layers, UnderlayMAC: mac})
	if err != nil {
		t.Fatal(err)
	}
	if c.NIC == nil || c.NIC.MAC.String() != mac || c.NIC.File == nil {
		t.Fatalf("nic %+v, want the spec's MAC on a socket", c.NIC)
	}
	fd := int(c.NIC.File.Fd())
	if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_DGRAM {
		t.Errorf("the NIC's file: socket type %d (%v), want SOCK_DGRAM", typ, err)
	}
	if sa, err := unix.Getsockname(fd); err != nil {
		t.Errorf("the NIC's file: %v", err)
	} else if _, ok := sa.(*unix.SockaddrUnix); !ok {
		t.Errorf("the NIC's file is a %T socket, want a unix one", sa)
	}

	// Another machine's NIC on the switch gets the VM's broadcast whole.
	other, detach, err := sw.OpenNIC(underlay.NewMAC())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	defer detach()
	hw, _ := net.ParseMAC(mac)
	frame := append(append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, hw...), 0x08, 0x06, 'a', 'r', 'p')
	if _, err := c.NIC.File.Write(frame); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	other.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := other.Read(buf)
	if err != nil || string(buf[:n]) != string(frame) {
		t.Fatalf("the other NIC read %x, %v; want %x", buf[:n], err, frame)
	}
	release()
	if _, err := c.NIC.File.Write(frame); err == nil {
		t.Error("the NIC's file is still open after release")
	}
}

func TestFailedBuildLeavesNoDisk(t *testing.T) {
	dir := t.TempDir()
	b := &fakeDisks{fail: true}
	d := &imagedisk.Cache{Dir: filepath.Join(dir, "disks"), Build: b.ImageDisk}
	if _, err := d.Get(context.Background(), []string{"/l/one"}); err == nil || !strings.Contains(err.Error(), "writer broke") {
		t.Fatalf("failed build: %v", err)
	}
	if _, err := containerDisk(context.Background(), dir, 1<<30, b); err == nil {
		t.Fatal("failed writable disk: no error")
	}
	var left []string
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("a failed build left %v", left)
	}
	// The next boot tries again.
	b.fail = false
	if p, err := d.Get(context.Background(), []string{"/l/one"}); err != nil || b.images.Load() != 2 {
		t.Errorf("retry: %s %v after %d builds", p, err, b.images.Load())
	}
}
