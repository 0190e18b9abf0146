package qemu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/arcavm/arca/guest/vm"
)

// Acceleration modes.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// Serials the guest finds its disks by (VMInit links them under
// /dev/disk/by-id/virtio-SERIAL).
const (
	imageSerial     = "arca-image"
	containerSerial = "arca-rw"
)

// agentPortName is the virtio-serial port the agent serves on; it must be
// wire.VMPortName (a test checks).
const agentPortName = "arca"

// templateParam is wire.VMTemplateParam (a test checks).
const templateParam = "arca.template"

// resetParam is wire.VMPowerOffParam=reset (a test checks): the agent ends
// the machine with a reset, which -no-reboot makes qemu's exit. Arca's
// own amd64 kernel has no ACPI and could not power off; a reset works with
// every kernel and both boards.
const resetParam = "arca.poweroff=reset"

// launch is everything the qemu command line is made of: a value, so
// tests can inspect what a spec turns into.
type launch struct {
	// Arch is the guest's: ArchAMD64 (microvm, virtio-mmio) or ArchARM64
	// (virt, virtio-pci); "" is ArchAMD64.
	Arch   string
	Accel  string
	Kernel string
	// Compiled says the kernel is Arca's own (scripts/kernel.sh), not
	// Debian's generic one: it lacks the hardware some arguments are for.
	Compiled    bool
	Initrd      string
	Console     string // serial console log file
	MemoryBytes int64
	CPUs        int
	ImageDisk   string // shared, read-only (empty for none: the probe)
	RWDisk      string // the container's own (empty for none)
	StreamFD    int    // the agent's stream: a connected socket qemu inherits
	// TSCkHz is the host's TSC rate, which a TCG guest's TSC runs at. The
	// guest is told it: calibrating against the emulated PIT fails on a
	// busy host, and the kernel then hangs waiting for timer ticks.
	TSCkHz int64
	// NIC, when set, is the machine's link to the underlay: a socket on
	// the daemon's switch or a tap on its bridge, inherited as fd FD.
	NIC *nic
	// Shares are host directories given to the guest over 9p, tagged
	// vm.ShareTag(i) in order.
	Shares []vm.Share
	// RootShare says the last of Shares is the machine's root
	// (MachineSpec.RootDir), not a volume's.
	RootShare bool
	// Disks are block volumes' images, each a virtio-blk drive with
	// serial volumeSerial(i) in order.
	Disks []vm.Disk

	// Template boots the guest as a template, or restores one: the agent
	// waits for the host's wire.Resume before it touches its disks (see
	// template_linux.go).
	Template bool
	// RAM, when set, backs the guest's memory with a file: a template's
	// memory is written to it, a restored machine maps it copy-on-write.
	RAM *ramFile
	// Incoming starts qemu waiting for a template's device state, which
	// it is given over QMP (restore).
	Incoming bool
	// QMPFD, when set, is an inherited socket qemu serves QMP on.
	QMPFD int
}

// nic is a network card on an inherited descriptor, or on nothing (a
// template's: FD 0).
type nic struct {
	FD  int
	MAC string
	// Dgram says FD is a connected unix datagram socket on the daemon's
	// switch (one frame per datagram), not a tap.
	Dgram bool
}

// ramFile is guest memory in a file.
type ramFile struct {
	Path string
	// Shared maps it shared (the guest's writes reach the file: a
	// template); else privately (they stay the machine's own).
	Shared bool
}

// volumeSerial is the serial of the i-th block volume's drive;
// volumeMount is where the agent mounts its filesystem.
func volumeSerial(i int) string { return "arca-vol" + strconv.Itoa(i) }
func volumeMount(i int) string  { return "/mnt/vol" + strconv.Itoa(i) }

// shareOptions are the guest's 9p mount options: the Linux dialect, a
// message size large enough for file copies to move in big pieces, and
// cache=mmap, without which 9p refuses (EINVAL) a shared mapping of a
// file opened for writing: the way bbolt (buildkitd's state in its
// volume), LMDB and SQLite's WAL index use their files. Only mapped
// pages are cached; reads and writes still go to the host each time.
const shareOptions = "trans=virtio,version=9p2000.L,msize=262144,cache=mmap"

