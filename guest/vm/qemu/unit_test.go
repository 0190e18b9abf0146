//go:build linux

package qemu

import (
	"errors"
	"github.com/arcavm/arca/guest/vm"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// argValues returns the values of every occurrence of flag in args.
func argValues(args []string, flag string) []string {
	var out []string
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			out = append(out, args[i+1])
		}
	}
	return out
}

func TestLaunchArgs(t *testing.T) {
	base := launch{Accel: AccelTCG, Kernel: "/kit/vmlinux", Initrd: "/kit/initrd", Console: "/s/console.log",
		MemoryBytes: 512 << 20, CPUs: 2, StreamFD: 3, TSCkHz: 2500000}
	full := base
	full.ImageDisk, full.RWDisk = "/disks/abc.ext4", "/s/disk.ext4"
	kvm := full
	kvm.Accel = AccelKVM

	for _, tc := range []struct {
		name       string
		l          launch
		want       map[string][]string // flag -> values, in order
		cmdline    []string            // substrings of -append
		notCmdline []string
	}{
		{
			name: "probe: no disks",
			l:    base,
			want: map[string][]string{
				"-accel": {"tcg,tb-size=48"}, "-cpu": {"max"}, "-m": {"512M"}, "-smp": {"2"},
				"-kernel": {"/kit/vmlinux"}, "-initrd": {"/kit/initrd"}, "-drive": nil,
				"-chardev": {"file,id=console,path=/s/console.log", "socket,id=agent,fd=3"},
			},
			cmdline: []string{"arca.disks=0", "tsc_early_khz=2500000", "panic=-1", "rodata=off", "init_on_alloc=0", " -vm"},
		},
		{
			name: "container on tcg",
			l:    full,
			want: map[string][]string{
				"-drive": {
					"id=image,if=none,format=raw,readonly=on,aio=threads,file=/disks/abc.ext4",
					"id=rw,if=none,format=raw,discard=unmap,aio=threads,file=/s/disk.ext4",
				},
				"-device": {
					"virtio-blk-device,drive=image,serial=arca-image",
					"virtio-blk-device,drive=rw,serial=arca-rw",
					"virtio-balloon-device,free-page-reporting=on",
					"virtio-serial-device,max_ports=2",
					"virtserialport,chardev=agent,name=arca",
				},
			},
			cmdline: []string{"arca.disks=2"},
		},
		{
			name:       "kvm: host cpu, no tsc hint",
			l:          kvm,
			want:       map[string][]string{"-accel": {"kvm"}, "-cpu": {"host"}},
			notCmdline: []string{"tsc_early_khz", "rodata=off", "init_on_alloc=0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.l.args()
			for _, must := range []string{"-nodefaults", "-no-reboot", "-nographic"} {
				if !slices.Contains(args, must) {
					t.Errorf("no %s in %q", must, args)
				}
			}
			if m := argValues(args, "-M"); len(m) != 1 || !strings.HasPrefix(m[0], "microvm") {
				t.Errorf("-M = %q, want microvm", m)
			}
			for flag, want := range tc.want {
				if got := argValues(args, flag); !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", flag, got, want)
				}
			}
			app := argValues(args, "-append")
			if len(app) != 1 {
				t.Fatalf("-append = %q", app)
			}
			for _, s := range tc.cmdline {
				if !strings.Contains(app[0], s) {
					t.Errorf("kernel cmdline %q lacks %q", app[0], s)
				}
			}
			for _, s := range tc.notCmdline {
				if strings.Contains(app[0], s) {
					t.Errorf("kernel cmdline %q has %q", app[0], s)
				}
			}
			// microvm appends its devices to the command line: no "--"
			// may come before them, and init's -vm comes last.
			if !strings.HasSuffix(app[0], " -vm") || strings.Contains(app[0], " -- ") {
				t.Errorf("init args must come last, with no \"--\": %q", app[0])
			}
		})
	}
}

