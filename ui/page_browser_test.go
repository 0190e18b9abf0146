package ui

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/arcavm/arca/internal/prereq"
	"github.com/arcavm/arca/messages"
)

// TestPageRendersTree drives the page in chromium against a made-up tree:
// what a pull in flight, a container restarted by its policy and by its
// actor, and a network look like, and that a pushed tree replaces the
// shown one. (cmd/arca's TestLivePageInBrowser does it against a daemon.)
func TestPageRendersTree(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		prereq.Missing(t, "no chromium on PATH; `make deps` installs Debian's chromium")
	}
	tree := newFakeTree()
	s := New(tree, quiet())
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer s.Close()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("no-proxy-server", true))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	// wait for a visible element; present for one that may be hidden
	// or empty.
	query := func(sel chromedp.CSS, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := chromedp.Do(wctx, a); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s not on the page: %v\n%s", sel, err, html)
		}
	}
	wait := func(sel chromedp.CSS) { t.Helper(); query(sel, chromedp.WaitVisible(sel)) }
	present := func(sel chromedp.CSS) { t.Helper(); query(sel, chromedp.WaitReady(sel)) }
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	wait("#conn.up")
	for tree.count() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	tree.push(&messages.ActorNode{Path: "arca", Kind: "root", State: "running", Children: []*messages.ActorNode{
		{Path: "arca/containers", Kind: "supervisor", State: "1 containers", Children: []*messages.ActorNode{
			{Path: "arca/containers/c1", Kind: "container", State: "running", Restarts: 1,
				Detail:    &messages.NodeDetail{Name: "web", Image: "busybox", RestartCount: 3},
				LastStart: &messages.StartTimings{BootMs: 10, AgentMs: 5, SetupMs: 5, NetworkMs: 10, ProcessMs: 20, TotalMs: 50}},
		}},
		{Path: "arca/networks/network-n1", Kind: "network", State: "front",
			Detail: &messages.NodeDetail{Name: "front", Subnet: "172.18.0.0/16", Members: []messages.NetworkMember{{ID: "c1", Name: "web", IP: "172.18.0.2"}}}},
		{Path: "arca/images/pull-1", Kind: "image-pull", State: "pulling busybox:latest",
			Detail: &messages.NodeDetail{Ref: "busybox:latest", Layers: []messages.LayerProgress{
				{ID: "aaaaaaaaaaaa", Status: "Downloading", Current: 500, Total: 1000},
				{ID: "bbbbbbbbbbbb", Status: "Pull complete", Current: 0, Total: 2000},
			}}},
	}})
	wait(`tr.container[data-name="web"][data-state="running"]`)
	if got := text(`tr.container[data-name="web"] .restarts`); got != "3 (actor 1)" {
		t.Errorf("restarts shown as %q", got)
	}
	if got := text(`tr.container[data-name="web"] .total`); got != "50 ms" {
		t.Errorf("start total shown as %q", got)
	}
	wait(`tr.container[data-name="web"] .bar .step-process`)
	wait(`.network[data-name="front"] .chip[data-id="c1"]`)
	wait(`.pull[data-ref="busybox:latest"] .layer:nth-of-type(2)`)
	// 500 of the first layer, all 2000 of the finished one.
	if got := text(`.pull[data-ref="busybox:latest"] > div:first-child`); got != "busybox:latest pulling 2.5 kB of 3.0 kB" {
		t.Errorf("pull shown as %q", got)
	}
	present(`#no-pulls[hidden]`)
	// The next tree replaces this one: the pull is done, the container gone.
	tree.push(&messages.ActorNode{Path: "arca", Kind: "root", State: "running"})
	present(`#container-rows:empty`)
	present(`#pull-list:empty`)
	wait(`#no-containers:not([hidden])`)
}
