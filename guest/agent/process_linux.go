package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// execOutputGrace is how long an exec's output may stay open after the exec
// itself exited, held by a background child; then the exec is reported.
const execOutputGrace = 2 * time.Second

// process is a process the host started.
type process struct {
	id   string
	main bool

	mu     sync.Mutex
	pid    int
	pidfd  int      // -1 when the kernel gave none
	tty    *os.File // pty master, nil without a tty
	exited bool
}

// signal sends sig unless the process is gone; the pidfd makes sure a
// recycled pid is never hit.
func (p *process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited || p.pid == 0 {
		return nil
	}
	var err error
	if p.pidfd >= 0 {
		err = unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	} else {
		err = unix.Kill(p.pid, sig)
	}
	if err == unix.ESRCH {
		return nil
	}
	if err != nil {
		return fmt.Errorf("signal %s: %w", p.id, err)
	}
	return nil
}

func (p *process) markExited() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exited = true
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}

// Start implements wire.Handler.
func (a *Agent) Start(ctx context.Context, spec wire.ProcessSpec, stdio wire.Stdio) (int, <-chan wire.ExitStatus, error) {
	p, root, rootPath, err := a.reserve(spec)
	if err != nil {
		stdio.Close()
		return 0, nil, err
	}
	pid, exited, err := a.launch(p, root, rootPath, spec, stdio)
	if err != nil {
		a.forget(p.id)
		stdio.Close()
		return 0, nil, err
	}
	return pid, exited, nil
}

// reserve claims spec.ID once the container can take another process.
func (a *Agent) reserve(spec wire.ProcessSpec) (*process, *rootDir, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.root == nil:
		return nil, nil, "", wire.Errorf(wire.KindConflict, "container is not set up")
	case a.stopped:
		return nil, nil, "", wire.Errorf(wire.KindConflict, "container is not running")
	case a.paused:
		return nil, nil, "", wire.Errorf(wire.KindConflict, "container is paused")
	case spec.ID == "":
		return nil, nil, "", wire.Errorf(wire.KindInvalid, "process has no id")
	case len(spec.Args) == 0:
		return nil, nil, "", wire.Errorf(wire.KindInvalid, "no command specified")
	case a.procs[spec.ID] != nil:
		return nil, nil, "", wire.Errorf(wire.KindConflict, "process %s already exists", spec.ID)
	case spec.Main && a.mainStarted:
		return nil, nil, "", wire.Errorf(wire.KindConflict, "container already has a main process")
	}
	p := &process{id: spec.ID, main: spec.Main, pidfd: -1}
	a.procs[spec.ID] = p
	if spec.Main {
		a.mainStarted = true
	}
	return p, a.root, a.rootPath, nil
}

func (a *Agent) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.procs[id]; p != nil && p.main {
		a.mainStarted = false
	}
	delete(a.procs, id)
}

func (a *Agent) launch(p *process, root *rootDir, rootPath string, spec wire.ProcessSpec, stdio wire.Stdio) (int, <-chan wire.ExitStatus, error) {
	caps, err := parseCaps(spec.Capabilities)
	if err != nil {
		return 0, nil, err
	}
	user, err := a.lookupUser(root, spec.User)
	if err != nil {
		return 0, nil, err
	}
	cwd := path.Clean("/" + spec.Cwd)
	dfd, err := root.mkdirAll(cwd)
	if err != nil {
		return 0, nil, fmt.Errorf("create working directory: %w", err)
	}
	unix.Close(dfd)
	pathEnv, ok := lookupEnv(spec.Env, "PATH")
	if !ok {
		pathEnv = defaultPath
	}
	argv0, err := lookPath(root, spec.Args[0], pathEnv, cwd)
	if err != nil {
		return 0, nil, err
	}
	profile, boundary, err := seccompPrograms(spec)
	if err != nil {
		return 0, nil, err
	}
	var pio *procIO
	if spec.Tty {
		pio, err = newTtyIO(root, user.UID, spec.ConsoleSize)
	} else {
		pio, err = newPipeIO(root, stdio.Stdin != nil)
	}
	if err != nil {
		return 0, nil, err
	}
	cfg := stageConfig{
		Main: spec.Main, Root: rootPath, Proc: a.procDir,
		Path: argv0, Args: spec.Args, Env: processEnv(spec.Env, user.Home, spec.Tty), Cwd: cwd,
		UID: user.UID, GID: user.GID, Groups: user.Groups, Tty: spec.Tty,
		Caps: caps, Seccomp: profile, Boundary: boundary,
		NoNewPrivileges: spec.NoNewPrivileges, Rlimits: spec.Rlimits,
		Privileged: spec.Main && a.isPrivileged(),
	}
	var oomBefore uint64
	if spec.Main {
		oomBefore = a.cg.oomKills()
	}
	pid, pidfd, waited, ctl, err := a.startStage(cfg, pio)
	pio.closeChild()
	if err != nil {
		pio.close()
		return 0, nil, err
	}
	if a.oomProtected {
		// It inherited the agent's -1000: back to the default, so a
		// memory limit kills it and not the machine.
		if err := writeOOMScore(a.procDir, strconv.Itoa(pid), 0); err != nil {
			a.log.Warn("process keeps the agent's OOM protection", "pid", pid, "err", err)
		}
	}
	p.mu.Lock()
	p.pid, p.pidfd, p.tty = pid, pidfd, pio.tty
	p.mu.Unlock()
	a.mu.Lock()
	stopped := a.stopped
	a.mu.Unlock()
	if stopped {
		// The container ended while this one was being forked, too late
		// for the kill that ended the rest.
		p.signal(unix.SIGKILL)
	}

	var copies sync.WaitGroup
	dsts := []io.WriteCloser{stdio.Stdout, stdio.Stderr}
	for i, src := range pio.outputs {
		copies.Add(1)
		go func() {
			defer copies.Done()
			copyOutput(dsts[i], src)
		}()
	}
	if stdio.Stdin != nil {
		dst := pio.stdin
		if spec.Tty {
			dst = pio.tty
		}
		go copyStdin(dst, stdio.Stdin, spec.Tty)
	}
	exited := make(chan wire.ExitStatus, 1)
	go func() {
		ws := <-waited
		if !spec.Main {
			// The stage waited for the command and said how it ended.
			ws = ctl.status(ws)
		}
		a.endStage(ctl)
		code, sig := exitStatus(ws)
		// Docker reports OOMKilled when the OOM killer struck in the
		// container during its main process's life, whichever process it
		// took.
		oom := spec.Main && a.cg.oomKills() > oomBefore
		p.markExited()
		grace := execOutputGrace
		if p.main {
			// Like the death of a pid namespace's init: everything goes,
			// so whatever held the output lets go of it.
			a.mainExited()
			grace = 0
		}
		outputDone(&copies, pio.outputs, grace)
		if stdio.Stdin != nil {
			stdio.Stdin.Close()
		}
		pio.close()
		a.forget(p.id)
		exited <- wire.ExitStatus{Code: code, Signal: sig, OOMKilled: oom}
	}()
	return pid, exited, nil
}

