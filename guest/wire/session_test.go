package wire

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeAgent runs pretend processes in goroutines, so the protocol is
// tested without root or a guest.
type fakeAgent struct {
	mu          sync.Mutex
	procs       map[string]*fakeProc
	resized     map[string]WindowSize
	setup       []SetupRequest
	network     []NetworkConfig
	written     atomic.Int64 // bytes of output written by "flood"
	changesFail atomic.Bool
}

type fakeProc struct {
	signals chan syscall.Signal
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{procs: map[string]*fakeProc{}, resized: map[string]WindowSize{}}
}

func (f *fakeAgent) Setup(ctx context.Context, req SetupRequest) error {
	if req.Hostname == "slow" {
		<-ctx.Done()
		return ctx.Err()
	}
	if req.Hostname == "" {
		return Errorf(KindInvalid, "no hostname")
	}
	f.mu.Lock()
	f.setup = append(f.setup, req)
	f.mu.Unlock()
	return nil
}

// Start understands a few commands: echo ARGS, err ARGS, cat, flood N,
// block (until signalled), missing.
func (f *fakeAgent) Start(ctx context.Context, spec ProcessSpec, stdio Stdio) (int, <-chan ExitStatus, error) {
	if spec.Args[0] == "missing" {
		stdio.Close()
		return 0, nil, Errorf(KindNotFound, "exec: %q: executable file not found in $PATH", "missing")
	}
	p := &fakeProc{signals: make(chan syscall.Signal, 1)}
	f.mu.Lock()
	f.procs[spec.ID] = p
	f.mu.Unlock()
	exited := make(chan ExitStatus, 1)
	go func() {
		status := ExitStatus{}
		switch spec.Args[0] {
		case "echo":
			io.WriteString(stdio.Stdout, strings.Join(spec.Args[1:], " ")+"\n")
		case "err":
			io.WriteString(stdio.Stderr, strings.Join(spec.Args[1:], " ")+"\n")
			status.Code = 1
		case "cat":
			io.Copy(stdio.Stdout, stdio.Stdin)
		case "flood":
			n, _ := strconv.Atoi(spec.Args[1])
			chunk := make([]byte, 32<<10)
			for i := 0; n > 0; i++ {
				for j := range chunk {
					chunk[j] = byte(i + j)
				}
				c := chunk[:min(n, len(chunk))]
				if _, err := stdio.Stdout.Write(c); err != nil {
					break
				}
				f.written.Add(int64(len(c)))
				n -= len(c)
			}
		case "block":
			sig := <-p.signals
			status = ExitStatus{Code: 128 + int(sig), Signal: int(sig)}
		}
		// The contract: all output closed before the status is sent.
		stdio.Close()
		exited <- status
	}()
	return 42, exited, nil
}

func (f *fakeAgent) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	f.mu.Lock()
	p, ok := f.procs[id]
	f.mu.Unlock()
	if !ok {
		return Errorf(KindNotFound, "no such process: %s", id)
	}
	select {
	case p.signals <- sig:
	default:
	}
	return nil
}

func (f *fakeAgent) Resize(ctx context.Context, id string, size WindowSize) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resized[id] = size
	return nil
}

func (f *fakeAgent) Shutdown(ctx context.Context) error {
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

// pair starts a session over a socketpair and returns the client and a
// channel with Serve's result.
func pair(t *testing.T, h Handler) (*Client, <-chan error) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hostConn, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	agentConn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- Serve(context.Background(), agentConn, h) }()
	c, err := NewClient(hostConn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, served
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func run(t *testing.T, c *Client, spec ProcessSpec, stdin string) (stdout, stderr string, status ExitStatus) {
	t.Helper()
	p, err := c.Start(ctx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if p.Stdin != nil {
		go func() {
			io.WriteString(p.Stdin, stdin)
			p.Stdin.Close()
		}()
	}
	var wg sync.WaitGroup
	var outBuf, errBuf bytes.Buffer
	for _, x := range []struct {
		r io.Reader
		w *bytes.Buffer
	}{{p.Stdout, &outBuf}, {p.Stderr, &errBuf}} {
		if x.r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(x.w, x.r)
		}()
	}
	wg.Wait()
	status, err = p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return outBuf.String(), errBuf.String(), status
}

func TestSessionCalls(t *testing.T) {
	f := newFakeAgent()
	c, _ := pair(t, f)
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Setup(ctx(t), SetupRequest{Hostname: "box", Hosts: []byte("h")}); err != nil {
		t.Fatal(err)
	}
	if len(f.setup) != 1 || f.setup[0].Hostname != "box" || string(f.setup[0].Hosts) != "h" {
		t.Fatalf("setup got %+v", f.setup)
	}
	err := c.Setup(ctx(t), SetupRequest{})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no hostname") {
		t.Fatalf("setup error %v", err)
	}
	if err := c.Resize(ctx(t), "p1", 30, 100); err != nil {
		t.Fatal(err)
	}
	if got := f.resized["p1"]; got != (WindowSize{Height: 30, Width: 100}) {
		t.Fatalf("resized %+v", got)
	}
	if err := c.Signal(ctx(t), "nope", syscall.SIGTERM); !errors.Is(err, ErrNotFound) {
		t.Fatalf("signal unknown process: %v", err)
	}
}

