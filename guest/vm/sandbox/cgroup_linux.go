package sandbox

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/arcavm/arca/guest/vm"
	"golang.org/x/sys/unix"
)

// defaultCgroupGroup is the directory, under each hierarchy's root (v1:
// under the daemon's own cgroup), that holds one cgroup per machine
// unless the daemon names its own (Driver.UseCgroupGroup).
const defaultCgroupGroup = "arca"

// cpuPeriod is the cpu.max period Docker uses, in microseconds.
const cpuPeriod = 100000

// machineCgroup is a machine's cgroups on the host. The agent is born in
// the cgroup2 one (CLONE_INTO_CGROUP) and, in its own cgroup namespace,
// sees it as its root.
//
// A host may keep some controllers on cgroup v1 (the hybrid layout): then
// cgroup2 still gives the machine its freezer and CPU accounting, and for
// each controller missing there the machine gets a cgroup in that v1
// hierarchy too, which the agent joins right after it starts.
type machineCgroup struct {
	v2 string   // "" when the host has no cgroup2
	v1 []string // one per v1 hierarchy used
}

// v1Fallbacks are the v1 hierarchies a machine joins when cgroup2 lacks
// their controller: the limits, and what stats read.
var v1Fallbacks = []string{"memory", "cpu", "cpuacct", "pids", "blkio"}

// newMachineCgroup creates the machine's cgroups and applies its limits.
// On error nothing is left behind.
func newMachineCgroup(spec vm.MachineSpec, group string) (*machineCgroup, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	cg := &machineCgroup{}
	var suffix [4]byte
	rand.Read(suffix[:])
	// The ID alone could repeat (tests, a container rebooted while its
	// old machine is still being torn down).
	name := strings.ReplaceAll(spec.ID, "/", "_") + "-" + hex.EncodeToString(suffix[:])
	fail := func(err error) (*machineCgroup, error) {
		cg.remove()
		return nil, fmt.Errorf("machine cgroup: %w", err)
	}
	v2 := map[string]bool{}
	if mounts.v2 != "" {
		// Each level from the root to the group's hands the controllers
		// down to the next.
		levels := []string{mounts.v2}
		for _, part := range strings.Split(group, "/") {
			levels = append(levels, filepath.Join(levels[len(levels)-1], part))
		}
		parent := levels[len(levels)-1]
		for _, dir := range levels[1:] {
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return fail(err)
			}
		}
		avail, _ := os.ReadFile(filepath.Join(mounts.v2, "cgroup.controllers"))
		for _, c := range strings.Fields(string(avail)) {
			switch c {
			case "memory", "cpu", "pids", "io":
				ok := true
				for _, dir := range levels {
					if os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0) != nil {
						ok = false
					}
				}
				v2[c] = ok
			}
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fail(err)
		}
		cg.v2 = dir
	}
	for _, c := range v1Fallbacks {
		if v2[c] || (c == "blkio" && v2["io"]) {
			continue
		}
		base, ok := mounts.v1[c]
		if !ok {
			continue
		}
		dir := filepath.Join(base, group, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
		cg.v1 = append(cg.v1, dir)
	}
	if err := cg.limit(spec, v2, mounts); err != nil {
		return fail(err)
	}
	return cg, nil
}

// agentPids is what the sandbox's pids limit leaves the agent: its
// threads, and a stage for each exec running at once.
const agentPids = 48