func TestHostTSCkHz(t *testing.T) {
	for _, tc := range []struct {
		name, info string
		want       int64
	}{
		{"constant", "processor\t: 0\ncpu MHz\t\t: 2499.998\nflags\t\t: fpu tsc constant_tsc nonstop_tsc\n\nprocessor\t: 1\ncpu MHz\t\t: 1800.000\n", 2499998},
		{"not constant", "cpu MHz\t\t: 2499.998\nflags\t\t: fpu tsc\n", 0},
		{"no MHz", "flags\t\t: constant_tsc\n", 0},
		{"garbage", "cpu MHz\t\t: fast\nflags\t\t: constant_tsc\n", 0},
	} {
		if got := hostTSCkHz(tc.info); got != tc.want {
			t.Errorf("%s: hostTSCkHz = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestCachedVerdict(t *testing.T) {
	file := filepath.Join(t.TempDir(), "qemu", probeFile)
	boots := 0
	ok := func() error { boots++; return nil }
	hang := func() error { boots++; return errors.New("no agent within 3s") }
	for _, step := range []struct {
		key       string
		boot      func() error
		want      string
		wantBoots int
	}{
		{"k1 q1", hang, AccelTCG, 1},
		{"k1 q1", ok, AccelTCG, 1}, // cached: no boot
		{"k2 q1", ok, AccelKVM, 2}, // new kernel: probed again
		{"k2 q1", hang, AccelKVM, 2},
	} {
		if got := cachedVerdict(file, step.key, step.boot); got != step.want || boots != step.wantBoots {
			t.Fatalf("key %q: verdict %q after %d boots, want %q after %d", step.key, got, boots, step.want, step.wantBoots)
		}
	}
	os.WriteFile(file, []byte("k2 q1\nmaybe\n"), 0o644)
	if got := cachedVerdict(file, "k2 q1", ok); got != AccelKVM || boots != 3 {
		t.Errorf("a corrupt cache must be re-probed: %q after %d boots", got, boots)
	}
}

func TestVMRootfs(t *testing.T) {
	r := vmRootfs(launch{Shares: []vm.Share{{HostPath: "/data", ReadOnly: true}}, Disks: []vm.Disk{{Image: "/v/disk.ext4"}}})
	if len(r.Mounts) != 4 || !r.Mounts[0].ReadOnly || r.Mounts[1].ReadOnly {
		t.Fatalf("mounts = %+v: want the image read-only, then the writable disk, then the share", r.Mounts)
	}
	if sh := r.Mounts[2]; sh.FSType != "9p" || sh.Source != vm.ShareTag(0) || sh.Target != vm.ShareMount(0) || !sh.ReadOnly || !strings.Contains(sh.Options, "trans=virtio") {
		t.Errorf("share mount %+v", sh)
	}
	if d := r.Mounts[3]; d.FSType != "ext4" || d.Source != "/dev/disk/by-id/virtio-"+volumeSerial(0) || d.Target != volumeMount(0) || d.ReadOnly {
		t.Errorf("block volume mount %+v", d)
	}
	if p, ok := diskPath([]vm.Disk{{Image: "/v/disk.ext4"}}, "/v/disk.ext4"); !ok || p != volumeMount(0) {
		t.Errorf("diskPath = %q %v", p, ok)
	}
	if _, ok := diskPath(nil, "/v/disk.ext4"); ok {
		t.Errorf("diskPath found a disk the machine was not given")
	}
	r.Mounts = r.Mounts[:2]
	if r.Lower[0] != r.Mounts[0].Target || !strings.HasPrefix(r.Upper, r.Mounts[1].Target+"/") ||
		!strings.HasPrefix(r.Work, r.Mounts[1].Target+"/") {
		t.Errorf("overlay %+v does not sit on the disks %+v", r, r.Mounts)
	}
	for _, m := range r.Mounts {
		if !strings.HasSuffix(m.Source, imageSerial) && !strings.HasSuffix(m.Source, containerSerial) {
			t.Errorf("disk %s not named by serial", m.Source)
		}
	}
}

func TestLaunchBlockVolumes(t *testing.T) {
	l := launch{Accel: AccelTCG, StreamFD: 3, ImageDisk: "/i.ext4", RWDisk: "/rw.ext4",
		Disks: []vm.Disk{{Image: "/v/a/disk.ext4"}, {Image: "/v/b,c/disk.ext4", ReadOnly: true}}}
	args := strings.Join(l.args(), " ")
	for _, want := range []string{
		"-drive id=vol0,if=none,format=raw,discard=unmap,aio=threads,file=/v/a/disk.ext4 -device virtio-blk-device,drive=vol0,serial=arca-vol0",
		"file=/v/b,,c/disk.ext4,readonly=on -device virtio-blk-device,drive=vol1,serial=arca-vol1",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q:\n%s", want, args)
		}
	}
	// The guest waits for every disk, the volumes' too.
	if !strings.Contains(l.kernelCmdline(), "arca.disks=4") {
		t.Errorf("cmdline %q", l.kernelCmdline())
	}
}

func TestLaunchNICAndShares(t *testing.T) {
	l := launch{Accel: AccelTCG, StreamFD: 3, NIC: &nic{FD: 4, MAC: "02:00:00:00:00:01"},
		Shares: []vm.Share{{HostPath: "/srv/a,b"}, {HostPath: "/etc/conf", ReadOnly: true}}}
	args := strings.Join(l.args(), " ")
	for _, want := range []string{
		"-netdev tap,id=ul,fd=4 -device virtio-net-device,netdev=ul,mac=02:00:00:00:00:01",
		"-fsdev local,id=fs0,path=/srv/a,,b,security_model=passthrough,multidevs=remap -device virtio-9p-device,fsdev=fs0,mount_tag=arca0",
		"-fsdev local,id=fs1,path=/etc/conf,security_model=passthrough,multidevs=remap,readonly=on -device virtio-9p-device,fsdev=fs1,mount_tag=arca1",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q:\n%s", want, args)
		}
	}
	// On the daemon's switch the card's backend is the inherited datagram
	// socket, the same device in front of it.
	l.NIC.Dgram = true
	if got := argValues(l.args(), "-netdev"); !slices.Equal(got, []string{"dgram,id=ul,local.type=fd,local.str=4"}) {
		t.Errorf("-netdev %q on the switch", got)
	}
	if got := argValues(l.args(), "-device"); !slices.Contains(got, "virtio-net-device,netdev=ul,mac=02:00:00:00:00:01") {
		t.Errorf("-device %q on the switch", got)
	}
}

// The arm64 machine is qemu's virt board with its devices on virtio-pci
// and a PL011 console; nothing of microvm's x86 command line.
func TestLaunchArgsARM64(t *testing.T) {
	l := launch{Arch: ArchARM64, Accel: AccelTCG, Kernel: "/kit/Image", Initrd: "/kit/initrd", Console: "/s/console.log",
		MemoryBytes: 512 << 20, CPUs: 1, StreamFD: 3, TSCkHz: 2500000,
		ImageDisk: "/disks/abc.ext4", RWDisk: "/s/disk.ext4",
		NIC: &nic{FD: 4, MAC: "02:00:00:00:00:01"}, Shares: []vm.Share{{HostPath: "/srv"}}}
	args := l.args()
	for flag, want := range map[string][]string{
		"-M":      {"virt"},
		"-cpu":    {"max,pauth-impdef=on"},
		"-kernel": {"/kit/Image"},
		"-device": {
			"virtio-blk-pci,drive=image,serial=arca-image",
			"virtio-blk-pci,drive=rw,serial=arca-rw",
			"virtio-net-pci,netdev=ul,mac=02:00:00:00:00:01",
			"virtio-9p-pci,fsdev=fs0,mount_tag=arca0",
			"virtio-balloon-pci,free-page-reporting=on",
			"virtio-serial-pci,max_ports=2",
			"virtserialport,chardev=agent,name=arca",
		},
	} {
		if got := argValues(args, flag); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", flag, got, want)
		}
	}
	app := argValues(args, "-append")
	if len(app) != 1 {
		t.Fatalf("-append = %q", app)
	}
	for _, s := range []string{"console=ttyAMA0", "rdinit=/init", "panic=-1", "arca.disks=2"} {
		if !strings.Contains(app[0], s) {
			t.Errorf("kernel cmdline %q lacks %q", app[0], s)
		}
	}
	for _, s := range []string{"ttyS0", "tsc", "pci=off", "i8042", "reboot=t"} {
		if strings.Contains(app[0], s) {
			t.Errorf("kernel cmdline %q has the x86 %q", app[0], s)
		}
	}
	if !strings.HasSuffix(app[0], " -- -vm") {
		t.Errorf("init args must come last: %q", app[0])
	}
	l.Accel = AccelKVM // an arm64 host
	if got := argValues(l.args(), "-cpu"); !slices.Equal(got, []string{"host"}) {
		t.Errorf("kvm -cpu = %q", got)
	}
}