func TestSessionProcesses(t *testing.T) {
	c, _ := pair(t, newFakeAgent())
	tests := []struct {
		name               string
		spec               ProcessSpec
		stdin              string
		wantOut, wantErr   string
		wantCode           int
		wantStderrAttached bool
	}{
		{name: "stdout", spec: ProcessSpec{Args: []string{"echo", "hello"}}, wantOut: "hello\n", wantStderrAttached: true},
		{name: "stderr", spec: ProcessSpec{Args: []string{"err", "oops"}}, wantErr: "oops\n", wantCode: 1, wantStderrAttached: true},
		{name: "stdin", spec: ProcessSpec{Args: []string{"cat"}, Stdin: true}, stdin: "abc\x00def", wantOut: "abc\x00def", wantStderrAttached: true},
		{name: "tty", spec: ProcessSpec{Args: []string{"echo", "tty"}, Tty: true}, wantOut: "tty\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.ID = "p" + strconv.Itoa(i)
			p, err := c.Start(ctx(t), tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if (p.Stderr != nil) != tt.wantStderrAttached || (p.Stdin != nil) != tt.spec.Stdin || p.Pid != 42 {
				t.Fatalf("process %+v", p)
			}
			p.Close() // this test reads through run below instead
			out, errOut, status := run(t, c, ProcessSpec{ID: tt.spec.ID + "b", Args: tt.spec.Args, Stdin: tt.spec.Stdin, Tty: tt.spec.Tty}, tt.stdin)
			if out != tt.wantOut || errOut != tt.wantErr || status.Code != tt.wantCode {
				t.Fatalf("got %q %q %+v", out, errOut, status)
			}
		})
	}
}

func TestStartError(t *testing.T) {
	c, _ := pair(t, newFakeAgent())
	_, err := c.Start(ctx(t), ProcessSpec{ID: "m", Args: []string{"missing"}, Stdin: true})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `exec: "missing": executable file not found in $PATH`) {
		t.Fatalf("got %v", err)
	}
}

// Ten megabytes must arrive byte for byte.
func TestLargeOutput(t *testing.T) {
	f := newFakeAgent()
	c, _ := pair(t, f)
	const n = 10_000_000
	out, _, status := run(t, c, ProcessSpec{ID: "big", Args: []string{"flood", strconv.Itoa(n)}}, "")
	if status.Code != 0 || len(out) != n {
		t.Fatalf("status %+v, %d bytes", status, len(out))
	}
	want := sha256.New()
	chunk := make([]byte, 32<<10)
	left := n
	for i := 0; left > 0; i++ {
		for j := range chunk {
			chunk[j] = byte(i + j)
		}
		c := chunk[:min(left, len(chunk))]
		want.Write(c)
		left -= len(c)
	}
	if sha256.Sum256([]byte(out)) != [32]byte(want.Sum(nil)) {
		t.Fatal("output corrupted")
	}
}

// A host that does not read blocks the writer: nothing piles up.
func TestBackpressure(t *testing.T) {
	f := newFakeAgent()
	c, _ := pair(t, f)
	p, err := c.Start(ctx(t), ProcessSpec{ID: "flood", Args: []string{"flood", "50000000"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// One stream window (256 KiB) and a chunk in flight at most.
	if w := f.written.Load(); w > 512<<10 {
		t.Fatalf("%d bytes written while nobody reads", w)
	}
	n, _ := io.Copy(io.Discard, p.Stdout)
	if n != 50000000 {
		t.Fatalf("read %d", n)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// Output written before the exit is readable after Wait returns.
func TestWaitAfterOutput(t *testing.T) {
	c, _ := pair(t, newFakeAgent())
	p, err := c.Start(ctx(t), ProcessSpec{ID: "f", Args: []string{"flood", "100000"}})
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, p.Stderr)
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, p.Stdout)
	if n != 100000 || err != nil {
		t.Fatalf("read %d after Wait: %v", n, err)
	}
}

func TestSignalAndShutdown(t *testing.T) {
	c, served := pair(t, newFakeAgent())
	p1, err := c.Start(ctx(t), ProcessSpec{ID: "a", Args: []string{"block"}})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.Start(ctx(t), ProcessSpec{ID: "b", Args: []string{"block"}})
	if err != nil {
		t.Fatal(err)
	}
	p1.Close()
	p2.Close()
	if err := c.Signal(ctx(t), "a", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st, err := p1.Wait(); err != nil || st != (ExitStatus{Code: 143, Signal: 15}) {
		t.Fatalf("p1: %+v %v", st, err)
	}
	if err := c.Shutdown(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// Shutdown reports killed processes before it returns.
	select {
	case <-p2.Exited():
	default:
		t.Fatal("p2 not reported before Shutdown returned")
	}
	if st, err := p2.Wait(); err != nil || st.Code != 137 {
		t.Fatalf("p2: %+v %v", st, err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client session still open")
	}
}

func TestHostCloseEndsServe(t *testing.T) {
	c, served := pair(t, newFakeAgent())
	p, err := c.Start(ctx(t), ProcessSpec{ID: "a", Args: []string{"block"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := p.Wait(); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("Wait after close: %v", err)
	}
	select {
	case err := <-served:
		if err == nil {
			t.Fatal("Serve returned nil after the host vanished")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if err := c.Ping(ctx(t)); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("ping after close: %v", err)
	}
}

func TestCallDeadline(t *testing.T) {
	c, _ := pair(t, newFakeAgent())
	cx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Setup(cx, SetupRequest{Hostname: "slow"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	// The session is still usable.
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
