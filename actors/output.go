package actors

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence/containerlog"
)

// outputHub is a container's output fan-out: each frame the pump reads is
// appended to the log and handed to every attached subscriber. It belongs
// to one container actor; the actor registers subscribers, the pump writes,
// on its own goroutine: a flood of output costs that goroutine and the
// disk, never the actor's mailbox. Log append and subscriber snapshot happen
// under one lock, so a follower that reads the log snapshot taken at
// subscription sees every frame once.
type outputHub struct {
	mu   sync.Mutex
	log  *containerlog.Writer // nil when the log could not be opened
	subs map[*subscription]struct{}
	// flushArmed: a timer will write out what the log buffers, so tools
	// reading the file directly lag by at most flushDelay.
	flushArmed bool
}

// flushDelay bounds how long written output may wait in the log's buffer.
const flushDelay = 100 * time.Millisecond

func newOutputHub(log *containerlog.Writer) *outputHub {
	return &outputHub{log: log, subs: map[*subscription]struct{}{}}
}

// subscribe registers a subscriber for the frames from now on.
func (h *outputHub) subscribe() *subscription {
	s := newSubscription()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[s] = struct{}{}
	return s
}

// subscribeAfterLog registers a subscriber and returns it with a snapshot
// of the log holding everything it will not receive live (nil without a
// log).
func (h *outputHub) subscribeAfterLog() (*subscription, *containerlog.Snapshot, error) {
	s := newSubscription()
	h.mu.Lock()
	defer h.mu.Unlock()
	snap, err := h.snapshotLocked()
	if err != nil {
		return nil, nil, err
	}
	h.subs[s] = struct{}{}
	return s, snap, nil
}

func newSubscription() *subscription {
	return &subscription{ch: make(chan messages.Frame, 64), gone: make(chan struct{})}
}

// snapshot opens the log as it is now (nil without a log). Opening is all
// it does under the lock; reading is the caller's, on its own goroutine.
func (h *outputHub) snapshot() (*containerlog.Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snapshotLocked()
}

func (h *outputHub) snapshotLocked() (*containerlog.Snapshot, error) {
	if h.log == nil {
		return nil, nil
	}
	return h.log.Snapshot()
}

// write is called by the pump only, with a scratch buffer of its own for
// encoding, which happens outside the lock. It blocks on slow subscribers
// (the process then blocks on its output, as with dockerd), never on gone
// ones.
func (h *outputHub) write(stream int, data []byte, scratch *[]byte) {
	f := messages.Frame{Stream: stream, Data: data, Time: time.Now()}
	*scratch = containerlog.AppendEntries((*scratch)[:0], stream, data, f.Time)
	h.mu.Lock()
	if h.log != nil {
		_ = h.log.WriteEncoded(*scratch, f.Time) // a full disk must not stop the container
		if !h.flushArmed && h.log.Buffered() {
			h.flushArmed = true
			time.AfterFunc(flushDelay, h.flush)
		}
	}
	subs := make([]*subscription, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		select {
		case s.ch <- f:
		case <-s.gone:
			h.drop(s)
		}
	}
}

func (h *outputHub) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushArmed = false
	if h.log != nil {
		_ = h.log.Flush()
	}
}

func (h *outputHub) drop(s *subscription) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// endRun ends every current subscription: the run they followed is over.
// Only called when no pump is writing.
func (h *outputHub) endRun() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		close(s.ch)
		delete(h.subs, s)
	}
	if h.log != nil {
		_ = h.log.Flush()
	}
}

func (h *outputHub) close() {
	h.endRun()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.log != nil {
		h.log.Close()
		h.log = nil
	}
}

// subscription implements messages.OutputSubscription.
type subscription struct {
	ch       chan messages.Frame
	gone     chan struct{}
	goneOnce sync.Once
}

func (s *subscription) Next() (messages.Frame, bool) {
	select {
	case f, ok := <-s.ch:
		return f, ok
	case <-s.gone:
		return messages.Frame{}, false
	}
}

func (s *subscription) Close() { s.goneOnce.Do(func() { close(s.gone) }) }

// pumpOutput copies a process's stdout and stderr into the hub until both
// end. Each frame gets its own buffer: subscribers keep them.
func pumpOutput(h *outputHub, stdout, stderr io.Reader) {
	var wg sync.WaitGroup
	copyStream := func(stream int, r io.Reader) {
		defer wg.Done()
		var scratch []byte
		for {
			buf := make([]byte, 32<<10)
			n, err := r.Read(buf)
			if n > 0 {
				h.write(stream, buf[:n], &scratch)
			}
			if err != nil {
				return
			}
		}
	}
	if stdout != nil {
		wg.Add(1)
		go copyStream(1, stdout)
	}
	if stderr != nil {
		wg.Add(1)
		go copyStream(2, stderr)
	}
	wg.Wait()
}

// stdinGate is the stdin of a container's current or next run. Attach
// clients write to it before the process exists (docker run -i attaches
// before it starts); writes wait until the run's stdin is connected.
type stdinGate struct {
	ready  chan struct{} // closed when w is set or the gate closed
	once   sync.Once
	mu     sync.Mutex
	w      io.WriteCloser
	closed bool
}

var errStdinClosed = errors.New("container stdin is closed")

func newStdinGate() *stdinGate { return &stdinGate{ready: make(chan struct{})} }

// connect attaches the run's stdin; nil w means the run has none.
func (g *stdinGate) connect(w io.WriteCloser) {
	g.mu.Lock()
	g.w = w
	g.mu.Unlock()
	g.once.Do(func() { close(g.ready) })
}

// shut ends the gate for good (the run is over).
func (g *stdinGate) shut() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.once.Do(func() { close(g.ready) })
}

func (g *stdinGate) Write(p []byte) (int, error) {
	<-g.ready
	g.mu.Lock()
	w, closed := g.w, g.closed
	g.mu.Unlock()
	if closed || w == nil {
		return 0, errStdinClosed
	}
	return w.Write(p)
}

// Close closes the run's stdin (StdinOnce: the client's EOF is the
// process's EOF).
func (g *stdinGate) Close() error {
	<-g.ready
	g.mu.Lock()
	w, closed := g.w, g.closed
	g.mu.Unlock()
	if closed || w == nil {
		return nil
	}
	return w.Close()
}
