package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcavm/arca/messages"
)

func TestCheckAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "127.0.0.1:8080",
		"localhost:9":    "127.0.0.1:9",
		"LOCALHOST:9":    "127.0.0.1:9",
		"[::1]:80":       "[::1]:80",
		"127.1.2.3:0":    "127.1.2.3:0",
	} {
		got, err := CheckAddr(addr)
		if err != nil || got != want {
			t.Errorf("CheckAddr(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "[::]:80", "10.0.0.1:80", "192.168.1.2:80", "example.com:80", "127.0.0.1", "127.0.0.1:", ""} {
		if got, err := CheckAddr(addr); err == nil {
			t.Errorf("CheckAddr(%q) = %q, want it refused", addr, got)
		}
	}
}

// fakeTree pushes what the test puts on push to every watcher.
type fakeTree struct {
	mu       sync.Mutex
	watchers map[chan *messages.ActorNode]bool
	unwatch  chan struct{}
}

func newFakeTree() *fakeTree {
	return &fakeTree{watchers: map[chan *messages.ActorNode]bool{}, unwatch: make(chan struct{}, 10)}
}

func (f *fakeTree) WatchTree(u chan *messages.ActorNode) (*messages.ActorNode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watchers[u] = true
	return &messages.ActorNode{Path: "arca", Kind: "root", State: "running"}, nil
}

func (f *fakeTree) UnwatchTree(u chan *messages.ActorNode) {
	f.mu.Lock()
	delete(f.watchers, u)
	f.mu.Unlock()
	f.unwatch <- struct{}{}
}

func (f *fakeTree) push(n *messages.ActorNode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.watchers {
		w <- n
	}
}

func (f *fakeTree) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestPage: the embedded page and its script are served with a strict
// content policy; another Host is refused.
func TestPage(t *testing.T) {
	srv := httptest.NewServer(New(newFakeTree(), quiet()))
	defer srv.Close()
	for path, want := range map[string]string{"/": "<title>Arca</title>", "/app.js": "new EventSource('events')", "/style.css": ".bar"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %s, body without %q", path, resp.Status, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Fatalf("GET %s: CSP %q", path, csp)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Host = "evil.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another Host: %s", resp.Status)
	}
	// No third-party source: the page loads nothing from elsewhere.
	for _, f := range []string{"static/index.html", "static/app.js", "static/style.css"} {
		b, err := static.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
			t.Errorf("%s names an outside URL", f)
		}
		// The tree comes pushed: no timers, no requests of the page's own.
		for _, poll := range []string{"setInterval", "setTimeout", "fetch(", "XMLHttpRequest"} {
			if strings.Contains(string(b), poll) {
				t.Errorf("%s uses %s: the page must not poll", f, poll)
			}
		}
	}
}

// TestEvents: the tree now, then each pushed tree, as "tree" events; a
// client going away unwatches; Close ends streams.
func TestEvents(t *testing.T) {
	tree := newFakeTree()
	s := New(tree, quiet())
	s.Heartbeat = 50 * time.Millisecond
	srv := httptest.NewServer(s)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := make(chan *messages.ActorNode)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var n messages.ActorNode
				if err := json.Unmarshal([]byte(data), &n); err != nil {
					t.Errorf("event data %q: %v", data, err)
				}
				events <- &n
			}
		}
		close(events)
	}()
	next := func() *messages.ActorNode {
		t.Helper()
		select {
		case n := <-events:
			return n
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5 s")
		}
		return nil
	}
	if n := next(); n.Path != "arca" {
		t.Fatalf("first event %+v", n)
	}
	tree.push(&messages.ActorNode{Path: "arca", Children: []*messages.ActorNode{{Path: "arca/containers", Kind: "supervisor"}}})
	if n := next(); len(n.Children) != 1 || n.Children[0].Path != "arca/containers" {
		t.Fatalf("pushed event %+v", n)
	}
	time.Sleep(3 * s.Heartbeat) // heartbeats are comments, not events
	cancel()
	resp.Body.Close()
	select {
	case <-tree.unwatch:
	case <-time.After(5 * time.Second):
		t.Fatal("no unwatch after the client went away")
	}

	// Close ends a stream that is still open.
	resp, err = http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for tree.count() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	s.Close()
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Close")
	}
}
