package main

// The live page (arca daemon --ui) in a real browser: Debian's chromium,
// headless, driven by chromedp. A container started with the docker CLI
// appears on the page, and its state changes there when it stops, each
// within a bounded time, with nothing but the page's event stream to tell
// it. A screenshot of the page goes to docs/ui.png (shown in the README).

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/arcavm/arca/internal/prereq"
	"github.com/arcavm/arca/internal/testenv"
)

// uiBound is how long a change may take to show on the page: the
// introspection actor pushes within a tenth of a second; the rest is a
// race-enabled daemon and a browser on a busy machine.
const uiBound = 20 * time.Second

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	prereq.Missing(t, "no chromium on PATH; `make deps` installs Debian's chromium")
	return ""
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestLivePageInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	d := testenv.StartDaemon(t, testenv.Options{Args: []string{"--ui", addr}})
	img := testenv.SharedBusybox(t).Ref
	name := testenv.Name(t)
	net1 := name + "-net"
	d.Docker(t, "network", "create", net1).Must(t)

	// The browser lives as long as ctx; every wait below has its own bound.
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // root, in a container
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-proxy-server", true),
	)...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	waitFor := func(what string, sel chromedp.CSS) time.Duration {
		t.Helper()
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, uiBound)
		defer cancel()
		if err := chromedp.Do(wctx, chromedp.WaitVisible(sel)); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: not on the page within %s (%v); the page:\n%s", what, uiBound, err, html)
		}
		return time.Since(start)
	}
	waitFor("the event stream", "#conn.up")

	// Pulled with the page open: the pull's actor comes and goes.
	d.Docker(t, "pull", "-q", img).Must(t)

	run := func(n string, args ...string) string {
		t.Helper()
		res := d.Docker(t, append([]string{"run", "-d", "--name", n, "--network", net1}, args...)...).Must(t)
		return strings.TrimSpace(res.Stdout)
	}
	id := run(name, img, "sleep", "300")
	took := waitFor("the container running", chromedp.CSS(fmt.Sprintf(`tr.container[data-id=%q][data-name=%q][data-state="running"]`, id, name)))
	t.Logf("the new container showed as running %s after docker run returned", took)
	// Its last start, step by step, and its network with it as a member.
	waitFor("the start's steps", chromedp.CSS(fmt.Sprintf(`tr.container[data-id=%q] .bar .step-boot`, id)))
	run(name+"-peer", img, "sleep", "300")
	waitFor("the network's two members", chromedp.CSS(fmt.Sprintf(`.network[data-name=%q] .chip:nth-child(2)`, net1)))
	d.Docker(t, "run", "--name", name+"-done", img, "true").Must(t)
	waitFor("an exited container", chromedp.CSS(fmt.Sprintf(`tr.container[data-name=%q][data-state="exited"]`, name+"-done")))

	d.Docker(t, "stop", "-t", "1", name).Must(t)
	took = waitFor("the stopped container's new state", chromedp.CSS(fmt.Sprintf(`tr.container[data-id=%q][data-state="exited"]`, id)))
	t.Logf("the stop showed %s after docker stop returned", took)
	waitFor("the network down to one member", chromedp.CSS(fmt.Sprintf(`.network[data-name=%q]:not(:has(.chip:nth-child(2)))`, net1)))

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := filepath.Join(testenv.ModuleRoot(t), "docs", "ui.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatalf("save the screenshot: %v", err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))

	for _, n := range []string{name, name + "-peer", name + "-done"} {
		d.Docker(t, "rm", "-f", n).Must(t)
	}
	waitFor("the containers gone", chromedp.CSS(fmt.Sprintf(`#container-rows:not(:has([data-name^=%q]))`, name)))
	d.Docker(t, "network", "rm", net1).Must(t)
}

// TestLivePageRefusesOtherAddresses: --ui on anything but loopback stops
// the daemon before it starts.
func TestLivePageRefusesOtherAddresses(t *testing.T) {
	bins := testenv.Build(t)
	for _, addr := range []string{"0.0.0.0:7878", ":7878", "192.0.2.1:7878"} {
		out, err := exec.Command(bins.Arca, "daemon", "--socket", filepath.Join(t.TempDir(), "s"), "--root", t.TempDir(), "--ui", addr).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "only a loopback address") {
			t.Errorf("--ui %s: %v\n%s", addr, err, out)
		}
	}
}
