package testenv

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/config"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/platform"
	"github.com/regclient/regclient/types/ref"
)

func newTestClient(registry string) *regclient.RegClient {
	return regclient.New(regclient.WithConfigHost(config.Host{Name: registry, TLS: config.TLSDisabled}))
}

// layerFiles reads a layer blob into name → header.
func layerFiles(t *testing.T, ctx context.Context, rc *regclient.RegClient, r ref.Ref, m manifest.Manifest, i int) map[string]*tar.Header {
	t.Helper()
	im, ok := m.(manifest.Imager)
	if !ok {
		t.Fatalf("manifest %T is not an image", m)
	}
	layers, err := im.GetLayers()
	if err != nil {
		t.Fatalf("layers: %v", err)
	}
	if i >= len(layers) {
		t.Fatalf("want layer %d, manifest has %d", i, len(layers))
	}
	br, err := rc.BlobGet(ctx, r, layers[i])
	if err != nil {
		t.Fatalf("get layer: %v", err)
	}
	defer br.Close()
	btr, err := br.ToTarReader()
	if err != nil {
		t.Fatalf("layer as tar: %v", err)
	}
	tr, err := btr.GetTarReader()
	if err != nil {
		t.Fatalf("layer as tar: %v", err)
	}
	files := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read layer: %v", err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
	}
	// Reading to the end makes the reader verify the digest.
	if err := btr.Close(); err != nil {
		t.Fatalf("close layer: %v", err)
	}
	return files
}

func TestRegistryAndPush(t *testing.T) {
	reg := Registry(t)
	p := PushBusyboxImage(t, reg)
	if want := reg + "/busybox:latest"; p.Ref != want {
		t.Fatalf("ref %q, want %q", p.Ref, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc := newTestClient(reg)
	r, err := ref.New(p.Ref)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx, r)

	m, err := rc.ManifestGet(ctx, r)
	if err != nil {
		t.Fatalf("get manifest: %v", err)
	}
	if mt := manifest.GetMediaType(m); mt != mediatype.Docker2Manifest {
		t.Errorf("manifest media type %q, want %q", mt, mediatype.Docker2Manifest)
	}
	if got := manifest.GetDigest(m); got != p.ManifestDigest {
		t.Errorf("registry has manifest %s, PushBusybox reported %s", got, p.ManifestDigest)
	}

	cfg, err := rc.ImageConfig(ctx, r)
	if err != nil {
		t.Fatalf("get config: %v", err)
	}
	img := cfg.GetConfig()
	if img.OS != "linux" || img.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", img.OS, img.Architecture)
	}
	if !slices.Equal(img.Config.Cmd, []string{"sh"}) {
		t.Errorf("Cmd %q", img.Config.Cmd)
	}
	if !slices.Equal(img.Config.Env, []string{DefaultPath}) {
		t.Errorf("Env %q", img.Config.Env)
	}
	if img.Created == nil || img.Created.IsZero() {
		t.Error("no created time")
	}
	if len(img.History) != 1 || img.History[0].CreatedBy == "" {
		t.Errorf("history %+v", img.History)
	}
	if len(img.RootFS.DiffIDs) != 1 || img.RootFS.DiffIDs[0] != p.DiffIDs[0] {
		t.Errorf("diff IDs %v, want %v", img.RootFS.DiffIDs, p.DiffIDs)
	}
	if cfg.GetDescriptor().Digest != p.ConfigDigest {
		t.Errorf("config digest %s, want %s", cfg.GetDescriptor().Digest, p.ConfigDigest)
	}

	files := layerFiles(t, ctx, rc, r, m, 0)
	if h := files["bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 {
		t.Errorf("bin/busybox: %+v", h)
	}
	for _, applet := range []string{"sh", "echo", "cat", "sleep", "id", "env", "sha256sum", "nc", "wget", "tar", "ps", "top", "hostname"} {
		if h := files["bin/"+applet]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s: %+v", applet, h)
		}
	}
	if h := files["tmp"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp: %+v", h)
	}
	for _, f := range []string{"etc/passwd", "etc/group", "root", "home"} {
		if files[f] == nil {
			t.Errorf("%s missing", f)
		}
	}

	// Same input, same digests: the daemon's layer cache and the tests'
	// expectations can rely on that.
	again := PushBusyboxImage(t, reg)
	if again.ManifestDigest != p.ManifestDigest {
		t.Errorf("second push gave manifest %s, first %s", again.ManifestDigest, p.ManifestDigest)
	}
}

