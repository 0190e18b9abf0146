package actors

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/wire"
)

// fakeDriver boots in-process machines whose agent (fakeAgent) speaks the
// real protocol over a pipe, so a container actor runs, pauses, execs and
// stops without a guest. Per container it can hold a boot (the start
// stays in progress) or a kill (an rm -f stays in progress).
type fakeDriver struct {
	mu       sync.Mutex
	holdBoot map[string]chan struct{} // container ID: Boot waits for the close
	holdKill map[string]chan struct{} // container ID: Kill waits for the close
	booting  chan string              // a held Boot reports here
	agents   map[string]*fakeAgent    // container ID: the last machine's agent
	machines map[string]*fakeMachine  // container ID: the last machine booted
	boots    map[string]int           // container ID: machines booted
}

func newFakeDriver() *fakeDriver {
	return &fakeDriver{holdBoot: map[string]chan struct{}{}, holdKill: map[string]chan struct{}{}, booting: make(chan string, 64), agents: map[string]*fakeAgent{},
		machines: map[string]*fakeMachine{}, boots: map[string]int{}}
}

func (d *fakeDriver) Name() string { return "fake" }

func (d *fakeDriver) Boot(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	d.mu.Lock()
	hold := d.holdBoot[spec.ID]
	d.mu.Unlock()
	if hold != nil {
		d.booting <- spec.ID
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	host, guest := net.Pipe()
	m := &fakeMachine{d: d, id: spec.ID, conn: host, guest: guest, done: make(chan struct{})}
	ag := &fakeAgent{procs: map[string]*fakeProc{}}
	d.mu.Lock()
	d.agents[spec.ID] = ag
	d.machines[spec.ID] = m
	d.boots[spec.ID]++
	d.mu.Unlock()
	go func() {
		_ = wire.Serve(context.Background(), guest, ag)
		m.off()
	}()
	return m, nil
}

// lastMachine is the last machine booted for id, and how many were.
func (d *fakeDriver) lastMachine(id string) (*fakeMachine, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.machines[id], d.boots[id]
}

// hold makes the next boot of id wait; release lets it go.
func (d *fakeDriver) hold(id string) {
	d.mu.Lock()
	d.holdBoot[id] = make(chan struct{})
	d.mu.Unlock()
}

func (d *fakeDriver) holdKills(id string) {
	d.mu.Lock()
	d.holdKill[id] = make(chan struct{})
	d.mu.Unlock()
}

// finish ends whatever holds id in a transitional phase: a held boot or
// kill goes on, and the main process of its machine exits.
func (d *fakeDriver) finish(id string) {
	d.mu.Lock()
	for _, m := range []map[string]chan struct{}{d.holdBoot, d.holdKill} {
		if ch := m[id]; ch != nil {
			close(ch)
			delete(m, id)
		}
	}
	ag := d.agents[id]
	d.mu.Unlock()
	if ag != nil {
		ag.exitMain()
	}
}

// finishBoot lets a held boot of id go on; its machine keeps running.
func (d *fakeDriver) finishBoot(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch := d.holdBoot[id]; ch != nil {
		close(ch)
		delete(d.holdBoot, id)
	}
}

// releaseAll lets every held boot and kill go (test cleanup).
func (d *fakeDriver) releaseAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range []map[string]chan struct{}{d.holdBoot, d.holdKill} {
		for id, ch := range m {
			close(ch)
			delete(m, id)
		}
	}
}

type fakeMachine struct {
	d           *fakeDriver
	id          string
	conn, guest net.Conn
	done        chan struct{}
	once        sync.Once
}

func (m *fakeMachine) Conn() net.Conn        { return m.conn }
func (m *fakeMachine) Rootfs() vm.RootfsSpec { return vm.RootfsSpec{} }
func (m *fakeMachine) Done() <-chan struct{} { return m.done }
func (m *fakeMachine) Err() error            { return nil }

func (m *fakeMachine) Kill() error {
	m.d.mu.Lock()
	hold := m.d.holdKill[m.id]
	m.d.mu.Unlock()
	if hold != nil {
		<-hold
	}
	m.off()
	return nil
}

func (m *fakeMachine) off() {
	m.once.Do(func() {
		m.conn.Close()
		m.guest.Close()
		close(m.done)
	})
}

// fakeAgent runs pretend processes. A main process or exec whose first
// argument is "exit" ends at once with code 0; "ignore-term" ends only on
// SIGKILL; anything else also ends on SIGTERM (143) and SIGINT.
type fakeAgent struct {
	mu    sync.Mutex
	procs map[string]*fakeProc
	main  *fakeProc
}