// A RootDir machine: its root is the last 9p share, writable and mounted
// with a cache for shared mappings, then bound as the root; it has no
// disks of its own, and the volumes' shares keep their tags and mount
// points (GuestPath maps only them).
func TestRootDirLaunch(t *testing.T) {
	l := launch{Accel: AccelTCG, StreamFD: 3, Console: "/s/console.log",
		Shares:    []vm.Share{{HostPath: "/vol", ReadOnly: true}, {HostPath: "/build/snap,1"}},
		RootShare: true,
		Disks:     []vm.Disk{{Image: "/v/disk.ext4"}}}
	args := l.args()
	if got := argValues(args, "-drive"); len(got) != 1 || !strings.HasPrefix(got[0], "id=vol0,") {
		t.Errorf("-drive = %q, want the block volume's only", got)
	}
	if got := argValues(args, "-fsdev"); !slices.Equal(got, []string{
		"local,id=fs0,path=/vol,security_model=passthrough,multidevs=remap,readonly=on",
		"local,id=fs1,path=/build/snap,,1,security_model=passthrough,multidevs=remap",
	}) {
		t.Errorf("-fsdev = %q", got)
	}
	if !slices.Contains(argValues(args, "-device"), "virtio-9p-device,fsdev=fs1,mount_tag="+vm.ShareTag(1)) {
		t.Errorf("no 9p device for the root: %q", args)
	}
	if !strings.Contains(l.kernelCmdline(), "arca.disks=1") {
		t.Errorf("cmdline %q: the guest must wait for the volume's disk only", l.kernelCmdline())
	}

	r := vmRootfs(l)
	if r.Dir != rootShareMount || r.Lower != nil || r.Upper != "" || r.Work != "" {
		t.Errorf("rootfs %+v, want the root share's mount bound, no overlay", r)
	}
	if len(r.Mounts) != 3 {
		t.Fatalf("mounts %+v: want the root share, the volume's share, the volume's disk", r.Mounts)
	}
	if root := r.Mounts[0]; root != (vm.DeviceMount{Source: vm.ShareTag(1), Target: rootShareMount, FSType: "9p", Options: shareOptions + ",cache=mmap"}) {
		t.Errorf("root share mount %+v", root)
	}
	if sh := r.Mounts[1]; sh != (vm.DeviceMount{Source: vm.ShareTag(0), Target: vm.ShareMount(0), FSType: "9p", ReadOnly: true, Options: shareOptions}) {
		t.Errorf("volume share mount %+v", sh)
	}
	if d := r.Mounts[2]; d.Target != volumeMount(0) {
		t.Errorf("block volume mount %+v", d)
	}
	if got := l.volumeShares(); !slices.Equal(got, l.Shares[:1]) {
		t.Errorf("volume shares %+v", got)
	}
	if p, ok := vm.GuestPath(l.volumeShares(), "/vol/a"); !ok || p != vm.ShareMount(0)+"/a" {
		t.Errorf("volume's guest path %q %v", p, ok)
	}
	if p, ok := vm.GuestPath(l.volumeShares(), "/build/snap,1/etc"); ok {
		t.Errorf("a path in the root maps to %q", p)
	}

	// Its template's shape: the root share a placeholder like any other.
	s := l.shape()
	if !s.RootShare || s.Shares[1] != (vm.Share{HostPath: "share1"}) || s.ImageDisk != "" || s.RWDisk != "" {
		t.Errorf("shape %+v", s)
	}
}

