package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// cgroups is the agent's view of the machine's cgroup v2 tree. In a
// sandbox the agent's cgroup namespace makes the machine's cgroup its root;
// in a VM it is the guest's real root. The container's processes live in
// the leaf /ctr and the agent in /agent (v2 lets only leaves hold
// processes), so freezing /ctr pauses the container and not the agent.
//
// On a host whose memory, cpu or pids controllers are still bound to
// cgroup v1 (a hybrid layout), the sandbox driver puts the whole machine
// in v1 cgroups of its own instead; the agent finds those through
// /proc/self/cgroup, lazily, since the driver moves it there only after
// it started. They hold the agent too, which v1 allows.
type cgroups struct {
	ctr int // /ctr, O_RDONLY so it serves CLONE_INTO_CGROUP; -1 without cgroups

	mu    sync.Mutex
	procs string         // the agent's procfs
	v1    map[string]int // controller -> O_PATH fd of the machine's v1 cgroup
	// v1Dir is where v1 hierarchies get mounted, inside the agent's tmpfs.
	v1Dir string
}

// setupCgroups mounts cgroup2 at dir and moves the agent into /agent. A
// kernel without cgroup2 leaves the agent without pause, limits and
// cgroup stats, which it reports when asked.
func setupCgroups(dir, procDir, v1Dir string) (*cgroups, error) {
	cg := &cgroups{ctr: -1, procs: procDir, v1: map[string]int{}, v1Dir: v1Dir}
	if err := os.Mkdir(dir, 0o555); err != nil {
		return cg, fmt.Errorf("cgroups: %w", err)
	}
	if err := unix.Mount("cgroup2", dir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return cg, fmt.Errorf("mount cgroup2: %w", err)
	}
	for _, leaf := range []string{"agent", "ctr"} {
		if err := os.Mkdir(filepath.Join(dir, leaf), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return cg, fmt.Errorf("cgroups: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "agent/cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		return cg, fmt.Errorf("move agent to its cgroup: %w", err)
	}
	// Only now, with no process left in the root, may the root hand its
	// controllers down. One at a time: one the tree lacks must not stop
	// the others.
	avail, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	for _, c := range strings.Fields(string(avail)) {
		switch c {
		case "memory", "cpu", "pids", "io":
			os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0)
		}
	}
	fd, err := unix.Open(filepath.Join(dir, "ctr"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return cg, fmt.Errorf("open container cgroup: %w", err)
	}
	cg.ctr = fd
	return cg, nil
}

// moved tells where the agent's procfs and tmpfs went when it pivoted.
func (cg *cgroups) moved(procDir, v1Dir string) {
	if cg == nil {
		return
	}
	cg.mu.Lock()
	defer cg.mu.Unlock()
	cg.procs, cg.v1Dir = procDir, v1Dir
}

func (cg *cgroups) ok() bool { return cg != nil && cg.ctr >= 0 }

// read reads a file of the container's v2 cgroup.
func (cg *cgroups) read(name string) ([]byte, error) {
	if !cg.ok() {
		return nil, errors.New("no cgroup")
	}
	fd, err := unix.Openat(cg.ctr, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "cgroup/ctr/" + name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(f)
	return buf.Bytes(), err
}

func (cg *cgroups) write(name, value string) error {
	if !cg.ok() {
		return wire.Errorf(wire.KindConflict, "this machine has no cgroups")
	}
	fd, err := unix.Openat(cg.ctr, name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "cgroup/ctr/" + name, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return &os.PathError{Op: "write", Path: "cgroup/ctr/" + name, Err: err}
	}
	return nil
}

// joinContainerCgroup puts a new stage in the container's cgroup. A
// container may have made that cgroup a parent with controllers for its
// children (a runtime inside, such as buildkitd with
// BUILDKIT_SETUP_CGROUPV2_ROOT, moves itself to a child and enables
// them), and cgroup v2 then refuses it processes (EBUSY): an exec joins
// its main process's cgroup instead, as runc exec does.
func (a *Agent) joinContainerCgroup(pid int, main bool) error {
	err := a.cg.write("cgroup.procs", strconv.Itoa(pid))
	if err == nil || main || !errors.Is(err, unix.EBUSY) {
		return err
	}
	if m := a.mainPid(); m > 0 {
		if jerr := a.cg.joinCgroupOf(m, pid); jerr != nil {
			return fmt.Errorf("%w; and the main process's cgroup: %w", err, jerr)
		}
		return nil
	}
	return err
}

// joinCgroupOf moves pid into the v2 cgroup of process of, which must
// lie below the container's.
func (cg *cgroups) joinCgroupOf(of, pid int) error {
	cg.mu.Lock()
	procs := cg.procs
	cg.mu.Unlock()
	data, err := os.ReadFile(filepath.Join(procs, strconv.Itoa(of), "cgroup"))
	if err != nil {
		return err
	}
	rel, ok := containerSubCgroup(data)
	if !ok {
		return fmt.Errorf("process %d is not in a cgroup below the container's", of)
	}
	how := unix.OpenHow{Flags: unix.O_WRONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(cg.ctr, rel+"/cgroup.procs", &how)
	if err != nil {
		return &os.PathError{Op: "open", Path: "cgroup/ctr/" + rel + "/cgroup.procs", Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(strconv.Itoa(pid))); err != nil {
		return &os.PathError{Op: "write", Path: "cgroup/ctr/" + rel + "/cgroup.procs", Err: err}
	}
	return nil
}

// containerSubCgroup finds, in a /proc/PID/cgroup as the agent reads it,
// the process's v2 cgroup relative to the container's (/ctr), when it is
// strictly below it.
func containerSubCgroup(procCgroup []byte) (string, bool) {
	for _, line := range strings.Split(string(procCgroup), "\n") {
		p, ok := strings.CutPrefix(line, "0::/ctr/")
		if !ok {
			continue
		}
		p = strings.Trim(p, "/")
		if p == "" || p == "." || strings.HasPrefix(p, "..") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
			return "", false
		}
		return p, true
	}
	return "", false
}

// readV1 reads a file of the machine's v1 cgroup for controller.
func (cg *cgroups) readV1(controller, name string) ([]byte, error) {
	fd, err := cg.v1Cgroup(controller)
	if err != nil {
		return nil, err
	}
	rfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: controller + "/" + name, Err: err}
	}
	f := os.NewFile(uintptr(rfd), name)
	defer f.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(f)
	return buf.Bytes(), err
}

// v1Cgroup mounts, once, the v1 hierarchy that holds controller and
// opens the agent's cgroup in it.
func (cg *cgroups) v1Cgroup(controller string) (int, error) {
	if cg == nil {
		return -1, errors.New("no cgroup")
	}
	cg.mu.Lock()
	defer cg.mu.Unlock()
	if fd, ok := cg.v1[controller]; ok {
		if fd < 0 {
			return -1, fmt.Errorf("no v1 %s cgroup", controller)
		}
		return fd, nil
	}
	cg.v1[controller] = -1
	data, err := os.ReadFile(filepath.Join(cg.procs, "self/cgroup"))
	if err != nil {
		return -1, err
	}
	hier, path, ok := v1Path(data, controller)
	if !ok {
		return -1, fmt.Errorf("no v1 %s cgroup", controller)
	}
	dir := filepath.Join(cg.v1Dir, hier)
	if err := os.MkdirAll(dir, 0o555); err != nil {
		return -1, err
	}
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
		flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY)
		if controller == "pids" {
			// Writable: processes join the container's pids cgroup
			// (joinV1Pids). The container never sees this mount.
			flags &^= unix.MS_RDONLY
		}
		if err := unix.Mount("cgroup", dir, "cgroup", flags, hier); err != nil {
			return -1, fmt.Errorf("mount v1 %s cgroup: %w", hier, err)
		}
	}
	fd, err := unix.Open(filepath.Join(dir, path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open v1 %s cgroup: %w", hier, err)
	}
	cg.v1[controller] = fd
	return fd, nil
}

// joinV1Pids moves pid into the container's v1 pids cgroup (ctr), which
// the sandbox makes on a host whose pids controller is on v1 for
// --pids-limit. Without one it does nothing.
func (cg *cgroups) joinV1Pids(pid int) error {
	if cg == nil {
		return nil
	}
	fd, err := cg.v1Cgroup("pids")
	if err != nil {
		return nil // no v1 pids hierarchy: the limit, if any, is on v2
	}
	wfd, err := unix.Openat(fd, "ctr/cgroup.procs", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("join pids cgroup: %w", err)
	}
	defer unix.Close(wfd)
	if _, err := unix.Write(wfd, []byte(strconv.Itoa(pid))); err != nil {
		return fmt.Errorf("join pids cgroup: %w", err)
	}
	return nil
}

// v1Path finds controller's hierarchy ("cpu,cpuacct") and the process's
// path in it from /proc/self/cgroup.
func v1Path(procCgroup []byte, controller string) (hier, path string, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || parts[1] == "" {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return parts[1], parts[2], true
			}
		}
	}
	return "", "", false
}

