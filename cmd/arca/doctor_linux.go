package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/guest/vm/qemu"
)

func platform() string { return "linux/" + runtime.GOARCH }

func platformChecks(env doctorEnv) []finding {
	return []finding{
		checkKVM(env.devKVM, env.cpuinfo, filepath.Join(env.root, "qemu", "kvm-probe")),
		kitFinding(env.kit, "make kit builds it (into /var/cache/arca/kit), or pass --kit"),
		checkQEMU(),
		checkCgroups(env.mountinfo),
	}
}

// hostSummary: "Debian GNU/Linux 12 (bookworm), kernel 6.1.0-x, CPU, 2
// cores, 7.8 GiB memory".
func hostSummary() string {
	name := "Linux"
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		if v := keyValue(string(b), "PRETTY_NAME", "="); v != "" {
			name = strings.Trim(v, `"`)
		}
	}
	var kernel string
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		kernel = "kernel " + unix.ByteSliceToString(u.Release[:])
	}
	var cpu string
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpu = keyValue(string(b), "model name", ":")
	}
	var mem uint64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		kb, _ := strconv.ParseUint(strings.TrimSuffix(keyValue(string(b), "MemTotal", ":"), " kB"), 10, 64)
		mem = kb << 10
	}
	return formatHost(name, kernel, cpu, runtime.NumCPU(), mem)
}

// keyValue finds "key SEP value" among text's lines.
func keyValue(text, key, sep string) string {
	for _, line := range strings.Split(text, "\n") {
		k, v, found := strings.Cut(line, sep)
		if found && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// kvmAPIVersion is what KVM_GET_API_VERSION answers on every kernel
// since 2.6.22.
const kvmAPIVersion = 12

// kvmGetAPIVersion is the ioctl _IO(KVMIO, 0x00), KVMIO = 0xAE.
const kvmGetAPIVersion = 0xAE00

// checkKVM says whether qemu can use KVM here, and if not, why: the
// device, its permissions, its API, and the daemon's own probe boot (a
// guest must really come up under KVM: on some hosts /dev/kvm exists but
// a guest hangs).
func checkKVM(dev, cpuinfo, probeFile string) finding {
	const without = "without KVM the qemu driver emulates (TCG, slow) and --driver auto picks sandbox"
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist):
			switch cpuVirt(cpuinfo) {
			case "":
				return warn("kvm", "in a VM: enable nested virtualization on its host; on bare metal: enable VT-x/AMD-V in the firmware",
					"no %s, and the CPU shows no vmx or svm flag: %s", dev, without)
			case "vmx":
				return warn("kvm", "modprobe kvm_intel", "no %s though the CPU has vmx: %s", dev, without)
			default:
				return warn("kvm", "modprobe kvm_amd", "no %s though the CPU has svm: %s", dev, without)
			}
		case errors.Is(err, os.ErrPermission):
			return warn("kvm", "run the daemon as root (the service does), or join the kvm group", "%s is there but not open to you: %s", dev, without)
		}
		return warn("kvm", "", "open %s: %v: %s", dev, err, without)
	}
	defer f.Close()
	v, err := unix.IoctlRetInt(int(f.Fd()), kvmGetAPIVersion)
	if err != nil || v != kvmAPIVersion {
		return fail("kvm", "the host kernel's KVM is broken or too old", "%s answers KVM_GET_API_VERSION with %d (%v), not %d", dev, v, err, kvmAPIVersion)
	}
	b, err := os.ReadFile(probeFile)
	if err != nil {
		return ok("kvm", "%s answers (API %d); the daemon will boot a probe guest under KVM at its next start with a kit", dev, v)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	verdict := lines[len(lines)-1]
	if verdict == qemu.AccelKVM {
		return ok("kvm", "%s answers (API %d) and a guest boots under it (the daemon's probe, %s)", dev, v, lines[0])
	}
	return warn("kvm", "remove "+probeFile+" and restart the daemon to probe again; if it stays, KVM here cannot run a guest (nested virtualization?)",
		"%s answers (API %d), but the daemon's probe guest did not boot under KVM within %s (%s): %s", dev, v, qemu.ProbeTimeout, lines[0], without)
}

