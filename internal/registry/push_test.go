package registry_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/arcavm/arca/internal/registry"
	"github.com/arcavm/arca/internal/testenv"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/layers"
)

func stores(t *testing.T) (*blobs.Store, *layers.Store) {
	t.Helper()
	dir := t.TempDir()
	bs, err := blobs.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := layers.Open(filepath.Join(dir, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	return bs, ls
}

// statuses collects "id: status" lines, without progress ticks.
func statuses(out *[]string) func(jsonstream.Message) {
	return func(m jsonstream.Message) {
		if m.Progress != nil && m.Progress.Total > 0 {
			return
		}
		if m.Aux != nil {
			*out = append(*out, "aux "+string(*m.Aux))
			return
		}
		*out = append(*out, strings.TrimPrefix(m.ID+": "+m.Status, ": "))
	}
}

func has(lines []string, substr string) bool {
	for _, l := range lines {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

// A pulled image pushes its stored compressed blobs: the manifest digest
// stays, a blob the repository lacks is mounted from the one it came from,
// a second push finds every layer there, and another registry gets every
// layer uploaded.
func TestPushPulledImage(t *testing.T) {
	reg := testenv.Registry(t)
	src := testenv.PushBusybox(t, reg)
	rec, bs := pullFresh(t, src)
	want := rec.ManifestDigest.String()
	p := &registry.Pusher{Blobs: bs}

	for _, tc := range []struct {
		target string
		layer  string
	}{
		{reg + "/copy:v1", "Mounted from "},
		{reg + "/copy:v2", "Layer already exists"},
		{testenv.Registry(t) + "/other:latest", "Pushed"},
	} {
		var lines []string
		res, err := p.Push(context.Background(), rec, tc.target, statuses(&lines))
		if err != nil {
			t.Fatalf("push %s: %v", tc.target, err)
		}
		if res.Digest != want {
			t.Errorf("push %s: digest %s, want %s (the pulled manifest)", tc.target, res.Digest, want)
		}
		tag := tc.target[strings.LastIndex(tc.target, ":")+1:]
		for _, w := range []string{"Preparing", tc.layer, tag + ": digest: " + want + " size: ", `aux {"Tag":"` + tag + `","Digest":"` + want + `"`} {
			if !has(lines, w) {
				t.Errorf("push %s: no %q in\n%s", tc.target, w, strings.Join(lines, "\n"))
			}
		}
		// and it pulls back, whole, into fresh stores
		bs2, ls2 := stores(t)
		back, err := (&registry.Puller{Blobs: bs2, Layers: ls2}).Pull(context.Background(), tc.target, nil)
		if err != nil {
			t.Fatalf("pull back %s: %v", tc.target, err)
		}
		if back.ID != rec.ID {
			t.Errorf("pull back %s: ID %s, want %s", tc.target, back.ID, rec.ID)
		}
	}
}

// A registry behind Basic auth: no credentials and wrong ones are refused
// in dockerd's words, the right ones push, pull and log in.
func TestAuthRegistry(t *testing.T) {
	plain := testenv.Registry(t)
	src := testenv.PushBusybox(t, plain)
	rec, bs := pullFresh(t, src)
	ar := testenv.AuthRegistry(t)
	ok := &registry.Credentials{Username: ar.User, Password: ar.Password}
	bad := &registry.Credentials{Username: ar.User, Password: "wrong"}
	target := ar.Addr + "/private:1"
	ctx := context.Background()

	_, err := (&registry.Pusher{Blobs: bs}).Push(ctx, rec, target, nil)
	if err == nil || err.Error() != "no basic auth credentials" || !errors.Is(err, registry.ErrUnauthorized) {
		t.Errorf("push without credentials: %v", err)
	}
	_, err = (&registry.Pusher{Blobs: bs, Credentials: bad}).Push(ctx, rec, target, nil)
	if err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("push with a wrong password: %v", err)
	}
	if _, err := (&registry.Pusher{Blobs: bs, Credentials: ok}).Push(ctx, rec, target, nil); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}

	bs2, ls2 := stores(t)
	_, err = (&registry.Puller{Blobs: bs2, Layers: ls2}).Pull(ctx, target, nil)
	wantPull := `Head "http://` + ar.Addr + `/v2/private/manifests/1": no basic auth credentials`
	if err == nil || err.Error() != wantPull {
		t.Errorf("pull without credentials: %v, want %s", err, wantPull)
	}
	if _, err := (&registry.Puller{Blobs: bs2, Layers: ls2, Credentials: ok}).Pull(ctx, target, nil); err != nil {
		t.Errorf("pull with credentials: %v", err)
	}

	if _, err := registry.Login(ctx, ar.Addr, ok); err != nil {
		t.Errorf("login: %v", err)
	}
	_, err = registry.Login(ctx, ar.Addr, bad)
	wantLogin := "login attempt to http://" + ar.Addr + "/v2/ failed with status: 401 Unauthorized"
	if err == nil || err.Error() != wantLogin {
		t.Errorf("login with a wrong password: %v, want %s", err, wantLogin)
	}
	if _, err := registry.Login(ctx, "http://"+plain, nil); err != nil {
		t.Errorf("login to an open registry: %v", err)
	}
}

// A layer stored uncompressed (a loaded or committed image's) goes up
// gzipped, as dockerd sends it, the same bytes each time.
func TestPushUncompressedLayer(t *testing.T) {
	bs, _ := stores(t)
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	body := []byte("hello from an uncompressed layer\n")
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	layer := digest.FromBytes(tarBuf.Bytes())
	if _, err := bs.Put(bytes.NewReader(tarBuf.Bytes()), layer); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer}},
	})
	id := digest.FromBytes(cfg)
	if _, err := bs.Put(bytes.NewReader(cfg), id); err != nil {
		t.Fatal(err)
	}
	rec := &persistence.ImageRecord{ID: id, Layers: []persistence.LayerRef{{Digest: layer, DiffID: layer, ChainID: layer, Size: int64(tarBuf.Len())}}}
	reg := testenv.Registry(t)
	p := &registry.Pusher{Blobs: bs}
	var first registry.PushResult
	for i, want := range []string{"Pushed", "Layer already exists"} {
		var lines []string
		res, err := p.Push(context.Background(), rec, reg+"/raw:1", statuses(&lines))
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		if !has(lines, want) {
			t.Errorf("push %d: no %q in\n%s", i, want, strings.Join(lines, "\n"))
		}
		if i == 0 {
			first = res
		} else if res.Digest != first.Digest {
			t.Errorf("second push: digest %s, first %s", res.Digest, first.Digest)
		}
	}
	bs2, ls2 := stores(t)
	back, err := (&registry.Puller{Blobs: bs2, Layers: ls2}).Pull(context.Background(), reg+"/raw:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != id || len(back.Layers) != 1 || back.Layers[0].DiffID != layer || back.Layers[0].MediaType != "application/vnd.docker.image.rootfs.diff.tar.gzip" {
		t.Errorf("pulled back %+v", back)
	}
	if b, err := os.ReadFile(filepath.Join(ls2.Dir(back.Layers[0].ChainID), "hello.txt")); err != nil || !bytes.Equal(b, body) {
		t.Errorf("hello.txt: %q %v", b, err)
	}
}

