package agent

// A container's processes never share anything with the agent but the
// descriptors handed to them. Each one starts as a stage: the agent binary
// run again, a fresh process that holds no agent memory, no agent
// descriptor and none of the agent's mounts, and that becomes the
// container's process by exec.
//
// The main process's stage is cloned into a new pid and mount namespace,
// where it is PID 1 and alone: it mounts the container's /proc, masks what
// Docker masks, pivots into the container's root (the agent's tree is gone
// from that namespace) and execs the command, which stays PID 1.
//
// An exec's stage stays in the agent's pid namespace, invisible from the
// container. It confines itself (chroot into the container's root on every
// thread, then, on the forking thread, the container's mount and pid
// namespaces), gives up every capability on every thread and only then
// forks the command into the container. A process in the container that
// could trace that child before its exec (it shares the stage's memory)
// would find a stage as powerless as itself, never the agent.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/guest/wire"
)

// StageArg as a process's first argument makes the agent binary a stage.
const StageArg = "--arca-stage"

// IsStage tells the binary's main to call RunStage before anything else.
func IsStage() bool { return len(os.Args) > 1 && os.Args[1] == StageArg }

// A stage's descriptors: 0-2 are the process's stdio.
const (
	stageCtlFD = 3 // the control socket to the agent
	stageMntFD = 4 // exec: the container's mount namespace
	stagePidFD = 5 // exec: the container's pid namespace
	stageCgrFD = 6 // exec: the container's cgroup namespace, with JoinCgroup
	// stageExeFD is the agent binary the stage is exec'd from, handed in
	// the child's table like the rest: Go's fork moves its own error pipe
	// to the first number above every descriptor it hands on, which once
	// was the agent's own copy (exec then met a pipe: EACCES). The stage
	// closes it with the rest.
	stageExeFD = 7
)