// rootShareMount is where the agent mounts a RootDir machine's root
// share before binding it as the root.
const rootShareMount = "/mnt/root"

// rootShareOptions are shareOptions with cache=mmap: without a cache a 9p
// file cannot be mapped shared and writable, which programs a build step
// runs do (apt's package cache). Only mapped pages are cached; reads and
// writes still go to the host at once, so it sees what the step wrote.
const rootShareOptions = shareOptions + ",cache=mmap"

// volumeShares are l's shares but its root's.
func (l launch) volumeShares() []vm.Share {
	if l.RootShare && len(l.Shares) > 0 {
		return l.Shares[:len(l.Shares)-1]
	}
	return l.Shares
}

// board is what differs between the architectures' machines.
type board struct {
	machine string // -M
	console string // the serial console's name in the guest
	// bus is the virtio devices' transport, as qemu's device names end:
	// "device" (virtio-mmio) or "pci".
	bus string
}

var boards = map[string]board{
	// microvm: no PCI, no firmware, virtio-mmio only; the fastest x86 boot.
	ArchAMD64: {machine: "microvm,x-option-roms=off,rtc=on,isa-serial=on", console: "ttyS0", bus: "device"},
	// virt: the kernel is loaded directly (no firmware) with a device tree
	// qemu makes; its PCIe host bridge carries virtio-pci, as vz does.
	ArchARM64: {machine: "virt", console: "ttyAMA0", bus: "pci"},
}

// machine is -M: the board's, and on microvm without ACPI for Arca's
// kernel, which has none. Only then does qemu put its virtio-mmio devices
// on the kernel command line, where that kernel finds them (Debian's
// reads them from ACPI's tables).
func (l launch) machine() string {
	m := l.board().machine
	if l.Compiled && l.Arch != ArchARM64 {
		m += ",acpi=off"
	}
	return m
}

func (l launch) board() board {
	if b, ok := boards[l.Arch]; ok {
		return b
	}
	return boards[ArchAMD64]
}

// cpu is -cpu: the host's under KVM; under TCG everything qemu emulates
// (on arm64 with the cheap pointer-authentication algorithm, which TCG
// runs far faster than the architected one).
func (l launch) cpu() string {
	switch {
	case l.Accel == AccelKVM:
		return "host"
	case l.Arch == ArchARM64:
		return "max,pauth-impdef=on"
	default:
		return "max"
	}
}

// kernelCmdline is the guest kernel's command line. Everything after "--"
// goes to init: the agent, booting in VM mode.
func (l launch) kernelCmdline() string {
	disks := 0
	for _, d := range []string{l.ImageDisk, l.RWDisk} {
		if d != "" {
			disks++
		}
	}
	disks += len(l.Disks)
	args := []string{
		"console=" + l.board().console, "quiet", "loglevel=3",
	}
	if l.Arch == ArchARM64 {
		// A panic resets at once (PSCI), and -no-reboot turns the reset
		// into qemu's exit.
		args = append(args, "panic=-1", "rdinit=/init", "cryptomgr.notests", "random.trust_cpu=on")
	} else {
		if l.Accel == AccelTCG && l.TSCkHz > 0 {
			args = append(args, fmt.Sprintf("tsc_early_khz=%d", l.TSCkHz), "tsc=reliable", "no_timer_check")
		}
		args = append(args,
			// A panic resets at once, and -no-reboot turns the reset into
			// qemu's exit; reboot=t resets by triple fault, which microvm
			// (no keyboard controller, no PCI) always has.
			"panic=-1", "reboot=t",
			"rdinit=/init",
			"8250.nr_uarts=1", "noreplace-smp", "cryptomgr.notests", "random.trust_cpu=on",
		)
		if !l.Compiled {
			// No hardware to look for on microvm: Debian's kernel has the
			// drivers and would probe. Arca's has none of them, and must
			// not get these: an argument its kernel does not know, without
			// a dot or "=", is passed on to init, before "-vm".
			args = append(args, "pci=off", "i8042.noaux", "i8042.nokbd", "i8042.nopnp", "nomodeset")
		}
	}
	if l.Accel == AccelTCG {
		args = append(args, tcgKernelArgs...)
	}
	if l.Template {
		args = append(args, templateParam+"=1")
	}
	args = append(args, resetParam, fmt.Sprintf("arca.disks=%d", disks))
	if l.Arch == ArchARM64 {
		args = append(args, "--")
	}
	// microvm without ACPI (Arca's kernel) appends its virtio-mmio devices
	// to the command line (virtio_mmio.device=SIZE@BASE:IRQ), and the
	// kernel finds them only there: no "--" may come before them,
	// or they would be init's arguments. "-vm" then reaches init as an
	// argument the kernel does not know.
	args = append(args, "-vm")
	return strings.Join(args, " ")
}

