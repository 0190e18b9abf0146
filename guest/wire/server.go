package wire

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
)

// Handler is what the agent does for each call. Serve calls it
// concurrently.
type Handler interface {
	Setup(ctx context.Context, req SetupRequest) error
	// Start starts the process and returns at once. The handler owns
	// stdio from then on (also on error): it closes Stdout and Stderr
	// after the last byte of output, then sends the status on exited.
	Start(ctx context.Context, spec ProcessSpec, stdio Stdio) (pid int, exited <-chan ExitStatus, err error)
	Signal(ctx context.Context, procID string, sig syscall.Signal) error
	Resize(ctx context.Context, procID string, size WindowSize) error
	// Shutdown kills every process. Serve answers the host once it
	// returns, then ends the session and returns nil.
	Shutdown(ctx context.Context) error

	// Top lists the container's processes as `ps` would with psArgs.
	Top(ctx context.Context, psArgs string) (TopResult, error)
	// Stats takes one sample of the container's resource use.
	Stats(ctx context.Context) (Stats, error)
	// Usage measures the container's writable layer.
	Usage(ctx context.Context) (DiskUsage, error)
	// Pause freezes every process of the container (not the agent) and
	// returns once they are frozen; Resume thaws them.
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	// ConfigureNetwork makes the machine's network what cfg says:
	// underlay link, WireGuard interfaces and the DNS table at 127.0.0.11.
	// Each call carries the whole state; repeating one changes nothing.
	ConfigureNetwork(ctx context.Context, cfg NetworkConfig) error
	// Dial connects to port ("tcp" or "udp") inside the machine, for a
	// published port. Serve owns the conn from then on.
	Dial(ctx context.Context, proto string, port int) (net.Conn, error)
	// ArchiveStat describes path in the container.
	ArchiveStat(ctx context.Context, path string) (PathStat, error)
	// ArchiveGet checks path and returns its stat and a function that
	// writes it as a tar stream; Serve calls write at most once.
	ArchiveGet(ctx context.Context, path string) (stat PathStat, write func(io.Writer) error, err error)
	// ArchivePut checks that dir can take an archive and returns a function
	// that extracts one into it; Serve calls extract at most once.
	ArchivePut(ctx context.Context, dir string, opts ArchivePutOptions) (extract func(io.Reader) error, err error)
	// Changes reports, through emit, each path of the container's rootfs
	// that differs from its image, in any order.
	Changes(ctx context.Context, emit func(Change) error) error
	// Export checks that what can be exported and returns a function
	// that writes it as a tar stream; Serve calls write at most once.
	Export(ctx context.Context, what ExportKind) (write func(io.Writer) error, err error)
}

// Stdio is what the host attached to a process. Stdin is nil unless the
// spec asked for it; Stderr is nil with a tty. Closing Stdin also unblocks
// a pending Read.
type Stdio struct {
	Stdin  io.ReadCloser
	Stdout io.WriteCloser
	Stderr io.WriteCloser
}

// Close closes every stream that is set.
func (s Stdio) Close() {
	for _, c := range []io.Closer{s.Stdin, s.Stdout, s.Stderr} {
		if c != nil {
			c.Close()
		}
	}
}

// How long Shutdown waits for killed processes to report their exits.
const shutdownGrace = 5 * time.Second

// How long Start waits for the stdio streams the host opened just before it.
const stdioWait = 10 * time.Second