// cpuVirt returns "vmx" or "svm" if /proc/cpuinfo shows the flag.
func cpuVirt(cpuinfo string) string {
	f, err := os.Open(cpuinfo)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), ":")
		if !found || strings.TrimSpace(k) != "flags" {
			continue
		}
		flags := strings.Fields(v)
		for _, want := range []string{"vmx", "svm"} {
			if slices.Contains(flags, want) {
				return want
			}
		}
		return ""
	}
	return ""
}

// qemuSystem is the emulator of this machine's own architecture.
func qemuSystem() (binary, pkg string) {
	if runtime.GOARCH == "arm64" {
		return "qemu-system-aarch64", "qemu-system-arm"
	}
	return "qemu-system-x86_64", "qemu-system-x86"
}

func checkQEMU() finding {
	bin, pkg := qemuSystem()
	path, err := exec.LookPath(bin)
	if err != nil {
		return warn("qemu", "apt-get install "+pkg+" (make deps does)", "no %s: the qemu driver is unavailable", bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-version").Output()
	if err != nil {
		return warn("qemu", "reinstall "+pkg, "%s -version: %v", path, err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return ok("qemu", "%s", first)
}

// The controllers a container's limits and stats need.
var cgroupNeeds = []string{"cpu", "memory", "pids"}

// checkCgroups reads the mount table: cgroup v2 alone (unified), v2 with
// v1 hierarchies beside it (hybrid: the sandbox uses v1 for controllers
// v2 lacks), or v1 only.
func checkCgroups(mountinfo string) finding {
	v2, v1, err := cgroupLayout(mountinfo)
	if err != nil {
		return warn("cgroups", "", "read %s: %v", mountinfo, err)
	}
	var v2ctl []string
	if v2 != "" {
		b, _ := os.ReadFile(filepath.Join(v2, "cgroup.controllers"))
		v2ctl = strings.Fields(string(b))
	}
	return cgroupFinding(v2, v2ctl, v1)
}

func cgroupFinding(v2 string, v2ctl, v1 []string) finding {
	var missing, fromV1 []string
	for _, c := range cgroupNeeds {
		switch {
		case slices.Contains(v2ctl, c):
		case slices.Contains(v1, c):
			fromV1 = append(fromV1, c)
		default:
			missing = append(missing, c)
		}
	}
	layout := "unified (cgroup v2 only)"
	switch {
	case v2 == "" && len(v1) == 0:
		return fail("cgroups", "mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)", "no cgroup filesystem mounted")
	case v2 == "":
		return warn("cgroups", "boot with systemd.unified_cgroup_hierarchy=1, or mount cgroup2", "cgroup v1 only: pause and the sandbox's own cgroup need cgroup2")
	case len(v1) > 0:
		layout = fmt.Sprintf("hybrid (cgroup2 at %s, v1 for %s)", v2, strings.Join(fromV1, ", "))
		if len(fromV1) == 0 {
			layout = fmt.Sprintf("hybrid (cgroup2 at %s with every controller needed)", v2)
		}
	}
	if len(missing) > 0 {
		return warn("cgroups", "enable the controllers (cgroup_enable= on the kernel command line, or the parent's cgroup.subtree_control)",
			"%s; no %s controller: --memory, --cpus or --pids-limit cannot apply", layout, strings.Join(missing, ", "))
	}
	return ok("cgroups", "%s; controllers %s", layout, strings.Join(cgroupNeeds, ", "))
}

// cgroupLayout finds the cgroup2 mount point and the v1 controllers
// mounted, from a mountinfo file.
func cgroupLayout(mountinfo string) (v2 string, v1 []string, err error) {
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		return "", nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, found := strings.Cut(line, " - ")
		if !found {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 {
			continue
		}
		switch tail[0] {
		case "cgroup2":
			if v2 == "" || fields[4] == "/sys/fs/cgroup" {
				v2 = fields[4]
			}
		case "cgroup":
			for _, opt := range strings.Split(tail[2], ",") {
				if slices.Contains([]string{"cpu", "cpuacct", "memory", "pids", "blkio", "freezer", "cpuset", "devices"}, opt) && !slices.Contains(v1, opt) {
					v1 = append(v1, opt)
				}
			}
		}
	}
	return v2, v1, nil
}