// tcgKernelArgs turn off two of Debian's kernel hardening defaults when
// every guest instruction is emulated, where they cost a boot ~0.3 s of
// its ~2 s (docs/qemu.md has the measurements): rodata=off skips making
// the kernel's data read-only and the W+X page-table walk that checks it,
// init_on_alloc=0 stops the kernel zeroing every page it hands out
// (pages a process gets are still zeroed). Both guard the guest kernel
// against its own bugs; the VM boundary that isolates a container is
// qemu's, and under KVM, where they are cheap, they stay on.
var tcgKernelArgs = []string{"rodata=off", "init_on_alloc=0"}

// tcgCacheMiB caps TCG's cache of translated code. qemu's default, 1 GiB,
// is reserved and filled as code is translated, and what was filled stays
// resident for the VM's life, so the cap is what an idle VM pays at most.
// A full cache is flushed whole and everything is translated again: a
// restored guest's start fills ~30 MiB on no network and ~38 MiB on one
// (the guest's WireGuard, netlink and DNS paths), so at 32 MiB every start
// on a network flushed in the middle of its first process (its `process`
// step ~360 against ~200 ms); 48 leaves room for that and a few execs.
// Smaller caps trade starts for memory (docs/qemu.md).
const tcgCacheMiB = 48

func (l launch) accelOption() string {
	if l.Accel == AccelTCG {
		return fmt.Sprintf("%s,tb-size=%d", AccelTCG, tcgCacheMiB)
	}
	return l.Accel
}

// balloon says whether the machine gets a balloon with free page
// reporting: only when its memory is its own. qemu 7.2 discards a page
// of file-backed memory by punching a hole in the file, even when the
// mapping is private, so a restored machine's discards would zero the
// template's memory file under every other machine of the template and
// every later restore. A guest can ask for discards on its own (inflate),
// so the machines of a template (and the template, whose device list
// they must match) have no balloon at all.
func (l launch) balloon() bool { return !l.Template && l.RAM == nil }