// Arca's compiled amd64 kernel gets no arguments for hardware it lacks:
// one it does not know (nomodeset) would reach the agent as an argument
// before -vm. Every machine ends with a reset (no ACPI to power off).
func TestCompiledKernelCmdline(t *testing.T) {
	debian := launch{Accel: AccelTCG, TSCkHz: 2000000}
	compiled := debian
	compiled.Compiled = true
	if m := argValues(compiled.args(), "-M"); len(m) != 1 || !strings.HasSuffix(m[0], ",acpi=off") {
		t.Errorf("compiled kernel: -M %q, want microvm without ACPI (qemu then lists the devices on the command line)", m)
	}
	if m := argValues(debian.args(), "-M"); len(m) != 1 || strings.Contains(m[0], "acpi") {
		t.Errorf("Debian's kernel: -M %q, want ACPI as it was", m)
	}
	for _, s := range []string{"pci=off", "i8042.nokbd", "nomodeset"} {
		if !strings.Contains(debian.kernelCmdline(), s) {
			t.Errorf("Debian's kernel: %q lacks %q", debian.kernelCmdline(), s)
		}
		if strings.Contains(compiled.kernelCmdline(), s) {
			t.Errorf("compiled kernel: %q has %q", compiled.kernelCmdline(), s)
		}
	}
	for _, l := range []launch{debian, compiled, {Arch: ArchARM64, Accel: AccelTCG}} {
		c := l.kernelCmdline()
		if !strings.Contains(c, "tsc_early_khz=2000000") && l.Arch != ArchARM64 {
			t.Errorf("TCG without the TSC rate: %q", c)
		}
		if before, _, _ := strings.Cut(c, " -- "); !strings.Contains(before, resetParam) {
			t.Errorf("%q: no %s for the kernel", c, resetParam)
		}
	}
}

