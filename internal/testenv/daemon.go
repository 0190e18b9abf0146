package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// Options configure StartDaemon. The zero value is the usual: the sandbox
// driver, fresh temp root.
type Options struct {
	// Driver is passed as --driver; default $ARCA_TEST_DRIVER, else
	// "sandbox" (a Mac runs the suite with ARCA_TEST_DRIVER=vz).
	Driver string
	// Args are extra daemon arguments, after the ones testenv passes.
	Args []string
	// Env is added to the daemon's environment (KEY=VALUE).
	Env []string
	// StartTimeout bounds waiting for /_ping; default 30 s.
	StartTimeout time.Duration
	// DockerTimeout bounds each docker CLI call; default 2 min.
	DockerTimeout time.Duration
	// AllowUnclean skips failing the test when the daemon's log shows a data
	// race or a panic (for tests that provoke one on purpose).
	AllowUnclean bool
}

// Daemon is a running (or stopped, between Kill9 and Restart) arca daemon.
type Daemon struct {
	opts    Options
	bins    Binaries
	dir     string // holds the socket, root, log and docker config
	socket  string
	root    string
	logPath string

	mu   sync.Mutex
	proc *proc // the current or last run; nil before the first

	clientOnce sync.Once
	client     *client.Client
	clientErr  error
}

// StartDaemon builds arca and arca-agent (once per test binary), starts
// `arca daemon --socket DIR/arca.sock --root DIR/root --driver sandbox
// --agent AGENT` and waits until GET /_ping answers. At cleanup it stops the
// daemon (SIGTERM, SIGKILL after 10 s) and fails the test if the daemon's log
// shows a data race or a Go panic.
func StartDaemon(t testing.TB, opts Options) *Daemon {
	t.Helper()
	requireDriver(t, opts.Driver)
	RequireTool(t, "docker")
	d, err := newDaemon(Build(t), opts, tempDir(t, "arca-"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := d.shutdown(); err != nil {
			t.Error(err)
		}
	})
	if err := d.start(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return d
}

func newDaemon(bins Binaries, opts Options, dir string) (*Daemon, error) {
	if opts.Driver == "" {
		opts.Driver = DefaultDriver()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.DockerTimeout == 0 {
		opts.DockerTimeout = 2 * time.Minute
	}
	d := &Daemon{
		opts:    opts,
		bins:    bins,
		dir:     dir,
		socket:  filepath.Join(dir, "arca.sock"),
		root:    filepath.Join(dir, "root"),
		logPath: filepath.Join(dir, "daemon.log"),
	}
	if err := setupDockerConfig(d.dockerConfig()); err != nil {
		return nil, err
	}
	return d, nil
}

// Socket is the daemon's unix socket path.
func (d *Daemon) Socket() string { return d.socket }

// Host is the socket as a DOCKER_HOST value: "unix:///…/arca.sock".
func (d *Daemon) Host() string { return "unix://" + d.socket }

// Root is the daemon's --root directory.
func (d *Daemon) Root() string { return d.root }

// Log returns everything the daemon printed, over all its runs.
func (d *Daemon) Log() string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return fmt.Sprintf("(no daemon log: %v)", err)
	}
	return string(b)
}

// proc is one run of the daemon process.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
	err    error         // Wait's result; read only after exited is closed
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (d *Daemon) current() *proc {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.proc
}

// Kill9 kills the daemon with SIGKILL, as a crash would, and waits for it.
// Restart brings it back on the same socket and root.
func (d *Daemon) Kill9(t testing.TB) {
	t.Helper()
	p := d.current()
	if p == nil || !p.running() {
		t.Fatalf("testenv: Kill9: daemon not running")
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	d.note("killed with SIGKILL by the test")
}

// Restart stops the daemon if it still runs (gracefully) and starts it again
// on the same socket and root, waiting for /_ping.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	if err := d.stop(); err != nil {
		t.Fatalf("testenv: Restart: %v", err)
	}
	if err := d.start(); err != nil {
		t.Fatalf("testenv: Restart: %v", err)
	}
}

// Stop stops the daemon as a service manager would (SIGTERM, SIGKILL after
// 10 s) and leaves it stopped, for tests that look at what a stopped
// daemon left behind; Restart brings it back.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	if err := d.stop(); err != nil {
		t.Fatalf("testenv: Stop: %v", err)
	}
}

