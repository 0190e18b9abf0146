package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
)

// Client is the host's end of an agent session. It is safe for concurrent
// use; calls run in parallel on their own streams.
type Client struct {
	sess *yamux.Session
}

// NewClient starts a session over conn, which the Client owns from now on.
func NewClient(conn net.Conn) (*Client, error) {
	sess, err := yamux.Client(conn, sessionConfig())
	if err != nil {
		return nil, fmt.Errorf("agent session: %w", err)
	}
	return &Client{sess: sess}, nil
}

// Close ends the session and closes the connection. Pending calls and
// Waits fail; the agent, seeing its stream close, kills everything.
func (c *Client) Close() error {
	return c.sess.Close()
}

// Done is closed when the session has ended, for whatever reason.
func (c *Client) Done() <-chan struct{} {
	return c.sess.CloseChan()
}

// Ping checks that the agent answers and speaks this protocol version.
func (c *Client) Ping(ctx context.Context) error {
	resp, err := c.call(ctx, request{Op: opPing, Version: ProtocolVersion})
	if err != nil {
		return fmt.Errorf("ping agent: %w", err)
	}
	if resp.Version != ProtocolVersion {
		return fmt.Errorf("ping agent: agent speaks protocol %d, host %d", resp.Version, ProtocolVersion)
	}
	return nil
}

// Setup mounts the container's rootfs and kernel filesystems in the
// machine, provides /etc/hostname, /etc/hosts and /etc/resolv.conf, and
// sets the hostname. It is called once per machine, before any Start.
func (c *Client) Setup(ctx context.Context, req SetupRequest) error {
	if _, err := c.call(ctx, request{Op: opSetup, Setup: &req}); err != nil {
		return fmt.Errorf("set up container: %w", err)
	}
	return nil
}

// Signal sends sig to the process started with procID.
func (c *Client) Signal(ctx context.Context, procID string, sig syscall.Signal) error {
	if _, err := c.call(ctx, request{Op: opSignal, ID: procID, Signal: int(sig)}); err != nil {
		return fmt.Errorf("signal process %s: %w", procID, err)
	}
	return nil
}

// Resize sets the pty size of the process started with procID. It is a
// no-op for a process without a tty.
func (c *Client) Resize(ctx context.Context, procID string, height, width uint16) error {
	size := WindowSize{Height: height, Width: width}
	if _, err := c.call(ctx, request{Op: opResize, ID: procID, Size: &size}); err != nil {
		return fmt.Errorf("resize process %s: %w", procID, err)
	}
	return nil
}

// Shutdown asks the agent to kill every process and exit; the machine then
// powers off. Waits of running processes report them killed. It also
// succeeds if the session is already gone.
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := c.call(ctx, request{Op: opShutdown})
	if errors.Is(err, ErrSessionClosed) {
		// Gone before it answered: a session's end makes the agent kill
		// everything and exit too, which is all Shutdown asks for.
		return nil
	}
	if err != nil {
		return fmt.Errorf("shut down agent: %w", err)
	}
	return nil
}

// Start starts a process in the container. Errors for a missing or
// non-executable binary carry Docker's words and match ErrNotFound or
// ErrPermission.
func (c *Client) Start(ctx context.Context, spec ProcessSpec) (*Process, error) {
	p := &Process{ID: spec.ID, exited: make(chan struct{})}
	// The stdio streams go first, so the agent has them when the process
	// starts and no output can be lost.
	names := []string{streamStdout}
	if !spec.Tty {
		names = append(names, streamStderr)
	}
	if spec.Stdin {
		names = append(names, streamStdin)
	}
	fail := func(err error) (*Process, error) {
		p.closeStreams()
		return nil, fmt.Errorf("start process %s: %w", spec.ID, err)
	}
	for _, name := range names {
		st, err := c.open(ctx)
		if err != nil {
			return fail(err)
		}
		p.streams = append(p.streams, st)
		if err := writeFrame(st, request{Op: opStdio, ID: spec.ID, Stream: name}); err != nil {
			return fail(err)
		}
		switch name {
		case streamStdout:
			p.Stdout = &closingReader{conn: st}
		case streamStderr:
			p.Stderr = &closingReader{conn: st}
		case streamStdin:
			p.Stdin = st
		}
	}
	ctl, err := c.open(ctx)
	if err != nil {
		return fail(err)
	}
	p.ctl = ctl
	resp, err := roundTrip(ctx, ctl, request{Op: opStart, Process: &spec})
	if err != nil {
		return fail(err)
	}
	p.Pid = resp.Pid
	go p.awaitExit()
	return p, nil
}