// A registry that is down fails the push at once, in Go's words for the
// request, as dockerd's message is.
func TestPushUnreachable(t *testing.T) {
	plain := testenv.Registry(t)
	src := testenv.PushBusybox(t, plain)
	rec, bs := pullFresh(t, src)
	start := time.Now()
	_, err := (&registry.Pusher{Blobs: bs}).Push(context.Background(), rec, "127.0.0.1:1/x:1", nil)
	if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), `"http://127.0.0.1:1/v2/`) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("push to a closed port: %v", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("push to a closed port took %s", d)
	}
}

// An image pulled by its index pushes as its own platform's manifest,
// made from the record, and pulls back as the same image.
func TestPushImagePulledByIndex(t *testing.T) {
	reg := testenv.Registry(t)
	src := testenv.PushBusyboxCustom(t, reg)
	rec, bs := pullFresh(t, src)
	var lines []string
	res, err := (&registry.Pusher{Blobs: bs}).Push(context.Background(), rec, reg+"/single:1", statuses(&lines))
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest == rec.ManifestDigest.String() {
		t.Errorf("pushed the index's digest %s", res.Digest)
	}
	if !has(lines, "Mounted from ") {
		t.Errorf("no blob mounted from %s:\n%s", src, strings.Join(lines, "\n"))
	}
	bs2, ls2 := stores(t)
	back, err := (&registry.Puller{Blobs: bs2, Layers: ls2}).Pull(context.Background(), reg+"/single:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != rec.ID || back.ManifestDigest.String() != res.Digest {
		t.Errorf("pulled back %s (manifest %s), pushed %s (manifest %s)", back.ID, back.ManifestDigest, rec.ID, res.Digest)
	}
}

// pullFresh pulls src into new stores and returns the image and its blobs.
func pullFresh(t *testing.T, src string) (*persistence.ImageRecord, *blobs.Store) {
	t.Helper()
	bs, ls := stores(t)
	rec, err := (&registry.Puller{Blobs: bs, Layers: ls}).Pull(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rec, bs
}