// A template and its restores share one memory file, which qemu 7.2 would
// punch holes in for a discarded page: their machines get no balloon,
// every other machine does.
func TestLaunchBalloon(t *testing.T) {
	cold := launch{Accel: AccelTCG, Kernel: "/kit/vmlinux", Initrd: "/kit/initrd", Console: "/s/console.log",
		MemoryBytes: 512 << 20, CPUs: 1, StreamFD: 3, ImageDisk: "/disks/abc.ext4", RWDisk: "/s/disk.ext4"}
	const balloon = "virtio-balloon-device,free-page-reporting=on"
	if !slices.Contains(argValues(cold.args(), "-device"), balloon) {
		t.Errorf("a cold machine has no balloon: %q", cold.args())
	}
	restored := cold
	restored.Template, restored.RAM, restored.Incoming = true, &ramFile{Path: "/t/ram"}, true
	build := cold.shape()
	build.RAM = &ramFile{Path: "/proc/self/fd/5", Shared: true}
	for name, l := range map[string]launch{"shape": cold.shape(), "template build": build, "restore": restored} {
		if slices.ContainsFunc(argValues(l.args(), "-device"), func(d string) bool { return strings.Contains(d, "balloon") }) {
			t.Errorf("%s has a balloon: %q", name, l.args())
		}
	}
}