// limit writes the machine's memory, CPU and pids limits where their
// controllers are.
func (cg *machineCgroup) limit(spec vm.MachineSpec, v2 map[string]bool, mounts cgroupLayout) error {
	v1dir := func(c string) string {
		for _, d := range cg.v1 {
			if strings.HasPrefix(d, mounts.v1[c]+"/") {
				return d
			}
		}
		return ""
	}
	if spec.MemoryBytes > 0 {
		mem := strconv.FormatInt(spec.MemoryBytes, 10)
		switch {
		case v2["memory"]:
			if err := writeCgroup(cg.v2, "memory.max", mem); err != nil {
				return err
			}
			// No swap, so the limit bites (Docker's default gives as
			// much swap again; none is the safer reading of --memory here).
			if _, err := os.Stat(filepath.Join(cg.v2, "memory.swap.max")); err == nil {
				if err := writeCgroup(cg.v2, "memory.swap.max", "0"); err != nil {
					return err
				}
			}
		case v1dir("memory") != "":
			d := v1dir("memory")
			if err := writeCgroup(d, "memory.limit_in_bytes", mem); err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(d, "memory.memsw.limit_in_bytes")); err == nil {
				if err := writeCgroup(d, "memory.memsw.limit_in_bytes", mem); err != nil {
					return err
				}
			}
		default:
			return errors.New("no memory controller for the memory limit")
		}
	}
	if spec.PidsLimit > 0 {
		// The agent's threads and an exec's stage share the machine's
		// cgroup with the container's processes: they get room above.
		n := strconv.FormatInt(spec.PidsLimit+agentPids, 10)
		switch {
		case v2["pids"]:
			if err := writeCgroup(cg.v2, "pids.max", n); err != nil {
				return err
			}
		case v1dir("pids") != "":
			// v1 has no agent-made child: the host makes the container's
			// (ctr), which the agent moves each process into, exact.
			ctr := filepath.Join(v1dir("pids"), "ctr")
			if err := os.Mkdir(ctr, 0o755); err != nil {
				return err
			}
			if err := writeCgroup(ctr, "pids.max", strconv.FormatInt(spec.PidsLimit, 10)); err != nil {
				return err
			}
		default:
			return errors.New("no pids controller for the pids limit")
		}
	}
	if spec.NanoCPUs > 0 {
		quota := max(spec.NanoCPUs*cpuPeriod/1e9, 1000)
		switch {
		case v2["cpu"]:
			if err := writeCgroup(cg.v2, "cpu.max", fmt.Sprintf("%d %d", quota, cpuPeriod)); err != nil {
				return err
			}
		case v1dir("cpu") != "":
			d := v1dir("cpu")
			if err := writeCgroup(d, "cpu.cfs_period_us", strconv.Itoa(cpuPeriod)); err != nil {
				return err
			}
			if err := writeCgroup(d, "cpu.cfs_quota_us", strconv.FormatInt(quota, 10)); err != nil {
				return err
			}
		default:
			return errors.New("no cpu controller for the CPU limit")
		}
	}
	return nil
}

// open returns a descriptor of the cgroup2 directory for
// CLONE_INTO_CGROUP, or -1 without one.
func (cg *machineCgroup) open() (int, error) {
	if cg.v2 == "" {
		return -1, nil
	}
	fd, err := unix.Open(cg.v2, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("machine cgroup: %w", err)
	}
	return fd, nil
}