// Serve runs the agent's end of the session over conn until the host asks
// for Shutdown (then it returns nil) or the session ends (then it returns
// why). Either way conn is closed on return.
func Serve(parent context.Context, conn io.ReadWriteCloser, h Handler) error {
	sess, err := yamux.Server(conn, sessionConfig())
	if err != nil {
		conn.Close()
		return fmt.Errorf("agent session: %w", err)
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	s := &server{h: h, sess: sess, ctx: ctx, slots: map[string]chan net.Conn{}, shutdown: make(chan struct{})}
	go func() {
		<-ctx.Done()
		sess.Close()
	}()
	for {
		st, err := sess.Accept()
		if err != nil {
			cancel()
			s.wg.Wait()
			select {
			case <-s.shutdown:
				return nil
			default:
			}
			if perr := parent.Err(); perr != nil {
				return perr
			}
			return fmt.Errorf("agent session ended: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(st)
		}()
	}
}

type server struct {
	h    Handler
	sess *yamux.Session
	ctx  context.Context
	wg   sync.WaitGroup

	starts atomic.Int32 // start calls still to report an exit

	mu    sync.Mutex
	slots map[string]chan net.Conn // stdio streams waiting for their Start

	shutdownOnce sync.Once
	shutdown     chan struct{}
}

func (s *server) handle(st net.Conn) {
	var req request
	if err := readFrame(st, &req); err != nil {
		st.Close()
		return
	}
	switch req.Op {
	case opStdio:
		if req.Stream != streamStdin && req.Stream != streamStdout && req.Stream != streamStderr {
			st.Close()
			return
		}
		// Kept open: Start takes it over.
		select {
		case s.slot(req.ID, req.Stream) <- st:
		default:
			st.Close() // a duplicate
		}
		return
	case opStart:
		s.starts.Add(1)
		defer s.starts.Add(-1)
		s.start(st, req)
		return
	case opArchiveGet:
		s.archiveGet(st, req)
		return
	case opArchivePut:
		s.archivePut(st, req)
		return
	case opChanges:
		s.changes(st)
		return
	case opExport:
		s.export(st, req)
		return
	case opDial:
		s.dial(st, req)
		return
	}
	defer st.Close()
	var resp response
	var err error
	switch req.Op {
	case opPing:
		resp.Version = ProtocolVersion
	case opSetup:
		if req.Setup == nil {
			err = Errorf(KindInvalid, "setup: no request")
			break
		}
		err = s.h.Setup(s.ctx, *req.Setup)
	case opSignal:
		err = s.h.Signal(s.ctx, req.ID, syscall.Signal(req.Signal))
	case opResize:
		if req.Size == nil {
			err = Errorf(KindInvalid, "resize: no size")
			break
		}
		err = s.h.Resize(s.ctx, req.ID, *req.Size)
	case opTop:
		var top TopResult
		top, err = s.h.Top(s.ctx, req.PsArgs)
		resp.Top = &top
	case opStats:
		var stats Stats
		stats, err = s.h.Stats(s.ctx)
		resp.Stats = &stats
	case opUsage:
		var u DiskUsage
		u, err = s.h.Usage(s.ctx)
		resp.Usage = &u
	case opPause:
		err = s.h.Pause(s.ctx)
	case opResume:
		err = s.h.Resume(s.ctx)
	case opNetwork:
		if req.Network == nil {
			err = Errorf(KindInvalid, "network: no configuration")
			break
		}
		err = s.h.ConfigureNetwork(s.ctx, *req.Network)
	case opArchiveStat:
		var stat PathStat
		stat, err = s.h.ArchiveStat(s.ctx, req.Path)
		resp.Stat = &stat
	case opShutdown:
		err = s.h.Shutdown(s.ctx)
		if err == nil {
			// Let the killed processes' statuses reach the host first;
			// a process whose output the host does not read cannot.
			deadline := time.Now().Add(shutdownGrace)
			for s.starts.Load() > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			writeFrame(st, resp)
			st.Close()
			s.shutdownOnce.Do(func() { close(s.shutdown) })
			s.sess.Close()
			return
		}
	default:
		err = Errorf(KindInvalid, "unknown operation %q", req.Op)
	}
	if err != nil {
		resp = errorResponse(err)
	}
	writeFrame(st, resp)
}

// archiveGet answers with the path's stat, then sends the tar in chunks
// and a final response, so a failure halfway reaches the host as an error
// rather than as an archive that merely ends early.
func (s *server) archiveGet(st net.Conn, req request) {
	defer st.Close()
	stat, write, err := s.h.ArchiveGet(s.ctx, req.Path)
	if err != nil {
		writeFrame(st, errorResponse(err))
		return
	}
	if err := writeFrame(st, response{Stat: &stat}); err != nil {
		return
	}
	sendChunked(st, write)
}

// changes sends the list as JSON lines in chunks: it can be far larger
// than one frame.
func (s *server) changes(st net.Conn) {
	defer st.Close()
	if err := writeFrame(st, response{}); err != nil {
		return
	}
	sendChunked(st, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		return s.h.Changes(s.ctx, func(c Change) error { return enc.Encode(c) })
	})
}

// export answers, then sends the tar in chunks, as archiveGet does.
func (s *server) export(st net.Conn, req request) {
	defer st.Close()
	write, err := s.h.Export(s.ctx, req.Export)
	if err != nil {
		writeFrame(st, errorResponse(err))
		return
	}
	if err := writeFrame(st, response{}); err != nil {
		return
	}
	sendChunked(st, write)
}

// sendChunked sends what write writes as chunks, then the end mark and a
// response carrying write's error, if any.
func sendChunked(st net.Conn, write func(io.Writer) error) {
	cw := &chunkWriter{w: st}
	bw := bufio.NewWriterSize(cw, chunkSize)
	err := write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cw.err != nil {
		return // the host is gone
	}
	var resp response
	if err != nil {
		resp = errorResponse(err)
	}
	if _, err := st.Write(make([]byte, 4)); err != nil { // the end mark
		return
	}
	writeFrame(st, resp)
}

// archivePut says whether the destination is fit before the host sends a
// byte, extracts, answers, and only then drains what the host still sends
// (after an error), so the host learns of a failure early.
func (s *server) archivePut(st net.Conn, req request) {
	defer st.Close()
	var opts ArchivePutOptions
	if req.Put != nil {
		opts = *req.Put
	}
	extract, err := s.h.ArchivePut(s.ctx, req.Path, opts)
	if err != nil {
		writeFrame(st, errorResponse(err))
		return
	}
	if err := writeFrame(st, response{}); err != nil {
		return
	}
	var resp response
	if err := extract(st); err != nil {
		resp = errorResponse(err)
	}
	writeFrame(st, resp)
	io.Copy(io.Discard, st)
}

func (s *server) start(ctl net.Conn, req request) {
	defer ctl.Close()
	if req.Process == nil {
		writeFrame(ctl, errorResponse(Errorf(KindInvalid, "start: no process")))
		return
	}
	spec := *req.Process
	stdio, err := s.takeStdio(spec)
	if err != nil {
		stdio.Close()
		writeFrame(ctl, errorResponse(err))
		return
	}
	pid, exited, err := s.h.Start(s.ctx, spec, stdio)
	if err != nil {
		writeFrame(ctl, errorResponse(err))
		return
	}
	if err := writeFrame(ctl, response{Pid: pid}); err != nil {
		// The host is gone; the process runs on until the agent, seeing
		// the session end, kills it.
		return
	}
	select {
	case status := <-exited:
		writeFrame(ctl, response{Exit: &status})
	case <-s.ctx.Done():
	}
}

// takeStdio collects the streams the host opened for spec before sending
// Start; they may still be on their way through other goroutines.
func (s *server) takeStdio(spec ProcessSpec) (Stdio, error) {
	var stdio Stdio
	timeout := time.NewTimer(stdioWait)
	defer timeout.Stop()
	take := func(name string) (net.Conn, error) {
		select {
		case st := <-s.slot(spec.ID, name):
			s.dropSlot(spec.ID, name)
			return st, nil
		case <-timeout.C:
			s.dropSlot(spec.ID, name)
			return nil, fmt.Errorf("start %s: %s stream never came", spec.ID, name)
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		}
	}
	st, err := take(streamStdout)
	if err != nil {
		return stdio, err
	}
	stdio.Stdout = st
	if !spec.Tty {
		if st, err = take(streamStderr); err != nil {
			return stdio, err
		}
		stdio.Stderr = st
	}
	if spec.Stdin {
		if st, err = take(streamStdin); err != nil {
			return stdio, err
		}
		stdio.Stdin = stdinStream{st}
	}
	return stdio, nil
}

func (s *server) slot(id, name string) chan net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := id + "\x00" + name
	ch, ok := s.slots[key]
	if !ok {
		ch = make(chan net.Conn, 1)
		s.slots[key] = ch
	}
	return ch
}

func (s *server) dropSlot(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.slots, id+"\x00"+name)
}

// stdinStream is a stream whose Close also ends a Read in progress; a
// yamux Close alone only half-closes and leaves the reader blocked.
type stdinStream struct{ net.Conn }

func (s stdinStream) Close() error {
	s.SetReadDeadline(time.Now())
	return s.Conn.Close()
}

// Read reports the deadline set by Close as the end of input.
func (s stdinStream) Read(b []byte) (int, error) {
	n, err := s.Conn.Read(b)
	if errors.Is(err, yamux.ErrTimeout) {
		err = io.EOF
	}
	return n, err
}