// PID is the process ID of the daemon's current (or last) run; 0 before
// the first.
func (d *Daemon) PID() int {
	p := d.current()
	if p == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Stopped reports whether the daemon process has exited (a crash shows here).
func (d *Daemon) Stopped() bool {
	p := d.current()
	return p == nil || !p.running()
}

func (d *Daemon) start() error {
	if p := d.current(); p != nil && p.running() {
		return errors.New("daemon already running")
	}
	logFile, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open daemon log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	fmt.Fprintf(logFile, "=== testenv: starting daemon at %s\n", time.Now().Format(time.RFC3339Nano))

	args := []string{"daemon",
		"--socket", d.socket,
		"--root", d.root,
		"--driver", d.opts.Driver,
		"--agent", d.bins.Agent,
	}
	if !slices.Contains(d.opts.Args, "--dns") {
		dns, err := Resolver()
		if err != nil {
			return fmt.Errorf("test resolver: %w", err)
		}
		args = append(args, "--dns", dns)
	}
	args = append(args, d.opts.Args...)
	cmd := exec.Command(d.bins.Arca, args...)
	cmd.Dir = d.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A race report doesn't stop the daemon (the log check at cleanup fails
	// the test), so the test goes on to show what else breaks.
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	cmd.Env = append(cmd.Env, d.opts.Env...)
	// SIGTERM when the test binary dies (a test timeout, say), so the daemon
	// can take its sandboxes down instead of leaving them behind.
	cmd.SysProcAttr = dieWithTest(syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.bins.Arca, err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	d.mu.Lock()
	d.proc = p
	d.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), d.opts.StartTimeout)
	defer cancel()
	if err := d.waitPing(ctx, p); err != nil {
		// Don't leave a half-started daemon behind the failure.
		_ = cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("daemon on %s: %w\ndaemon log:\n%s", d.socket, err, tail(d.Log(), 8000))
	}
	return nil
}

func (d *Daemon) waitPing(ctx context.Context, p *proc) error {
	hc := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var dialer net.Dialer
				return dialer.DialContext(ctx, "unix", d.socket)
			},
			DisableKeepAlives: true,
		},
	}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://arca/_ping", nil)
		if err != nil {
			return fmt.Errorf("build ping: %w", err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-p.exited:
			return fmt.Errorf("exited before answering /_ping: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("no answer to GET /_ping within %s (last: %v)", d.opts.StartTimeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and, after 10 s, SIGKILL. A daemon that needed SIGKILL
// is reported in its log, not as an error: that is the shutdown tests' job.
func (d *Daemon) stop() error {
	p := d.current()
	if p == nil || !p.running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal daemon: %w", err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		d.note("daemon did not exit within 10s of SIGTERM; killed")
	}
	return nil
}

// note appends a testenv line to the daemon log, where whoever reads the
// log for a failure will see it in sequence.
func (d *Daemon) note(msg string) {
	f, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== testenv: %s\n", msg)
}

// shutdown stops the daemon for good and checks its log.
func (d *Daemon) shutdown() error {
	if d.client != nil {
		_ = d.client.Close()
	}
	if err := d.stop(); err != nil {
		return fmt.Errorf("testenv: stop daemon: %w", err)
	}
	if d.opts.AllowUnclean {
		return nil
	}
	return checkLog(d.Log())
}

// A race report, a panic that reached the top of a goroutine, or a runtime
// fatal error (concurrent map writes and the like) all begin a line.
var uncleanLog = regexp.MustCompile(`(?m)^(WARNING: DATA RACE|panic: |fatal error: )`)

func checkLog(log string) error {
	for _, loc := range uncleanLog.FindAllStringIndex(log, -1) {
		if !knownUpstreamRace(log[loc[0]:]) {
			return uncleanError(log, loc[0])
		}
	}
	return nil
}

// knownUpstreamRaces are data races inside libraries, reported upstream
// or harmless, that the race-enabled daemon meets: each is matched by the
// function both of its accesses are in, which must be the report's first
// frame.
var knownUpstreamRaces = []string{
	// BuildKit v0.34.2's Dockerfile frontend sets CacheError = true on a
	// shared group from each stage's resolver goroutine (the same value,
	// before any read): frontend/dockerfile/builder/resolvecache.go.
	"github.com/moby/buildkit/frontend/dockerfile/builder.(*withResolveCache).ResolveImageConfig()",
}

// knownUpstreamRace tells whether the report at the start of s is one of
// knownUpstreamRaces: both accesses' first frames are that function.
func knownUpstreamRace(s string) bool {
	if !strings.HasPrefix(s, "WARNING: DATA RACE") {
		return false
	}
	if end := strings.Index(s, "=================="); end > 0 {
		s = s[:end]
	}
	lines := strings.Split(s, "\n")
	var firstFrames []string
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if (strings.HasPrefix(t, "Write at") || strings.HasPrefix(t, "Read at") || strings.HasPrefix(t, "Previous write at") || strings.HasPrefix(t, "Previous read at")) && i+1 < len(lines) {
			firstFrames = append(firstFrames, strings.TrimSpace(lines[i+1]))
		}
	}
	if len(firstFrames) != 2 {
		return false
	}
	for _, known := range knownUpstreamRaces {
		if firstFrames[0] == known && firstFrames[1] == known {
			return true
		}
	}
	return false
}

// uncleanError quotes the log around the problem found at offset at.
func uncleanError(log string, at int) error {
	start, end := max(at-2000, 0), min(at+6000, len(log))
	return fmt.Errorf("testenv: daemon log shows a data race or panic:\n%s", log[start:end])
}

// Client returns a moby Go client for the daemon; the API version is
// negotiated on first use. It is closed with the daemon.
func (d *Daemon) Client(t testing.TB) *client.Client {
	t.Helper()
	d.clientOnce.Do(func() {
		d.client, d.clientErr = client.New(client.WithHost(d.Host()))
	})
	if d.clientErr != nil {
		t.Fatalf("testenv: moby client: %v", d.clientErr)
	}
	return d.client
}
