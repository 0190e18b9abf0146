package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/arcavm/arca/internal/testenv"
)

// TestPullProgress checks the JSON progress stream's shape, as docker and
// SDKs parse it.
func TestPullProgress(t *testing.T) {
	reg := testenv.Registry(t)
	img := testenv.PushBusyboxImage(t, reg)
	// A daemon of its own: with the layer already there, no download shows.
	d := testenv.StartDaemon(t, testenv.Options{})
	repo, tag, _ := strings.Cut(strings.TrimPrefix(img.Ref, reg+"/"), ":")
	code, _, body := call(t, d, "POST", "/v1.45/images/create?fromImage="+reg+"/"+repo+"&tag="+tag, "")
	if code != 200 {
		t.Fatalf("pull: %d %s", code, body)
	}
	var statuses []string
	sawBytes := false
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var m struct {
			Status, ID     string
			ProgressDetail struct{ Current, Total int64 }
			ErrorDetail    *struct{ Message string }
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad progress line %q: %v", sc.Text(), err)
		}
		if m.ErrorDetail != nil {
			t.Fatalf("pull error: %s", m.ErrorDetail.Message)
		}
		statuses = append(statuses, m.Status)
		if m.Status == "Downloading" && m.ProgressDetail.Total > 0 && m.ProgressDetail.Current > 0 {
			sawBytes = true
		}
	}
	joined := strings.Join(statuses, "|")
	for _, want := range []string{"Pulling from busybox", "Pulling fs layer", "Pull complete", "Digest: " + img.ManifestDigest.String(), "Status: Downloaded newer image for " + img.Ref} {
		if !strings.Contains(joined, want) {
			t.Errorf("progress lacks %q: %s", want, joined)
		}
	}
	if !sawBytes {
		t.Errorf("no Downloading line with byte counts: %s", joined)
	}
	// A second pull: up to date.
	out := d.Docker(t, "pull", img.Ref).Must(t).Stdout
	if !strings.Contains(out, "Image is up to date for "+img.Ref) {
		t.Errorf("second pull: %s", out)
	}
	// Layers are stored content-addressed and unpacked once.
	for _, l := range img.Layers {
		if _, err := os.Stat(filepath.Join(d.Root(), "blobs", "sha256", l.Encoded())); err != nil {
			t.Errorf("layer blob %s not stored: %v", l, err)
		}
	}
}