// join moves the started agent into the v1 cgroups. It has forked nothing
// yet: it starts processes only when asked, after Boot returns.
func (cg *machineCgroup) join(pid int) error {
	for _, d := range cg.v1 {
		if err := writeCgroup(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the machine's cgroups once their processes are gone; a
// cgroup stays busy a moment after its last process died.
func (cg *machineCgroup) remove() error {
	var errs []error
	for _, d := range append([]string{cg.v2}, cg.v1...) {
		if d == "" {
			continue
		}
		if err := rmCgroup(d, time.Now().Add(2*time.Second)); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// ReleaseStaleCgroups removes the machine cgroups a killed daemon left in
// group: its agents died with it (they are killed when the daemon dies),
// so each is empty. A daemon calls it at start, before it boots anything;
// group must be its own.
func ReleaseStaleCgroups(group string) error {
	return inGroupDirs(group, func(dir string, deadline time.Time) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil // no group yet in this hierarchy
		}
		var errs []error
		for _, e := range ents {
			if e.IsDir() {
				if err := rmCgroup(filepath.Join(dir, e.Name()), deadline); err != nil {
					errs = append(errs, fmt.Errorf("stale cgroup %s: %w", e.Name(), err))
				}
			}
		}
		return errors.Join(errs...)
	})
}

// ReleaseCgroupGroup removes group itself from every hierarchy, with any
// machine cgroup still in it, once the daemon's machines are gone: a
// daemon calls it when it stops. The group is named after the daemon's
// root, so without this every root a daemon ever ran on (each test's
// temporary one) kept a directory in each hierarchy for good.
func ReleaseCgroupGroup(group string) error {
	return inGroupDirs(group, func(dir string, deadline time.Time) error {
		if err := rmCgroup(dir, deadline); err != nil {
			return fmt.Errorf("cgroup group %s: %w", dir, err)
		}
		return nil
	})
}

// inGroupDirs calls release with group's directory in each hierarchy and
// one deadline for all, and joins what failed.
func inGroupDirs(group string, release func(dir string, deadline time.Time) error) error {
	dirs, err := groupDirs(group)
	if err != nil {
		return err
	}
	var errs []error
	deadline := time.Now().Add(2 * time.Second)
	for _, dir := range dirs {
		if err := release(dir, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// groupDirs is group's directory in each hierarchy (v1 ones under the
// daemon's own cgroup, as newMachineCgroup makes them).
func groupDirs(group string) ([]string, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	var dirs []string
	if mounts.v2 != "" {
		dirs = append(dirs, filepath.Join(mounts.v2, group))
	}
	seen := map[string]bool{}
	for _, base := range mounts.v1 {
		if !seen[base] {
			seen[base] = true
			dirs = append(dirs, filepath.Join(base, group))
		}
	}
	return dirs, nil
}

// rmCgroup removes the cgroup dir and the ones the agent made inside it,
// deepest first.
func rmCgroup(dir string, deadline time.Time) error {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			if err := rmCgroup(filepath.Join(dir, e.Name()), deadline); err != nil {
				return err
			}
		}
	}
	for {
		err := unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeCgroup(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("set %s: %w", file, err)
	}
	return nil
}

// cgroupLayout is where the host's cgroup hierarchies are.
type cgroupLayout struct {
	v2 string            // the cgroup2 mount, "" if none
	v1 map[string]string // controller -> the daemon's own cgroup in that v1 hierarchy
}

func cgroupMounts() (cgroupLayout, error) {
	l := cgroupLayout{v1: map[string]string{}}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return l, fmt.Errorf("machine cgroup: %w", err)
	}
	own, _ := os.ReadFile("/proc/self/cgroup")
	v1Mounts := parseCgroupMounts(mi, &l.v2)
	for hier, mnt := range v1Mounts {
		if path, ok := ownCgroup(own, hier); ok {
			// Under the daemon's own cgroup: the machines stay within
			// whatever bounds the daemon was given.
			for _, c := range strings.Split(hier, ",") {
				l.v1[c] = filepath.Join(mnt, path)
			}
		}
	}
	return l, nil
}

// parseCgroupMounts finds the cgroup2 mount (into *v2) and the v1 ones,
// keyed by their controller list as /proc/self/cgroup names it.
func parseCgroupMounts(mountinfo []byte, v2 *string) map[string]string {
	v1 := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || f[3] != "/" {
			continue // a bind of a sub-tree is not a hierarchy's root
		}
		switch g[0] {
		case "cgroup2":
			if *v2 == "" {
				*v2 = f[4]
			}
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(g[2], ",") {
				switch o {
				case "rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children", "xattr", "cpuset_v2_mode", "noprefix":
				default:
					if !strings.Contains(o, "=") {
						ctrls = append(ctrls, o)
					}
				}
			}
			if len(ctrls) > 0 {
				v1[strings.Join(ctrls, ",")] = f[4]
			}
		}
	}
	return v1
}

// ownCgroup finds the daemon's path in the v1 hierarchy hier.
func ownCgroup(procCgroup []byte, hier string) (string, bool) {
	want := strings.Split(hier, ",")
	for _, line := range strings.Split(string(procCgroup), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[1] == "" {
			continue
		}
		have := strings.Split(parts[1], ",")
		if sameSet(have, want) {
			return parts[2], true
		}
	}
	return "", false
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}
