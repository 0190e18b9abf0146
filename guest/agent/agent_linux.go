// Package agent is PID 1 inside every machine (VM or sandbox). It owns
// everything inside: it mounts the container's rootfs, starts, signals and
// reaps processes, and answers the host over the one byte stream its
// driver provides, through guest/wire. The host never enters the machine
// any other way.
package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"time"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// Config is how the machine's boot tells the agent about its world.
type Config struct {
	// Stream is where the host's byte stream is; see OpenStream.
	Stream string
	// Resume, when set, is called on the stream before the session: a VM
	// booted as a template waits there to be snapshotted (see VMInit).
	Resume func(io.ReadWriter) error
	// RunDir is the agent's own directory; a tmpfs is mounted on it and
	// the container's root is mounted beneath it.
	RunDir string
	// Stage is the static binary the container's processes start as (see
	// stage_linux.go); "" is the agent's own.
	Stage string
	Log   *slog.Logger
}

// DefaultRunDir is the agent's directory inside a VM.
const DefaultRunDir = "/run/arca"

// Agent serves one container. It implements wire.Handler.
type Agent struct {
	log     *slog.Logger
	reaper  *reaper
	setupMu sync.Mutex
	runDir  string // moves to / once the agent pivots into it
	procDir string // the agent's own procfs
	// oomProtected: the agent set itself out of the OOM killer's reach, so
	// each process it starts must be set back to the default.
	oomProtected bool
	stageExe     int // O_PATH descriptor of the stage binary
	cg           *cgroups
	net          *network   // nil until prepare
	pauseMu      sync.Mutex // one Pause or Resume at a time

	// upper is the container's writable layer, opened at Setup: after the
	// pivot its path is gone from the agent's view.
	upper *os.File
	// lowers are the image's layers as the overlay stacks them (top
	// first), opened with upper, for Changes.
	lowers    []*os.File
	lowersErr error // set when one of them could not be opened

	mu       sync.Mutex
	root     *rootDir // nil until Setup
	rootPath string   // the container root as the agent sees it
	procs    map[string]*process
	stages   map[int]bool // exec stages by pid, not the container's processes
	// ctrMnt and ctrPid are the main process's mount and pid namespaces
	// (descriptors, -1 when it is not running), which execs join; ctrCgroup
	// its cgroup namespace when it has one of its own (privileged), else -1.
	ctrMnt, ctrPid, ctrCgroup int
	// privileged: the container is --privileged (wire.SetupRequest).
	privileged  bool
	mainStarted bool
	stopped     bool // the main process exited or Shutdown came: no more starts
	paused      bool
}

var _ wire.Handler = (*Agent)(nil)

// How long the agent waits, before exiting, for killed processes to be
// reported to the host.
const exitGrace = 3 * time.Second

// Run is the agent's life: prepare its own tree, connect to the host and
// serve until the host asks for Shutdown (Run then returns nil) or the
// stream ends (Run returns why). Either way every process in the machine
// is killed first: a host that died must not leave orphans.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.RunDir == "" {
		cfg.RunDir = DefaultRunDir
	}
	// Whatever the agent inherited (its stream included) stays its own:
	// no process it starts may inherit it.
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	a := &Agent{log: cfg.Log, runDir: cfg.RunDir, procs: map[string]*process{}, stages: map[int]bool{}, ctrMnt: -1, ctrPid: -1, ctrCgroup: -1}
	// The reaper comes first, before anything can fork.
	a.reaper = newReaper()
	defer a.reaper.close()
	stopSignals := ignoreSignals(a.log)
	defer stopSignals()
	if os.Getpid() != 1 {
		// Run outside a pid namespace (a test): orphans still come here.
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	// Held open from here, so a stage can be run once the agent's root
	// no longer shows where its binary lies.
	stage := cfg.Stage
	if stage == "" {
		stage = "/proc/self/exe"
	}
	fd, err := unix.Open(stage, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open stage binary: %w", err)
	}
	defer unix.Close(fd)
	a.stageExe = fd
	if err := a.prepare(); err != nil {
		return err
	}
	conn, err := OpenStream(cfg.Stream)
	if err != nil {
		return err
	}
	if cfg.Resume != nil {
		if err := cfg.Resume(conn); err != nil {
			conn.Close()
			return err
		}
	}
	if inVM.Load() {
		a.log.Info("serving", "stream", cfg.Stream, "at", sinceBoot())
	} else {
		a.log.Info("serving", "stream", cfg.Stream)
	}
	err = wire.Serve(ctx, conn, a)
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.killAll()
	a.waitIdle(exitGrace)
	if err != nil {
		return fmt.Errorf("serve host: %w", err)
	}
	return nil
}

// prepare makes the agent's mounts private to its mount namespace, so
// nothing it mounts can reach the host, and gives it a tmpfs and procfs of
// its own. It also brings up loopback, which containers expect.
func (a *Agent) prepare() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := os.MkdirAll(a.runDir, 0o755); err != nil {
		return fmt.Errorf("create run dir: %w", err)
	}
	if err := unix.Mount("tmpfs", a.runDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755"); err != nil {
		return fmt.Errorf("mount run dir: %w", err)
	}
	a.procDir = a.runDir + "/proc"
	if err := os.Mkdir(a.procDir, 0o555); err != nil {
		return fmt.Errorf("create proc dir: %w", err)
	}
	if err := unix.Mount("proc", a.procDir, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc: %w", err)
	}
	if os.Getpid() == 1 {
		// The OOM killer must pick the container's processes, never the
		// agent: without it the whole machine goes. Children are set back
		// to 0 as they start (see protectFromOOM).
		if err := writeOOMScore(a.procDir, "self", -1000); err != nil {
			a.log.Warn("agent stays killable by the OOM killer", "err", err)
		} else {
			a.oomProtected = true
		}
		// Outside its own namespaces (tests) the agent must not rearrange
		// the cgroups of the machine it runs on.
		cg, err := setupCgroups(a.runDir+"/cgroup", a.procDir, a.runDir+"/cgroup-v1")
		if err != nil {
			a.log.Warn("no cgroups: no pause, limits or cgroup stats", "err", err)
		}
		a.cg = cg
	}
	if err := loopbackUp(); err != nil {
		a.log.Warn("loopback stays down", "err", err)
	}
	a.net = newNetwork(a.log)
	return nil
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// ignoreSignals keeps signals from killing the agent: Go would exit on
// SIGTERM and friends, and as PID 1 the agent is the whole machine. It
// catches rather than ignores them, because an ignored signal would stay
// ignored in every process the agent starts.
func ignoreSignals(log *slog.Logger) (stop func()) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1,
		unix.SIGUSR2, unix.SIGALRM, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGXCPU,
		unix.SIGXFSZ, unix.SIGVTALRM, unix.SIGPWR, unix.SIGSTKFLT)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				log.Info("ignoring signal", "signal", sig)
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// waitIdle waits until every started process has been reported, or d.
func (a *Agent) waitIdle(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		a.mu.Lock()
		n := len(a.procs)
		a.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeOOMScore sets /proc/<pid>/oom_score_adj under procDir.
func writeOOMScore(procDir, pid string, score int) error {
	return os.WriteFile(procDir+"/"+pid+"/oom_score_adj", []byte(strconv.Itoa(score)), 0)
}