// TestConcurrentPullsOfOneImage: pulls of one reference that overlap share
// one pull actor, so each layer is downloaded once. A slow proxy in front of
// the registry makes sure they overlap, and counts the downloads.
func TestConcurrentPullsOfOneImage(t *testing.T) {
	reg := testenv.Registry(t)
	img := testenv.PushBusyboxCustomImage(t, reg)
	var mu sync.Mutex
	blobGets := map[string]int{}
	target, _ := url.Parse("http://" + reg)
	proxy := httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			mu.Lock()
			blobGets[path.Base(r.URL.Path)]++
			mu.Unlock()
			time.Sleep(time.Second)
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ref := strings.Replace(img.Ref, reg, ln.Addr().String(), 1)

	// A daemon of its own: no layer may be there already.
	d := testenv.StartDaemon(t, testenv.Options{})
	var wg sync.WaitGroup
	results := make([]testenv.Result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.Docker(t, "pull", ref)
		}()
	}
	wg.Wait()
	for _, r := range results {
		r.Must(t)
		if !strings.Contains(r.Stdout, "Status: ") {
			t.Errorf("pull output lacks the final status:\n%s", r.Stdout)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range img.Layers {
		if n := blobGets[l.String()]; n != 1 {
			t.Errorf("layer %s downloaded %d times, want once (gets: %v)", l.Encoded()[:12], n, blobGets)
		}
	}
	// The platform was resolved from the index: not the decoy.
	arch := d.Docker(t, "image", "inspect", "--format", "{{.Architecture}} {{.Os}}", ref).Must(t).Stdout
	if strings.TrimSpace(arch) != "amd64 linux" {
		t.Errorf("architecture: %q", arch)
	}
}

func TestPullErrors(t *testing.T) {
	d := testenv.SharedDaemon(t)
	reg := testenv.SharedRegistry(t)
	r := d.Docker(t, "pull", reg+"/does-not-exist:latest").MustFail(t)
	if !strings.Contains(r.Stderr, "not found") {
		t.Errorf("missing image: %s", r.Stderr)
	}
	// A registry that is down: a closed port on loopback.
	r = d.Docker(t, "pull", "127.0.0.1:1/busybox:latest").MustFail(t)
	if r.Stderr == "" {
		t.Errorf("registry down gave no message")
	}
	code, _, body := call(t, d, "POST", "/images/create?fromImage=UPPER/Case&tag=latest", "")
	if code != 400 || !strings.Contains(body, "invalid reference format") {
		t.Errorf("bad reference: %d %s", code, body)
	}
	// The daemon still serves.
	d.Docker(t, "version").Must(t)
}

func TestImagesTagInspectHistoryRmi(t *testing.T) {
	d := testenv.SharedDaemon(t)
	ref := pulled(t, d)
	pushed := testenv.SharedBusybox(t)
	tag := "arca-test/" + strings.ToLower(testenv.Name(t)) + ":v1"
	d.Docker(t, "tag", ref, tag).Must(t)
	out := d.Docker(t, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").Must(t).Stdout
	short := pushed.ConfigDigest.Encoded()[:12]
	if !strings.Contains(out, tag+" "+short) || !strings.Contains(out, ref+" "+short) {
		t.Errorf("docker images:\n%s", out)
	}
	var inspect []struct {
		ID          string `json:"Id"`
		RepoTags    []string
		RepoDigests []string
		Os          string
		RootFS      struct{ Layers []string }
		Config      struct{ Cmd []string }
	}
	if err := json.Unmarshal([]byte(d.Docker(t, "image", "inspect", tag).Must(t).Stdout), &inspect); err != nil {
		t.Fatal(err)
	}
	if len(inspect) != 1 || inspect[0].ID != pushed.ConfigDigest.String() || inspect[0].Os != "linux" ||
		len(inspect[0].RootFS.Layers) != len(pushed.DiffIDs) || len(inspect[0].Config.Cmd) == 0 {
		t.Errorf("image inspect: %+v", inspect)
	}
	hist := d.Docker(t, "history", tag).Must(t).Stdout
	if !strings.Contains(hist, "CREATED BY") || len(strings.Split(strings.TrimSpace(hist), "\n")) < 2 {
		t.Errorf("history:\n%s", hist)
	}
	// rmi of one of two tags untags only.
	out = d.Docker(t, "rmi", tag).Must(t).Stdout
	if !strings.Contains(out, "Untagged: "+tag) || strings.Contains(out, "Deleted") {
		t.Errorf("rmi tag: %s", out)
	}
	d.Docker(t, "image", "inspect", ref).Must(t)

	// An image used by a container is refused unless forced; by short ID.
	tag2 := "arca-test/" + strings.ToLower(testenv.Name(t)) + ":v2"
	d.Docker(t, "tag", ref, tag2).Must(t)
	name := testenv.Name(t)
	d.Docker(t, "create", "--name", name, tag2, "true").Must(t)
	r := d.Docker(t, "rmi", short).MustFail(t)
	if !strings.Contains(r.Stderr, "conflict") {
		t.Errorf("rmi of used image: %s", r.Stderr)
	}
	d.Docker(t, "rm", name).Must(t)
	d.Docker(t, "rmi", tag2).Must(t)
	r = d.Docker(t, "rmi", "no-such-image:nope").MustFail(t)
	if !strings.Contains(r.Stderr, "No such image") {
		t.Errorf("rmi missing: %s", r.Stderr)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	reg := testenv.Registry(t)
	pushed := testenv.PushBusyboxImage(t, reg)
	d := testenv.StartDaemon(t, testenv.Options{})
	d.Docker(t, "pull", "-q", pushed.Ref).Must(t)
	tarPath := filepath.Join(t.TempDir(), "busybox.tar")
	d.Docker(t, "save", "-o", tarPath, pushed.Ref).Must(t)
	d.Docker(t, "rmi", pushed.Ref).Must(t)
	if r := d.Docker(t, "image", "inspect", pushed.Ref); r.Code == 0 {
		t.Fatal("image still there after rmi")
	}
	out := d.Docker(t, "load", "-i", tarPath).Must(t).Stdout
	if !strings.Contains(out, "Loaded image: "+pushed.Ref) {
		t.Errorf("load: %q", out)
	}
	id := strings.TrimSpace(d.Docker(t, "image", "inspect", "--format", "{{.Id}}", pushed.Ref).Must(t).Stdout)
	if id != pushed.ConfigDigest.String() {
		t.Errorf("loaded image id %s, want %s", id, pushed.ConfigDigest)
	}
	// A loaded image runs.
	if got := d.Docker(t, "run", "--rm", pushed.Ref, "echo", "loaded").Must(t).Stdout; got != "loaded\n" {
		t.Errorf("run loaded image: %q", got)
	}
	// Garbage is refused with a clear error and nothing registered.
	r := d.DockerStdin(t, strings.NewReader("this is not a tar"), "load").MustFail(t)
	if r.Stderr == "" {
		t.Error("load of garbage gave no message")
	}
	d.Docker(t, "version").Must(t)
}

// TestMobyClient lists through the official Go client, whose decoders are
// stricter about shapes than the CLI's templates.
func TestMobyClient(t *testing.T) {
	d := testenv.SharedDaemon(t)
	ref := pulled(t, d)
	c := d.Client(t)
	ctx := context.Background()
	imgs, err := c.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, im := range imgs.Items {
		for _, tg := range im.RepoTags {
			if tg == ref {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("ImageList lacks %s: %+v", ref, imgs)
	}
	if _, err := c.ContainerList(ctx, client.ContainerListOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestImagePrune(t *testing.T) {
	busybox := testenv.SharedBusybox(t).Ref
	custom := testenv.SharedBusyboxCustom(t)
	d := testenv.StartDaemon(t, testenv.Options{})
	d.Docker(t, "pull", "-q", busybox).Must(t)
	d.Docker(t, "pull", "-q", custom.Ref).Must(t)
	// Moving the custom image's tag onto busybox leaves the custom image
	// dangling.
	d.Docker(t, "tag", busybox, custom.Ref).Must(t)
	out := d.Docker(t, "images", "--filter", "dangling=true", "-q").Must(t).Stdout
	if !strings.HasPrefix(strings.TrimSpace(out), custom.ConfigDigest.Encoded()[:12]) {
		t.Fatalf("dangling images: %q", out)
	}
	// A container keeps busybox in use: prune -a must leave it.
	d.Docker(t, "create", "--name", "user", busybox, "true").Must(t)
	out = d.Docker(t, "image", "prune", "-f").Must(t).Stdout
	if !strings.Contains(out, "deleted: "+custom.ConfigDigest.String()) || !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("image prune: %s", out)
	}
	d.Docker(t, "image", "prune", "-a", "-f").Must(t)
	d.Docker(t, "image", "inspect", busybox).Must(t)
	d.Docker(t, "rm", "user").Must(t)
	d.Docker(t, "image", "prune", "-a", "-f").Must(t)
	if out := d.Docker(t, "images", "-q").Must(t).Stdout; out != "" {
		t.Errorf("images left after prune -a: %q", out)
	}

	// A classic build's untagged image is dangling, its steps' images
	// are not (they are its parents), and prune takes them together.
	d.Docker(t, "pull", "-q", busybox).Must(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM " + busybox + "\nENV A=1\nENV B=2\n"})
	built := strings.TrimSpace(d.DockerCmd(t, classic, "build", "-q", dir).Must(t).Stdout)
	steps := strings.Fields(d.Docker(t, "history", "--no-trunc", "--format", "{{.ID}}", built).Must(t).Stdout)
	if len(steps) < 2 || steps[0] != built {
		t.Fatalf("history of the built image: %q", steps)
	}
	if out := strings.Fields(d.Docker(t, "images", "-q", "--no-trunc", "--filter", "dangling=true").Must(t).Stdout); !slices.Equal(out, []string{built}) {
		t.Errorf("dangling images %q, want the build's only", out)
	}
	out = d.Docker(t, "image", "prune", "-f").Must(t).Stdout
	for _, id := range steps[:2] {
		if !strings.Contains(out, "deleted: "+id) {
			t.Errorf("image prune did not delete %s:\n%s", id, out)
		}
	}
	if left := strings.Fields(d.Docker(t, "images", "-a", "-q").Must(t).Stdout); len(left) != 1 {
		t.Errorf("images after prune: %q, want busybox only", left)
	}
}