// stageConfig is what the agent tells a stage, as one JSON object on the
// control socket.
type stageConfig struct {
	Main bool `json:"main"`
	// Root is the container's root in the agent's tree; Proc the agent's
	// procfs (main: to resolve paths under Root safely).
	Root string `json:"root"`
	Proc string `json:"proc"`
	// Path is the command, resolved inside the container.
	Path   string   `json:"path"`
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Cwd    string   `json:"cwd"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	Tty    bool     `json:"tty,omitempty"`
	// Caps is the process's capability set (its bounding set is already
	// limited to it by the agent).
	Caps capSet `json:"caps"`
	// The filters come compiled: a stage only loads them (compiling
	// Docker's profile in every stage cost ~70 ms of a start under TCG).
	Seccomp         *wire.SeccompProgram `json:"seccomp,omitempty"`
	Boundary        *wire.SeccompProgram `json:"boundary,omitempty"` // the sandbox's, loaded first
	NoNewPrivileges bool                 `json:"noNewPrivileges,omitempty"`
	Rlimits         []wire.Rlimit        `json:"rlimits,omitempty"`
	// Privileged (main): nothing masked, and a cgroup namespace of its
	// own, rooted at the container's cgroup (where the agent put the
	// stage), with cgroup2 mounted writable at /sys/fs/cgroup.
	Privileged bool `json:"privileged,omitempty"`
	// JoinCgroup (exec): descriptor 6 is the main process's cgroup
	// namespace, to join.
	JoinCgroup bool `json:"joinCgroup,omitempty"`
}

// stageReport is what a stage tells the agent: an error before the
// command ran, an exec's pid, or an exec's wait status.
type stageReport struct {
	Err    string `json:"err,omitempty"`
	Errno  int    `json:"errno,omitempty"`
	Pid    int    `json:"pid,omitempty"`
	Status *int   `json:"status,omitempty"`
	// CgroupNS (main): the stage is in its cgroup namespace now, for the
	// agent to keep for execs.
	CgroupNS bool `json:"cgroupns,omitempty"`
}

// RunStage is a stage's whole life; it never returns.
func RunStage() {
	// Nothing the stage was handed, or inherited, passes on to the
	// command but its stdio.
	unix.CloseRange(stageCtlFD, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	ctl := os.NewFile(stageCtlFD, "control")
	report := func(r stageReport) {
		b, _ := json.Marshal(r)
		ctl.Write(append(b, '\n'))
	}
	fail := func(err error) {
		r := stageReport{Err: err.Error()}
		var ef execFailed
		if errors.As(err, &ef) {
			r.Errno = int(ef.errno)
		}
		report(r)
		os.Exit(127)
	}
	var cfg stageConfig
	if err := json.NewDecoder(ctl).Decode(&cfg); err != nil {
		fail(fmt.Errorf("stage: read config: %w", err))
	}
	if cfg.Main {
		fail(mainStage(cfg, report)) // returns only on failure
	}
	pid, err := execStage(cfg)
	if err != nil {
		fail(err)
	}
	report(stageReport{Pid: pid})
	// The agent opens its pidfd while the child cannot yet be reaped (so
	// its pid cannot be reused), then says go on.
	var ack [1]byte
	ctl.Read(ack[:])
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	status := int(ws)
	report(stageReport{Status: &status})
	os.Exit(0)
}

// mainStage turns this process, PID 1 of the container's fresh pid and
// mount namespaces, into the container's main process.
func mainStage(cfg stageConfig, report func(stageReport)) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	root, err := openRootDir(cfg.Root, cfg.Proc)
	if err != nil {
		return err
	}
	// Mounted from here, the container's /proc shows its own pid
	// namespace, where the agent does not exist.
	err = mountAt(root, kernelMount{"/proc", "proc", "proc", unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV, ""})
	if err == nil && cfg.Privileged {
		err = privateCgroup(root, report)
	}
	root.close()
	if err != nil {
		return err
	}
	if !cfg.Privileged {
		// A privileged container's /proc and /sys are whole, as
		// dockerd leaves them.
		if err := maskPaths(cfg.Root); err != nil {
			return err
		}
	}
	if err := enterRoot(cfg.Root); err != nil {
		return err
	}
	if err := setRlimits(cfg.Rlimits); err != nil {
		return err
	}
	if err := unix.Chdir(cfg.Cwd); err != nil {
		return fmt.Errorf("chdir to cwd (%q): %w", cfg.Cwd, err)
	}
	// This thread execs: its bounding set is what the command can hold.
	if err := limitThreadCaps(cfg.Caps); err != nil {
		return err
	}
	if err := confine(cfg); err != nil {
		return err
	}
	if err := setCredentials(cfg); err != nil {
		return err
	}
	return execFailure(syscall.Exec(cfg.Path, cfg.Args, cfg.Env))
}

// privateCgroup gives a privileged container what dockerd gives one on
// cgroup v2: a cgroup namespace rooted at its own cgroup (the agent put
// this stage there before sending its config) and that tree, writable,
// at /sys/fs/cgroup, so that a runtime inside (runc, under buildkitd or
// dockerd) makes its cgroups below the container's. The agent is told,
// to have execs join the namespace.
func privateCgroup(root *rootDir, report func(stageReport)) error {
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("cgroup namespace: %w", err)
	}
	report(stageReport{CgroupNS: true})
	m := kernelMount{"/sys/fs/cgroup", "cgroup2", "cgroup2", unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RELATIME, ""}
	if err := mountAt(root, m); err != nil {
		return err
	}
	return nil
}

// execFailed is the command's own exec failing (not a step before it),
// which the agent words as runc does.
type execFailed struct{ errno unix.Errno }

func (e execFailed) Error() string { return "exec: " + e.errno.Error() }

func execFailure(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return execFailed{errno}
	}
	return err
}

// enterRoot makes dir the root of this mount namespace and detaches the
// agent's tree. Where the namespace's root cannot be pivoted (a VM's
// initramfs) it moves dir over / and chroots: there the VM is the
// boundary, and the initramfs holds nothing of the host.
func enterRoot(dir string) error {
	err := pivotRoot(dir)
	if !errors.Is(err, unix.EINVAL) {
		return err
	}
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("enter root: %w", err)
	}
	if err := unix.Mount(dir, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("enter root: move: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("enter root: chroot: %w", err)
	}
	return unix.Chdir("/")
}

// pivotRoot makes dir the root and detaches the old one from view. Its
// EINVAL is left unwrapped for callers that have a fallback.
func pivotRoot(dir string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pivot: %w", err)
	}
	defer unix.Close(oldRoot)
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("pivot: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		unix.Chdir("/")
		if err == unix.EINVAL {
			return err
		}
		return fmt.Errorf("pivot: %w", err)
	}
	// The old root is now stacked on the new one; detach it from there.
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("pivot: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("pivot: detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// execStage forks the command into the container and returns its pid (in
// the agent's pid namespace, where this stage lives).
func execStage(cfg stageConfig) (int, error) {
	unix.CloseOnExec(stageMntFD)
	unix.CloseOnExec(stagePidFD)
	if cfg.JoinCgroup {
		unix.CloseOnExec(stageCgrFD)
		// On the forking thread (this one), like the other namespaces:
		// the agent already put this stage in the container's cgroup, and
		// this makes the command see it as its root, as the main does.
		err := unix.Setns(stageCgrFD, unix.CLONE_NEWCGROUP)
		unix.Close(stageCgrFD)
		if err != nil {
			return 0, fmt.Errorf("exec stage: enter cgroup namespace: %w", err)
		}
	}
	// Every thread first: the stage's view of files is the container's
	// and nothing more.
	if err := unix.Chroot(cfg.Root); err != nil {
		return 0, fmt.Errorf("exec stage: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return 0, fmt.Errorf("exec stage: %w", err)
	}
	// This goroutine is locked to the main thread (see netns_linux.go),
	// which forks: it alone enters the container's namespaces.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return 0, fmt.Errorf("exec stage: unshare fs: %w", err)
	}
	if err := unix.Setns(stageMntFD, unix.CLONE_NEWNS); err != nil {
		return 0, fmt.Errorf("exec stage: enter mount namespace: %w", err)
	}
	// Where the main stage moved its root over / instead of pivoting,
	// the namespace's root is below it: this lands on the container's.
	if err := unix.Chroot("/"); err != nil {
		return 0, fmt.Errorf("exec stage: chroot: %w", err)
	}
	if err := unix.Setns(stagePidFD, unix.CLONE_NEWPID); err != nil {
		return 0, fmt.Errorf("exec stage: enter pid namespace: %w", err)
	}
	unix.Close(stageMntFD)
	unix.Close(stagePidFD)
	if err := setRlimits(cfg.Rlimits); err != nil {
		return 0, err
	}
	if err := confine(cfg); err != nil {
		return 0, err
	}
	// Every thread's bounding set, not just the forking one's: any
	// thread that exec'd a root program would get its bounding set.
	if err := limitAllThreadsBounding(cfg.Caps); err != nil {
		return 0, err
	}
	if err := setCredentials(cfg); err != nil {
		return 0, err
	}
	// No capability is left on any thread: the command's come from its
	// exec as root, within the bounding set. Under no_new_privs exec
	// grants nothing new, so the stage keeps the process's own set, less
	// SYS_PTRACE, which would reach the agent from here.
	keep := capSet(0)
	if cfg.NoNewPrivileges {
		keep = cfg.Caps &^ (1 << capNames["SYS_PTRACE"])
	}
	if err := limitAllThreadsCaps(keep); err != nil {
		return 0, err
	}
	pid, err := syscall.ForkExec(cfg.Path, cfg.Args, &syscall.ProcAttr{
		Dir:   cfg.Cwd,
		Env:   cfg.Env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: cfg.Tty, Ctty: 0},
	})
	return pid, execFailure(err)
}

// confine sets no_new_privs and installs the process's seccomp filters;
// after it the process can no longer mount or pivot.
func confine(cfg stageConfig) error {
	if cfg.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	return installFilters(cfg)
}

// setCredentials switches every thread to the process's user and groups.
func setCredentials(cfg stageConfig) error {
	groups := make([]int, len(cfg.Groups))
	for i, g := range cfg.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(int(cfg.GID)); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(int(cfg.UID)); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	return nil
}

// limitAllThreadsBounding drops from every thread's bounding set what
// keep lacks, and clears the forking thread's inheritable and ambient sets.
func limitAllThreadsBounding(keep capSet) error {
	for c := 0; c < 64; c++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err != nil {
			break // past the kernel's last capability
		}
		if keep.has(c) {
			continue
		}
		_, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0)
		if errno == unix.ENOTSUP {
			break // cgo build: see limitAllThreadsCaps; the thread below does it
		}
		if errno != 0 {
			return fmt.Errorf("drop capability %d: %w", c, errno)
		}
	}
	return limitThreadCaps(keep)
}

// limitAllThreadsCaps leaves every thread's effective and permitted sets
// holding at most keep.
func limitAllThreadsCaps(keep capSet) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	have := capSet(data[0].Permitted) | capSet(data[1].Permitted)<<32
	keep &= have
	data[0].Effective, data[0].Permitted = uint32(keep), uint32(keep)
	data[1].Effective, data[1].Permitted = uint32(keep>>32), uint32(keep>>32)
	data[0].Inheritable, data[1].Inheritable = 0, 0
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if errno == unix.ENOTSUP {
		// A cgo build (the race-enabled test binary standing in for the
		// agent) cannot reach every thread; the shipped agent is built
		// without cgo. The forking thread is what the child inherits.
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fmt.Errorf("drop capabilities: %w", err)
		}
		return nil
	}
	if errno != 0 {
		return fmt.Errorf("drop capabilities: %w", errno)
	}
	return nil
}

// rlimitNames are Docker's --ulimit names.
var rlimitNames = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
	"as": unix.RLIMIT_AS,
}

// setRlimits applies limits to the whole process (and so to what it
// execs). syscall.Setrlimit, not unix's: Go restores the soft NOFILE
// limit it found at start in every child unless told of a new one.
func setRlimits(limits []wire.Rlimit) error {
	for _, l := range limits {
		res, ok := rlimitNames[l.Name]
		if !ok {
			return fmt.Errorf("unknown ulimit %q", l.Name)
		}
		lim := syscall.Rlimit{Cur: l.Soft, Max: l.Hard}
		if err := syscall.Setrlimit(res, &lim); err != nil {
			return fmt.Errorf("set ulimit %s=%d:%d: %w", l.Name, l.Soft, l.Hard, err)
		}
	}
	return nil
}

// stageRun is the agent's hold on a stage it started: its control
// socket, and for an exec the stage's pid once its command runs.
type stageRun struct {
	ctl      *net.UnixConn
	dec      *json.Decoder
	stagePid int
}

// newStageControl returns the agent's end of a control socket and the
// stage's end, to be its descriptor 3.
func newStageControl() (*stageRun, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("stage control: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "stage-control")
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("stage control: %w", err)
	}
	ctl := conn.(*net.UnixConn)
	return &stageRun{ctl: ctl, dec: json.NewDecoder(ctl)}, os.NewFile(uintptr(fds[1]), "stage-control"), nil
}

// stageTimeout bounds how long a stage may take to report, so that a
// stuck one fails the start instead of hanging it. It is as long as the
// host waits for a whole start (actors' bootSequence): in a VM on a
// starved host a stage is slow, not stuck; 50 TCG guests started at once
// on 2 cores took more than 30 s to get theirs to report.
const stageTimeout = 2 * time.Minute

func (s *stageRun) send(cfg stageConfig) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	s.ctl.SetWriteDeadline(time.Now().Add(stageTimeout))
	_, err = s.ctl.Write(b)
	return err
}

// next reads the stage's next report; io.EOF means its exec succeeded
// (the main stage's control socket closes on exec).
func (s *stageRun) next() (stageReport, error) {
	s.ctl.SetReadDeadline(time.Now().Add(stageTimeout))
	var r stageReport
	err := s.dec.Decode(&r)
	return r, err
}

// stageError is a stage's report of failure as the start's error.
func stageError(name string, r stageReport) error {
	if r.Errno != 0 {
		return execError(name, unix.Errno(r.Errno))
	}
	return fmt.Errorf("start %s: %s", path.Base(name), r.Err)
}

// status is the exec's wait status as its stage reported it before
// exiting, or the stage's own (stageWS) when it died without a word.
func (s *stageRun) status(stageWS unix.WaitStatus) unix.WaitStatus {
	if s == nil {
		return stageWS
	}
	s.ctl.SetReadDeadline(time.Now().Add(time.Second))
	var r stageReport
	if err := s.dec.Decode(&r); err == nil && r.Status != nil {
		return unix.WaitStatus(*r.Status)
	}
	return stageWS
}

func (s *stageRun) close() {
	if s != nil {
		s.ctl.Close()
	}
}

// endStage forgets an exec's stage once it exited.
func (a *Agent) endStage(s *stageRun) {
	if s == nil {
		return
	}
	a.mu.Lock()
	delete(a.stages, s.stagePid)
	a.mu.Unlock()
	s.close()
}

// isStage tells whether pid is one of the agent's exec stages.
func (a *Agent) isStage(pid int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stages[pid]
}

// setContainerNamespaces keeps the new main process's pid and mount
// namespaces, for its execs to join.
func (a *Agent) setContainerNamespaces(pid int) error {
	dir := fmt.Sprintf("%s/%d/ns/", a.procDir, pid)
	mnt, err := unix.Open(dir+"mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container mount namespace: %w", err)
	}
	pidns, err := unix.Open(dir+"pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(mnt)
		return fmt.Errorf("container pid namespace: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closeContainerNamespaces()
	a.ctrMnt, a.ctrPid = mnt, pidns
	return nil
}

// setContainerCgroupNamespace keeps the main process's own cgroup
// namespace once its stage made it, for execs to join.
func (a *Agent) setContainerCgroupNamespace(pid int) error {
	fd, err := unix.Open(fmt.Sprintf("%s/%d/ns/cgroup", a.procDir, pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container cgroup namespace: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctrCgroup >= 0 {
		unix.Close(a.ctrCgroup)
	}
	a.ctrCgroup = fd
	return nil
}

// containerNamespaces returns the running main process's namespaces;
// cgroup is -1 unless it has a cgroup namespace of its own.
func (a *Agent) containerNamespaces() (mnt, pid, cgroup int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctrMnt < 0 || a.ctrPid < 0 {
		return -1, -1, -1, wire.Errorf(wire.KindConflict, "container is not running")
	}
	return a.ctrMnt, a.ctrPid, a.ctrCgroup, nil
}

// closeContainerNamespaces lets go of them; a.mu is held.
func (a *Agent) closeContainerNamespaces() {
	if a.ctrMnt >= 0 {
		unix.Close(a.ctrMnt)
	}
	if a.ctrPid >= 0 {
		unix.Close(a.ctrPid)
	}
	if a.ctrCgroup >= 0 {
		unix.Close(a.ctrCgroup)
	}
	a.ctrMnt, a.ctrPid, a.ctrCgroup = -1, -1, -1
}

// startStage starts the stage that becomes cfg's process and waits until
// the process runs. It returns the process's pid and pidfd (-1 when the
// kernel gave none), the channel its stage's wait status comes on, and,
// for an exec, the control socket on which the exec's own status comes.
func (a *Agent) startStage(cfg stageConfig, pio *procIO) (int, int, <-chan unix.WaitStatus, *stageRun, error) {
	run, stageEnd, err := newStageControl()
	if err != nil {
		return 0, -1, nil, nil, err
	}
	files := []uintptr{uintptr(pio.child[0]), uintptr(pio.child[1]), uintptr(pio.child[2]), stageEnd.Fd()}
	sys := &syscall.SysProcAttr{}
	if cfg.Main {
		// PID 1 of its own pid namespace, in a mount namespace of its
		// own; its own session, so a tty becomes its controlling
		// terminal and its group can be killed as one.
		sys.Cloneflags = unix.CLONE_NEWPID | unix.CLONE_NEWNS
		sys.Setsid, sys.Setctty, sys.Ctty = true, cfg.Tty, 0
	} else {
		mnt, pidns, cgroupns, err := a.containerNamespaces()
		if err != nil {
			stageEnd.Close()
			run.close()
			return 0, -1, nil, nil, err
		}
		files = append(files, uintptr(mnt), uintptr(pidns))
		if cgroupns >= 0 {
			files = append(files, uintptr(cgroupns))
			cfg.JoinCgroup = true
		}
	}
	for len(files) < stageExeFD {
		files = append(files, ^uintptr(0)) // closed in the child
	}
	files = append(files, uintptr(a.stageExe))
	pidfd := -1
	sys.PidFD = &pidfd
	// The stage may join a cgroup with a small pids.max before its
	// command runs: one P and no collector keep the Go runtime from
	// starting threads the limit would refuse (which kills the stage).
	attr := &syscall.ProcAttr{Dir: "/", Env: []string{"GOMAXPROCS=1", "GOGC=off"}, Files: files, Sys: sys}
	self := fmt.Sprintf("%s/self/fd/%d", a.procDir, stageExeFD)
	pid, waited, err := a.reaper.start(func() (int, error) {
		// With every capability: the stage needs them to set the
		// process up, and gives them up itself before the command runs.
		return forkWithCaps(^capSet(0), a.netNS(), func() (int, error) {
			return syscall.ForkExec(self, []string{"arca-agent", StageArg}, attr)
		})
	})
	stageEnd.Close()
	if err != nil {
		run.close()
		return 0, -1, nil, nil, fmt.Errorf("start %s: stage: %w", path.Base(cfg.Path), err)
	}
	failed := func(err error) (int, int, <-chan unix.WaitStatus, *stageRun, error) {
		unix.Kill(pid, unix.SIGKILL)
		if cfg.Main {
			a.mu.Lock()
			a.closeContainerNamespaces()
			a.mu.Unlock()
		}
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		run.close()
		return 0, -1, nil, nil, err
	}
	if a.cg.ok() {
		// Into the container's cgroup before it runs anything of the
		// container's (it waits for its config): limits and the freezer
		// hold from the command's first instruction. (Not by clone3's
		// CLONE_INTO_CGROUP, which the kernel refuses, ENOENT, for a
		// child in a new pid namespace under the agent's cgroup
		// namespace.)
		if err := a.joinContainerCgroup(pid, cfg.Main); err != nil {
			return failed(fmt.Errorf("start %s: join cgroup: %w", path.Base(cfg.Path), err))
		}
	}
	if err := a.cg.joinV1Pids(pid); err != nil {
		return failed(fmt.Errorf("start %s: %w", path.Base(cfg.Path), err))
	}
	if cfg.Main {
		// Now, while the stage waits for its config: once the command
		// runs it may exit and be reaped at any moment.
		if err := a.setContainerNamespaces(pid); err != nil {
			return failed(err)
		}
	}
	if err := run.send(cfg); err != nil {
		return failed(fmt.Errorf("start %s: stage: %w", path.Base(cfg.Path), err))
	}
	r, err := run.next()
	if cfg.Main && err == nil && r.CgroupNS {
		// The stage is in its own cgroup namespace (privileged) and goes
		// on towards exec while the agent keeps the namespace.
		if err := a.setContainerCgroupNamespace(pid); err != nil {
			return failed(fmt.Errorf("start %s: %w", path.Base(cfg.Path), err))
		}
		r, err = run.next()
	}
	if cfg.Main {
		if errors.Is(err, io.EOF) {
			// Closed on exec: the command runs, as PID 1.
			run.close()
			return pid, pidfd, waited, nil, nil
		}
		if err != nil {
			return failed(fmt.Errorf("start %s: stage: %w", path.Base(cfg.Path), err))
		}
		return failed(stageError(cfg.Args[0], r))
	}
	if err != nil {
		return failed(fmt.Errorf("start %s: stage: %w", path.Base(cfg.Path), err))
	}
	if r.Err != "" || r.Pid <= 0 {
		return failed(stageError(cfg.Args[0], r))
	}
	// The exec is the stage's child, so its pid stays its own until the
	// stage reaps it, which waits for this go-ahead.
	if pidfd >= 0 {
		unix.Close(pidfd)
	}
	pidfd, err = unix.PidfdOpen(r.Pid, 0)
	if err != nil {
		pidfd = -1
	}
	// The stage is no process of the container's: docker top skips it
	// until endStage.
	run.stagePid = pid
	a.mu.Lock()
	a.stages[pid] = true
	a.mu.Unlock()
	run.ctl.SetWriteDeadline(time.Now().Add(stageTimeout))
	if _, err := run.ctl.Write([]byte{1}); err != nil {
		return failed(fmt.Errorf("start %s: stage: %w", path.Base(cfg.Path), err))
	}
	return r.Pid, pidfd, waited, run, nil
}