// Process is a process started in the container. Read Stdout and Stderr to
// EOF (concurrently, if both are set) and call Wait.
type Process struct {
	ID     string
	Pid    int            // as the guest sees it
	Stdin  io.WriteCloser // nil unless requested; Close sends EOF
	Stdout io.Reader
	Stderr io.Reader // nil with a tty

	ctl     net.Conn
	streams []net.Conn

	exited chan struct{}
	status ExitStatus
	err    error
}

// Wait returns when the process has exited and the agent has sent all of its
// output, so a reader of Stdout and Stderr gets every byte before EOF.
func (p *Process) Wait() (ExitStatus, error) {
	<-p.exited
	return p.status, p.err
}

// Exited is closed when Wait would return.
func (p *Process) Exited() <-chan struct{} {
	return p.exited
}

// Close abandons the process's streams: output still to come is discarded
// (so the process is never blocked on it) and stdin is closed. The process
// keeps running; Wait still reports its end.
func (p *Process) Close() error {
	if p.Stdin != nil {
		p.Stdin.Close()
	}
	for _, r := range []io.Reader{p.Stdout, p.Stderr} {
		if r != nil {
			go io.Copy(io.Discard, r)
		}
	}
	return nil
}

func (p *Process) awaitExit() {
	defer close(p.exited)
	defer p.ctl.Close()
	var resp response
	if err := readFrame(p.ctl, &resp); err != nil {
		p.err = fmt.Errorf("wait for process %s: %w", p.ID, sessionError(err))
		return
	}
	if err := resp.err(); err != nil {
		p.err = fmt.Errorf("wait for process %s: %w", p.ID, err)
		return
	}
	if resp.Exit == nil {
		p.err = fmt.Errorf("wait for process %s: agent sent no exit status", p.ID)
		return
	}
	p.status = *resp.Exit
	// The process is gone: writes to its stdin must fail, not block.
	if p.Stdin != nil {
		p.Stdin.Close()
	}
}

func (p *Process) closeStreams() {
	for _, st := range p.streams {
		st.Close()
	}
	if p.ctl != nil {
		p.ctl.Close()
	}
}

// closingReader closes its stream at EOF, which completes the yamux close
// handshake and frees the stream in both peers.
type closingReader struct {
	conn net.Conn
	once sync.Once
}

func (r *closingReader) Read(b []byte) (int, error) {
	n, err := r.conn.Read(b)
	if err != nil {
		r.once.Do(func() { r.conn.Close() })
		if !errors.Is(err, io.EOF) {
			err = sessionError(err)
		}
	}
	return n, err
}

func (c *Client) open(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := c.sess.Open()
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", sessionError(err))
	}
	return st, nil
}

// call is one request and one response on a fresh stream.
func (c *Client) call(ctx context.Context, req request) (response, error) {
	st, err := c.open(ctx)
	if err != nil {
		return response{}, err
	}
	defer st.Close()
	return roundTrip(ctx, st, req)
}

// roundTrip writes req and reads the response on st, giving up when ctx
// ends. The deadline is lifted again so the stream can be used on.
func roundTrip(ctx context.Context, st net.Conn, req request) (response, error) {
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Now()) })
	var resp response
	err := writeFrame(st, req)
	if err == nil || errors.Is(err, yamux.ErrSessionShutdown) {
		// A write can report the session's end although its frame went
		// out and the answer came in before the end: read what is there.
		if rerr := readFrame(st, &resp); rerr == nil || err == nil {
			err = rerr
		}
	}
	stop()
	st.SetDeadline(time.Time{})
	if err != nil {
		// Say why the call ended rather than "i/o deadline reached".
		if cerr := ctx.Err(); cerr != nil {
			return response{}, cerr
		}
		if errors.Is(err, yamux.ErrTimeout) {
			return response{}, context.DeadlineExceeded
		}
		return response{}, sessionError(err)
	}
	return resp, resp.err()
}

// ErrSessionClosed means the session with the agent has ended: the host
// closed it, or the agent (and so its machine) is gone.
var ErrSessionClosed = errors.New("agent session closed")

func sessionError(err error) error {
	switch {
	case errors.Is(err, yamux.ErrSessionShutdown),
		errors.Is(err, yamux.ErrStreamClosed),
		errors.Is(err, yamux.ErrConnectionReset),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %w", ErrSessionClosed, err)
	}
	return err
}