// oomKills counts the container's processes the OOM killer took.
func (cg *cgroups) oomKills() uint64 {
	if data, err := cg.read("memory.events"); err == nil {
		return flatKeyed(data)["oom_kill"]
	}
	if data, err := cg.readV1("memory", "memory.oom_control"); err == nil {
		return flatKeyed(data)["oom_kill"]
	}
	return 0
}

// freeze sets the container cgroup's freezer and waits until the kernel
// says every process in it has stopped (or thawed).
func (cg *cgroups) freeze(ctx context.Context, frozen bool) error {
	want := "0"
	if frozen {
		want = "1"
	}
	if err := cg.write("cgroup.freeze", want); err != nil {
		return fmt.Errorf("freeze: %w", err)
	}
	for {
		data, err := cg.read("cgroup.events")
		if err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		if v, ok := flatKeyedOK(data, "frozen"); ok && strconv.FormatUint(v, 10) == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("freeze: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// flatKeyed parses "key value" lines, as memory.stat and memory.events
// are; a value that is not a number ("max") is left out.
func flatKeyed(data []byte) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m
}

func flatKeyedOK(data []byte, key string) (uint64, bool) {
	v, ok := flatKeyed(data)[key]
	return v, ok
}

// Pause implements wire.Handler. Starts are refused from the moment it
// begins, so nothing new escapes the freeze.
func (a *Agent) Pause(ctx context.Context) error {
	a.pauseMu.Lock()
	defer a.pauseMu.Unlock()
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return wire.Errorf(wire.KindConflict, "container is not running")
	}
	a.paused = true
	a.mu.Unlock()
	if err := a.cg.freeze(ctx, true); err != nil {
		a.cg.freeze(context.Background(), false)
		a.mu.Lock()
		a.paused = false
		a.mu.Unlock()
		return err
	}
	return nil
}

// Resume implements wire.Handler.
func (a *Agent) Resume(ctx context.Context) error {
	a.pauseMu.Lock()
	defer a.pauseMu.Unlock()
	if err := a.cg.freeze(ctx, false); err != nil {
		return err
	}
	a.mu.Lock()
	a.paused = false
	a.mu.Unlock()
	return nil
}

// limitPids sets pids.max of the container's cgroup (--pids-limit; 0 or
// less is no limit). It bounds the container's processes, not the agent.
// Only cgroup v2: on a hybrid host whose pids controller is on v1 the
// machine's v1 cgroup, which the driver owns, would need it instead.
func (cg *cgroups) limitPids(n int64) error {
	v := "max"
	if n > 0 {
		v = strconv.FormatInt(n, 10)
	}
	if err := cg.write("pids.max", v); err != nil {
		return fmt.Errorf("pids limit: %w", err)
	}
	return nil
}