// args is the qemu command line (without the binary).
func (l launch) args() []string {
	mem := (l.MemoryBytes + (1<<20 - 1)) >> 20
	b := l.board()
	virtio := func(kind string) string { return "virtio-" + kind + "-" + b.bus }
	a := []string{
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-M", l.machine(),
		"-accel", l.accelOption(),
		"-cpu", l.cpu(),
		"-m", strconv.FormatInt(mem, 10) + "M",
	}
	if l.RAM != nil {
		share := "off"
		if l.RAM.Shared {
			share = "on"
		}
		a = append(a,
			"-object", fmt.Sprintf("memory-backend-file,id=ram,size=%dM,mem-path=%s,share=%s", mem, qemuValue(l.RAM.Path), share),
			"-machine", "memory-backend=ram")
	}
	a = append(a,
		"-smp", strconv.Itoa(l.CPUs),
		"-kernel", l.Kernel,
		"-initrd", l.Initrd,
		"-append", l.kernelCmdline(),
		"-chardev", "file,id=console,path="+l.Console,
		"-serial", "chardev:console",
	)
	if l.ImageDisk != "" {
		// Read-only and shared by every machine of the image: a read-only
		// drive takes only a shared lock, so any number can open it.
		a = append(a,
			"-drive", "id=image,if=none,format=raw,readonly=on,aio=threads,file="+l.ImageDisk,
			"-device", virtio("blk")+",drive=image,serial="+imageSerial)
	}
	if l.RWDisk != "" {
		a = append(a,
			"-drive", "id=rw,if=none,format=raw,discard=unmap,aio=threads,file="+l.RWDisk,
			"-device", virtio("blk")+",drive=rw,serial="+containerSerial)
	}
	for i, d := range l.Disks {
		// A writable drive takes qemu's exclusive lock on the image: a
		// second machine could not open it even if the daemon let it try.
		drive := "id=vol" + strconv.Itoa(i) + ",if=none,format=raw,discard=unmap,aio=threads,file=" + qemuValue(d.Image)
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		a = append(a,
			"-drive", drive,
			"-device", virtio("blk")+",drive=vol"+strconv.Itoa(i)+",serial="+volumeSerial(i))
	}
	if l.NIC != nil {
		// The dgram backend takes an inherited socket as its local end
		// and sends on it as connected. It offers no offloads (no
		// virtio-net header), as the template's hub port does not either.
		netdev := "tap,id=ul,fd=" + strconv.Itoa(l.NIC.FD)
		switch {
		case l.NIC.FD == 0:
			netdev = "hubport,id=ul,hubid=0" // a template's: connected to nothing
		case l.NIC.Dgram:
			netdev = "dgram,id=ul,local.type=fd,local.str=" + strconv.Itoa(l.NIC.FD)
		}
		a = append(a,
			"-netdev", netdev,
			"-device", virtio("net")+",netdev=ul,mac="+l.NIC.MAC)
	}
	for i, sh := range l.Shares {
		// passthrough: files keep the owners the guest gives them, as on
		// a bind mount (qemu runs as root). remap: submounts of the share
		// keep distinct inode numbers.
		fsdev := "local,id=fs" + strconv.Itoa(i) + ",path=" + qemuValue(sh.HostPath) + ",security_model=passthrough,multidevs=remap"
		if sh.ReadOnly {
			fsdev += ",readonly=on"
		}
		a = append(a,
			"-fsdev", fsdev,
			"-device", virtio("9p")+",fsdev=fs"+strconv.Itoa(i)+",mount_tag="+vm.ShareTag(i))
	}
	if l.balloon() {
		// The guest reports the pages it frees (in blocks of 2 MiB or
		// more, seconds after), and qemu gives them back to the host.
		a = append(a, "-device", virtio("balloon")+",free-page-reporting=on")
	}
	a = append(a,
		"-chardev", "socket,id=agent,fd="+strconv.Itoa(l.StreamFD),
		"-device", virtio("serial")+",max_ports=2",
		"-device", "virtserialport,chardev=agent,name="+agentPortName,
	)
	if l.QMPFD > 0 {
		a = append(a, "-chardev", "socket,id=qmp,fd="+strconv.Itoa(l.QMPFD), "-mon", "chardev=qmp,mode=control")
	}
	if l.Incoming {
		// Told where from over QMP, once migration is set to leave the
		// template's memory file out (qemu 7.2 takes that only there).
		a = append(a, "-incoming", "defer")
	}
	return a
}

// diskPath is where the agent mounts the disk made from image.
func diskPath(disks []vm.Disk, image string) (string, bool) {
	for i, d := range disks {
		if d.Image == image {
			return volumeMount(i), true
		}
	}
	return "", false
}

// qemuValue escapes a value for qemu's option syntax, where a comma is
// written twice.
func qemuValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// hostTSCkHz reads the TSC rate from /proc/cpuinfo's contents: "cpu MHz"
// is the TSC's rate when the TSC is constant. 0 if unknown.
func hostTSCkHz(cpuinfo string) int64 {
	var mhz string
	constant := false
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "cpu MHz":
			if mhz == "" {
				mhz = strings.TrimSpace(v)
			}
		case "flags":
			constant = constant || slices.Contains(strings.Fields(v), "constant_tsc")
		}
	}
	f, err := strconv.ParseFloat(mhz, 64)
	if err != nil || !constant || f <= 0 {
		return 0
	}
	return int64(f*1000 + 0.5)
}
