// Package ui is the daemon's live page (`arca daemon --ui 127.0.0.1:PORT`):
// one page, embedded in the binary, that shows the actor tree as it
// changes. The page gets the tree from GET /events, server-sent events
// fed by the introspection actor (messages.WatchActorTree); the daemon
// side is that handler and nothing else. Loopback only: the page has no
// authentication, so it is never served on another address, and requests
// naming another host (DNS rebinding) are refused.
package ui

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/arcavm/arca/internal/loopback"

	"github.com/arcavm/arca/messages"
)

//go:embed static
var static embed.FS

// Tree is where the page's tree comes from: actors.System.
type Tree interface {
	WatchTree(updates chan *messages.ActorNode) (*messages.ActorNode, error)
	UnwatchTree(updates chan *messages.ActorNode)
}

// Server serves the page and its event stream.
type Server struct {
	tree Tree
	log  *slog.Logger
	mux  *http.ServeMux
	// done ends every event stream: http.Server.Shutdown waits for
	// handlers, and a stream would never end by itself.
	done     chan struct{}
	doneOnce sync.Once
	// Heartbeat is how often an idle stream gets a comment line, so a
	// gone client is noticed; tests shorten it.
	Heartbeat time.Duration
}

// New returns the page's handler over tree.
func New(tree Tree, log *slog.Logger) *Server {
	s := &Server{tree: tree, log: log, mux: http.NewServeMux(), done: make(chan struct{}), Heartbeat: 15 * time.Second}
	files, _ := fs.Sub(static, "static")
	s.mux.Handle("GET /", http.FileServerFS(files))
	s.mux.HandleFunc("GET /events", s.events)
	return s
}

// ServeHTTP refuses requests for other hosts, then serves.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopback.Host(r.Host) {
		http.Error(w, "this page answers only for a loopback host (127.0.0.1, ::1, localhost)", http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	s.mux.ServeHTTP(w, r)
}

// Close ends the event streams.
func (s *Server) Close() { s.doneOnce.Do(func() { close(s.done) }) }

// events streams the tree: one "tree" event with the whole tree now and
// after every change (the introspection actor coalesces changes).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	updates := make(chan *messages.ActorNode, 1)
	tree, err := s.tree.WatchTree(updates)
	if err != nil {
		http.Error(w, "actor tree: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer s.tree.UnwatchTree(updates)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	// EventSource reconnects by itself after this long.
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil {
		return
	}
	beat := time.NewTicker(s.Heartbeat)
	defer beat.Stop()
	for {
		if tree != nil {
			if err := writeTree(w, tree); err != nil {
				return
			}
			tree = nil
		} else if _, err := fmt.Fprint(w, ": beat\n\n"); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case tree = <-updates:
		case <-beat.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

func writeTree(w http.ResponseWriter, tree *messages.ActorNode) error {
	b, err := json.Marshal(tree)
	if err != nil {
		return err
	}
	// JSON has no raw newlines, so the data is one line.
	_, err = fmt.Fprintf(w, "event: tree\ndata: %s\n\n", b)
	return err
}

// CheckAddr accepts host:port with a loopback host: an address in
// 127.0.0.0/8, ::1, or localhost (made 127.0.0.1).
func CheckAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--ui %q: want 127.0.0.1:PORT: %v", addr, err)
	}
	if port == "" {
		return "", fmt.Errorf("--ui %q: no port", addr)
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("--ui %q: only a loopback address is allowed (127.0.0.1, ::1 or localhost): the page has no authentication", addr)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// Listen checks addr (CheckAddr) and listens on it; Serve then serves
// the page there. Apart, so that a port in use fails the daemon before
// it starts anything.
func Listen(addr string) (*Page, error) {
	addr, err := CheckAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--ui: %w", err)
	}
	return &Page{ln: ln}, nil
}

// Page is the live page's listener and, once served, its server.
type Page struct {
	ln  net.Listener
	srv *http.Server
	ui  *Server
}

// Addr is the address listened on.
func (p *Page) Addr() string { return p.ln.Addr().String() }

// Serve serves the page over tree until Shutdown.
func (p *Page) Serve(tree Tree, log *slog.Logger) {
	p.ui = New(tree, log)
	p.srv = &http.Server{Handler: p.ui, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("live page", "err", err)
		}
	}()
}

// Shutdown ends the streams and stops serving.
func (p *Page) Shutdown() {
	if p.srv == nil {
		p.ln.Close()
		return
	}
	p.ui.Close()
	_ = p.srv.Close()
}