// lookupUser resolves user with the container's passwd and group files.
func (a *Agent) lookupUser(root *rootDir, user string) (execUser, error) {
	open := func(name string) (io.Reader, func(), error) {
		f, err := root.openFile(name, unix.O_RDONLY)
		if errors.Is(err, unix.ENOENT) {
			return nil, func() {}, nil
		}
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	}
	passwd, closePasswd, err := open("/etc/passwd")
	if err != nil {
		return execUser{}, err
	}
	defer closePasswd()
	group, closeGroup, err := open("/etc/group")
	if err != nil {
		return execUser{}, err
	}
	defer closeGroup()
	return resolveUser(user, passwd, group)
}

// execError words a failed fork/exec as runc would.
func execError(name string, err error) error {
	switch errnoOf(err) {
	case unix.ENOENT:
		return wire.Errorf(wire.KindNotFound, "exec: %q: no such file or directory", name)
	case unix.EACCES, unix.EPERM:
		return wire.Errorf(wire.KindPermission, "exec: %q: permission denied", name)
	case unix.ENOEXEC:
		return wire.Errorf(wire.KindInvalid, "exec: %q: exec format error", name)
	}
	return fmt.Errorf("exec: %q: %w", name, err)
}

// Signal implements wire.Handler.
func (a *Agent) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	p, err := a.process(id)
	if err != nil {
		return err
	}
	return p.signal(sig)
}

// Resize implements wire.Handler; without a tty it does nothing.
func (a *Agent) Resize(ctx context.Context, id string, size wire.WindowSize) error {
	p, err := a.process(id)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty == nil || p.exited {
		return nil
	}
	rc, err := p.tty.SyscallConn()
	if err != nil {
		return nil // closed: the process is on its way out
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setWinsize(int(fd), size) }); err != nil {
		return nil
	}
	if serr != nil {
		return fmt.Errorf("resize %s: %w", id, serr)
	}
	return nil
}

func (a *Agent) process(id string) (*process, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.procs[id]
	if p == nil {
		return nil, wire.Errorf(wire.KindNotFound, "no such process: %s", id)
	}
	return p, nil
}

// Shutdown implements wire.Handler: nothing may run or start any more.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.killAll()
	syncIfVM()
	return nil
}

func (a *Agent) mainExited() {
	a.mu.Lock()
	a.stopped = true
	a.closeContainerNamespaces()
	a.mu.Unlock()
	a.killAll()
}

// killAll kills every process in the container. As PID 1 that is
// everything but the agent; otherwise (tests) the sessions it started.
func (a *Agent) killAll() {
	if os.Getpid() == 1 {
		unix.Kill(-1, unix.SIGKILL)
		// A frozen process dies of SIGKILL only once thawed.
		if a.cg.ok() {
			a.cg.write("cgroup.freeze", "0")
		}
		return
	}
	a.mu.Lock()
	procs := make([]*process, 0, len(a.procs))
	for _, p := range a.procs {
		procs = append(procs, p)
	}
	a.mu.Unlock()
	for _, p := range procs {
		p.mu.Lock()
		if !p.exited && p.pid > 0 {
			unix.Kill(-p.pid, unix.SIGKILL)
		}
		p.mu.Unlock()
		p.signal(unix.SIGKILL)
	}
}

// isPrivileged tells whether Setup said the container is --privileged.
func (a *Agent) isPrivileged() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.privileged
}

// mainPid is the container's main process's pid, 0 when there is none.
func (a *Agent) mainPid() int {
	a.mu.Lock()
	var main *process
	for _, p := range a.procs {
		if p.main {
			main = p
		}
	}
	a.mu.Unlock()
	if main == nil {
		return 0
	}
	main.mu.Lock()
	defer main.mu.Unlock()
	return main.pid
}