type fakeProc struct {
	signals chan syscall.Signal
	end     chan int
}

func (f *fakeAgent) Setup(context.Context, wire.SetupRequest) error { return nil }

func (f *fakeAgent) Start(_ context.Context, spec wire.ProcessSpec, stdio wire.Stdio) (int, <-chan wire.ExitStatus, error) {
	p := &fakeProc{signals: make(chan syscall.Signal, 8), end: make(chan int, 1)}
	f.mu.Lock()
	f.procs[spec.ID] = p
	if f.main == nil {
		f.main = p
	}
	pid := len(f.procs) + 1
	f.mu.Unlock()
	exited := make(chan wire.ExitStatus, 1)
	go func() {
		code := 0
		if len(spec.Args) == 0 || spec.Args[0] != "exit" {
		loop:
			for {
				select {
				case code = <-p.end:
					break loop
				case s := <-p.signals:
					if s == syscall.SIGKILL || (spec.Args[0] != "ignore-term" && (s == syscall.SIGTERM || s == syscall.SIGINT)) {
						code = 128 + int(s)
						break loop
					}
				}
			}
		}
		stdio.Close()
		exited <- wire.ExitStatus{Code: code}
	}()
	return pid, exited, nil
}

func (f *fakeAgent) exitMain() {
	f.mu.Lock()
	p := f.main
	f.mu.Unlock()
	if p != nil {
		select {
		case p.end <- 0:
		default:
		}
	}
}

func (f *fakeAgent) Signal(_ context.Context, procID string, sig syscall.Signal) error {
	f.mu.Lock()
	p := f.procs[procID]
	f.mu.Unlock()
	if p == nil {
		return wire.Errorf(wire.KindNotFound, "no process %s", procID)
	}
	select {
	case p.signals <- sig:
	default:
	}
	return nil
}

func (f *fakeAgent) Resize(context.Context, string, wire.WindowSize) error { return nil }

func (f *fakeAgent) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.procs {
		select {
		case p.signals <- syscall.SIGKILL:
		default:
		}
	}
	return nil
}

func (f *fakeAgent) Top(context.Context, string) (wire.TopResult, error) {
	return wire.TopResult{Titles: []string{"PID", "CMD"}, Processes: [][]string{{"1", "fake"}}}, nil
}
func (f *fakeAgent) Stats(context.Context) (wire.Stats, error) {
	return wire.Stats{Read: time.Now()}, nil
}
func (f *fakeAgent) Usage(context.Context) (wire.DiskUsage, error)              { return wire.DiskUsage{}, nil }
func (f *fakeAgent) Pause(context.Context) error                                { return nil }
func (f *fakeAgent) Resume(context.Context) error                               { return nil }
func (f *fakeAgent) ConfigureNetwork(context.Context, wire.NetworkConfig) error { return nil }
func (f *fakeAgent) Dial(context.Context, string, int) (net.Conn, error) {
	return nil, errors.New("no ports in this test")
}

// The fake's one file is fakeFile, at fakeFilePath.
const (
	fakeFilePath = "/data"
	fakeFile     = "fake archive"
)

func (f *fakeAgent) ArchiveStat(_ context.Context, path string) (wire.PathStat, error) {
	if path != fakeFilePath {
		return wire.PathStat{}, wire.Errorf(wire.KindNotFound, "no %s in this test", path)
	}
	return wire.PathStat{Name: "data", Size: int64(len(fakeFile))}, nil
}
func (f *fakeAgent) ArchiveGet(ctx context.Context, path string) (wire.PathStat, func(io.Writer) error, error) {
	st, err := f.ArchiveStat(ctx, path)
	if err != nil {
		return st, nil, err
	}
	return st, func(w io.Writer) error {
		_, err := io.WriteString(w, fakeFile)
		return err
	}, nil
}
func (f *fakeAgent) ArchivePut(context.Context, string, wire.ArchivePutOptions) (func(io.Reader) error, error) {
	return nil, wire.Errorf(wire.KindNotFound, "no files in this test")
}
func (f *fakeAgent) Changes(context.Context, func(wire.Change) error) error { return nil }
func (f *fakeAgent) Export(context.Context, wire.ExportKind) (func(io.Writer) error, error) {
	return nil, wire.Errorf(wire.KindNotFound, "no files in this test")
}
