package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/arcavm/arca/messages"
)

// findNode returns the node at path in tree, or nil.
func findNode(n *messages.ActorNode, path string) *messages.ActorNode {
	if n == nil {
		return nil
	}
	if n.Path == path {
		return n
	}
	for _, c := range n.Children {
		if f := findNode(c, path); f != nil {
			return f
		}
	}
	return nil
}

// TestWatchActorTree: a watcher gets the tree at once, then a new one after
// a change (a rename shows in the container's detail, a removal takes its
// node away), without asking again; after Unwatch it gets nothing more.
func TestWatchActorTree(t *testing.T) {
	id := strings.Repeat("a", 64)
	sys, _ := startTestTree(t, testRecord(id, "watched"))
	inspect(t, sys, "watched") // restored, so reported
	updates := make(chan *messages.ActorNode, 1)
	res, err := sys.Root.RequestFuture(sys.Registry, &messages.WatchActorTree{Updates: updates}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	path := "arca/containers/" + id
	n := findNode(res.(*messages.ActorTreeReply).Root, path)
	if n == nil || n.Kind != "container" || n.Detail == nil || n.Detail.Name != "watched" || n.Detail.Image != "img" || n.Detail.ExitCode != 4 {
		t.Fatalf("container node in the first tree: %+v", n)
	}
	// until waits for a pushed tree that satisfies ok.
	until := func(what string, ok func(*messages.ActorNode) bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case tree := <-updates:
				if ok(tree) {
					return
				}
			case <-deadline:
				t.Fatalf("no tree pushed with %s within 5 s", what)
			}
		}
	}
	if _, err := sys.Root.RequestFuture(sys.Containers, &messages.RenameContainer{Ref: messages.Ref{ID: "watched"}, Name: "renamed"}, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	until("the new name", func(tree *messages.ActorNode) bool {
		n := findNode(tree, path)
		return n != nil && n.Detail != nil && n.Detail.Name == "renamed"
	})
	if _, err := sys.Root.RequestFuture(sys.Containers, &messages.RemoveContainer{Ref: messages.Ref{ID: "renamed"}}, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	until("the container gone", func(tree *messages.ActorNode) bool { return findNode(tree, path) == nil })

	sys.Root.Send(sys.Registry, &messages.UnwatchActorTree{Updates: updates})
	// A request after it in the same mailbox: the unwatch is done.
	if _, err := sys.Root.RequestFuture(sys.Registry, &messages.ActorTree{}, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-updates: // one push may have been on its way
	default:
	}
	sys.Root.Send(sys.Registry, &nodeReport{path: "arca/test-node", kind: "test", state: "new"})
	select {
	case tree := <-updates:
		if findNode(tree, "arca/test-node") != nil {
			t.Fatal("a tree reached a watcher after Unwatch")
		}
	case <-time.After(3 * pushInterval):
	}
}

// TestOfferNewest: a watcher that has not taken the last tree gets the
// newest instead, and the sender never blocks.
func TestOfferNewest(t *testing.T) {
	w := make(chan *messages.ActorNode, 1)
	a, b := &messages.ActorNode{Path: "a"}, &messages.ActorNode{Path: "b"}
	offerNewest(w, a)
	offerNewest(w, b)
	if got := <-w; got != b {
		t.Fatalf("got %q, want the newest", got.Path)
	}
	unbuffered := make(chan *messages.ActorNode)
	done := make(chan struct{})
	go func() { offerNewest(unbuffered, a); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("offerNewest blocked on a watcher with no room")
	}
}

// TestFollowPullProgress: per layer, the newest status and the last
// counts seen; lines without a layer are not layers.
func TestFollowPullProgress(t *testing.T) {
	var l lastState
	for _, m := range []jsonstream.Message{
		{ID: "latest", Status: "Pulling from library/busybox"},
		{ID: "l1", Status: "Pulling fs layer", Progress: &jsonstream.Progress{}},
		{ID: "l2", Status: "Already exists", Progress: &jsonstream.Progress{}},
		{ID: "l1", Status: "Downloading", Progress: &jsonstream.Progress{Current: 10, Total: 100}},
		{ID: "l1", Status: "Downloading", Progress: &jsonstream.Progress{Current: 60, Total: 100}},
		{ID: "l1", Status: "Download complete", Progress: &jsonstream.Progress{}},
		{Status: "Digest: sha256:abc"},
	} {
		l.follow(&pullProgress{msg: m})
	}
	l.follow("not progress")
	want := []messages.LayerProgress{
		{ID: "l1", Status: "Download complete", Current: 60, Total: 100},
		{ID: "l2", Status: "Already exists"},
	}
	if len(l.layers) != len(want) {
		t.Fatalf("layers %+v", l.layers)
	}
	for i := range want {
		if l.layers[i] != want[i] {
			t.Fatalf("layer %d: %+v, want %+v", i, l.layers[i], want[i])
		}
	}
	d := detailOf(&imagePull{ref: "busybox:latest"}, &l)
	l.layers[0].Current = 0
	if d.Ref != "busybox:latest" || len(d.Layers) != 2 || d.Layers[0].Current != 60 {
		t.Fatalf("detail %+v (must not share the followed slice)", d)
	}
}

// TestNodeDetailEqual covers what the middleware compares to decide
// whether to report.
func TestNodeDetailEqual(t *testing.T) {
	a := &messages.NodeDetail{Name: "n", Members: []messages.NetworkMember{{ID: "1", Name: "x"}}}
	b := &messages.NodeDetail{Name: "n", Members: []messages.NetworkMember{{ID: "1", Name: "x"}}}
	if !a.Equal(b) || !(*messages.NodeDetail)(nil).Equal(nil) {
		t.Fatal("equal details differ")
	}
	b.Members[0].IP = "10.0.0.2"
	if a.Equal(b) || a.Equal(nil) || (*messages.NodeDetail)(nil).Equal(a) {
		t.Fatal("different details are equal")
	}
	c := &messages.NodeDetail{Layers: []messages.LayerProgress{{ID: "l", Current: 1}}}
	e := &messages.NodeDetail{Layers: []messages.LayerProgress{{ID: "l", Current: 2}}}
	if c.Equal(e) {
		t.Fatal("different progress is equal")
	}
}