func TestPushBusyboxCustom(t *testing.T) {
	reg := Registry(t)
	base := PushBusyboxImage(t, reg)
	p := PushBusyboxCustomImage(t, reg)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc := newTestClient(reg)
	r, err := ref.New(p.Ref)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx, r)

	idx, err := rc.ManifestGet(ctx, r)
	if err != nil {
		t.Fatalf("get index: %v", err)
	}
	if mt := manifest.GetMediaType(idx); mt != mediatype.OCI1ManifestList {
		t.Fatalf("media type %q, want an OCI index", mt)
	}
	plats, err := manifest.GetPlatformList(idx)
	if err != nil {
		t.Fatal(err)
	}
	if len(plats) != 2 || plats[0].Architecture != BusyboxCustom.DecoyArch || plats[1].Architecture != runtime.GOARCH {
		t.Fatalf("index platforms %v: want the decoy first, then %s", plats, runtime.GOARCH)
	}

	host := platform.Platform{OS: "linux", Architecture: runtime.GOARCH}
	desc, err := manifest.GetPlatformDesc(idx, &host)
	if err != nil {
		t.Fatalf("no manifest for %s: %v", host, err)
	}
	mr := r.SetDigest(desc.Digest.String())
	m, err := rc.ManifestGet(ctx, mr)
	if err != nil {
		t.Fatalf("get manifest: %v", err)
	}
	cfg, err := rc.ImageConfig(ctx, mr)
	if err != nil {
		t.Fatalf("get config: %v", err)
	}
	if cfg.GetDescriptor().Digest != p.ConfigDigest {
		t.Errorf("config %s, want %s", cfg.GetDescriptor().Digest, p.ConfigDigest)
	}
	c, want := cfg.GetConfig().Config, BusyboxCustom
	if c.User != want.User || c.WorkingDir != want.WorkingDir ||
		!slices.Equal(c.Entrypoint, want.Entrypoint) || !slices.Equal(c.Cmd, want.Cmd) ||
		!slices.Equal(c.Env, want.Env) || c.Labels["org.arcavm.test"] != "busybox-custom" {
		t.Errorf("config %+v, want %+v", c, want)
	}
	if _, ok := c.ExposedPorts[want.ExposedPort]; !ok {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}

	// The first layer is busybox's own, shared by digest.
	if len(p.Layers) != 2 || p.Layers[0] != base.Layers[0] {
		t.Fatalf("layers %v, want busybox's %s first", p.Layers, base.Layers[0])
	}
	files := layerFiles(t, ctx, rc, r, m, 1)
	entry := strings.TrimPrefix(want.Entrypoint[0], "/")
	if h := files[entry]; h == nil || h.Mode&0o111 == 0 {
		t.Errorf("%s: %+v", entry, h)
	}
	if h := files["work"]; h == nil || h.Uid != want.UID {
		t.Errorf("work dir: %+v", h)
	}
	if files["etc/passwd"] == nil {
		t.Error("second layer doesn't override etc/passwd")
	}
	if p.ManifestDigest == digest.Digest("") || p.ManifestDigest == desc.Digest {
		t.Errorf("ManifestDigest %q should be the index's", p.ManifestDigest)
	}
}

func TestName(t *testing.T) {
	t.Run("With Spaces/and:colons", func(t *testing.T) {
		if got, want := Name(t, "a"), "testname-with_spaces-and-colons-a"; got != want {
			t.Errorf("Name = %q, want %q", got, want)
		}
	})
}

func TestCheckLog(t *testing.T) {
	for _, tc := range []struct {
		log   string
		dirty bool
	}{
		{"time=1 level=INFO msg=started\n", false},
		{"level=ERROR msg=\"recovered panic: boom\"\n", false},
		{"ok\n==================\nWARNING: DATA RACE\nWrite at 0x00c000\n", true},
		{"ok\npanic: runtime error: index out of range\n\ngoroutine 1 [running]:\n", true},
		{"fatal error: concurrent map writes\n", true},
	} {
		if err := checkLog(tc.log); (err != nil) != tc.dirty {
			t.Errorf("checkLog(%q) = %v, want dirty=%v", tc.log, err, tc.dirty)
		}
	}
}
