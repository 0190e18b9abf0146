package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/config"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"

	"github.com/arcavm/arca/internal/prereq"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/layers"
)

const registryBinary = "/usr/bin/docker-registry"

// testRegistry is a real distribution registry on a loopback port.
type testRegistry struct {
	host string // 127.0.0.1:port
	data string // its storage root
	rc   *regclient.RegClient
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	if _, err := os.Stat(registryBinary); err != nil {
		prereq.Missing(t, "%s not installed", registryBinary)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", data, host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(registryBinary, "serve", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	rc := regclient.New(regclient.WithConfigHost(config.Host{Name: host, TLS: config.TLSDisabled}))
	return &testRegistry{host: host, data: data, rc: rc}
}

// blobPath is where the registry keeps a blob, for tests that corrupt it.
func (tr *testRegistry) blobPath(d digest.Digest) string {
	return filepath.Join(tr.data, "docker/registry/v2/blobs/sha256", d.Encoded()[:2], d.Encoded(), "data")
}

func layerTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		content := files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type testImage struct {
	tars     [][]byte // uncompressed layers
	zstd     bool
	arch     string
	diffIDs  []digest.Digest // override, to lie about the content
	config   ocispec.Descriptor
	manifest ocispec.Descriptor
	layers   []ocispec.Descriptor
}

func (tr *testRegistry) putBlob(t *testing.T, r ref.Ref, mediaType string, b []byte) ocispec.Descriptor {
	t.Helper()
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if _, err := tr.rc.BlobPut(context.Background(), r, descriptor.Descriptor{MediaType: mediaType, Digest: d.Digest, Size: d.Size}, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return d
}

func (tr *testRegistry) putManifest(t *testing.T, r ref.Ref, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	m, err := manifest.New(manifest.WithRaw(raw), manifest.WithDesc(descriptor.Descriptor{MediaType: mediaType, Digest: d.Digest, Size: d.Size}))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.rc.ManifestPut(context.Background(), r, m); err != nil {
		t.Fatal(err)
	}
	return d
}

// push uploads img under refStr (which may be a digest-less repo ref when the
// image is only a child of an index).
func (tr *testRegistry) push(t *testing.T, refStr string, img *testImage) {
	t.Helper()
	r, err := ref.New(refStr)
	if err != nil {
		t.Fatal(err)
	}
	diffIDs := img.diffIDs
	img.layers = nil
	for _, lt := range img.tars {
		if img.diffIDs == nil {
			diffIDs = append(diffIDs, digest.FromBytes(lt))
		}
		if img.zstd {
			img.layers = append(img.layers, tr.putBlob(t, r, ocispec.MediaTypeImageLayerZstd, zstded(t, lt)))
		} else {
			img.layers = append(img.layers, tr.putBlob(t, r, ocispec.MediaTypeImageLayerGzip, gzipped(t, lt)))
		}
	}
	arch := img.arch
	if arch == "" {
		arch = "amd64"
	}
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/sh"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	cfgRaw, _ := json.Marshal(cfg)
	img.config = tr.putBlob(t, r, ocispec.MediaTypeImageConfig, cfgRaw)
	img.manifest = tr.putManifest(t, r, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.config,
		Layers:    img.layers,
	})
}

type recorder struct{ msgs []jsonstream.Message }

func (r *recorder) add(m jsonstream.Message) { r.msgs = append(r.msgs, m) }

func (r *recorder) statuses(id string) []string {
	var out []string
	for _, m := range r.msgs {
		if m.ID == id {
			if len(out) > 0 && out[len(out)-1] == m.Status {
				continue // repeated progress updates count once
			}
			out = append(out, m.Status)
		}
	}
	return out
}

func (r *recorder) dump() string {
	var b strings.Builder
	for _, m := range r.msgs {
		j, _ := json.Marshal(m)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func newPuller(t *testing.T) *Puller {
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
	return &Puller{Blobs: bs, Layers: ls, Platform: "linux/amd64"}
}

func shortOf(d ocispec.Descriptor) string { return d.Digest.Encoded()[:12] }

func TestPull(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "unpacking layers needs root")
	}
	tr := startRegistry(t)
	img := &testImage{tars: [][]byte{
		layerTar(t, map[string]string{"bin/sh": "#!shell", "etc/hostname": "box\n"}),
		layerTar(t, map[string]string{"etc/.wh.hostname": "", "srv/data": strings.Repeat("d", 300000)}),
	}}
	refStr := tr.host + "/busybox:latest"
	tr.push(t, refStr, img)

	p := newPuller(t)
	var rec recorder
	got, err := p.Pull(context.Background(), refStr, rec.add)
	if err != nil {
		t.Fatal(err)
	}

	if first := rec.msgs[0]; first.Status != "Pulling from busybox" || first.ID != "latest" {
		t.Errorf("first message %+v", first)
	}
	wantLayer := []string{statusPullingFS, statusDownloading, statusVerifying, statusDownloaded, statusExtracting, statusPullComplete}
	for _, l := range img.layers {
		if s := rec.statuses(shortOf(l)); !slices.Equal(s, wantLayer) {
			t.Errorf("layer %s statuses %q, want %q\n%s", shortOf(l), s, wantLayer, rec.dump())
		}
	}
	for _, m := range rec.msgs {
		if m.Status == statusDownloading && (m.Progress == nil || m.Progress.Total == 0 || m.Progress.Current == 0) {
			t.Errorf("Downloading without counts: %+v", m)
		}
	}
	// the Digest and Status lines are the caller's
	if last := rec.msgs[len(rec.msgs)-1]; last.ID != shortOf(img.layers[1]) || last.Status != statusPullComplete {
		t.Errorf("last message %+v", last)
	}

	if got.ID != img.config.Digest || got.ManifestDigest != img.manifest.Digest || got.ManifestMediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("record ids: %+v", got)
	}
	if !slices.Equal(got.RepoTags, []string{refStr}) || !slices.Equal(got.RepoDigests, []string{tr.host + "/busybox@" + img.manifest.Digest.String()}) {
		t.Errorf("tags %v digests %v", got.RepoTags, got.RepoDigests)
	}
	if got.OS != "linux" || got.Architecture != "amd64" || !got.Created.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Errorf("platform/created: %+v", got)
	}
	diffIDs := []digest.Digest{digest.FromBytes(img.tars[0]), digest.FromBytes(img.tars[1])}
	chains := layers.ChainIDs(diffIDs)
	var total int64
	for i, l := range got.Layers {
		if l.Digest != img.layers[i].Digest || l.DiffID != diffIDs[i] || l.ChainID != chains[i] || l.Size != img.layers[i].Size || l.MediaType != ocispec.MediaTypeImageLayerGzip {
			t.Errorf("layer %d: %+v", i, l)
		}
		if !p.Layers.Has(l.ChainID) || !p.Blobs.Has(l.Digest) {
			t.Errorf("layer %d not stored", i)
		}
		total += l.UnpackedSize
	}
	if want := int64(len("#!shell") + len("box\n") + 300000); got.Size != want || total != want {
		t.Errorf("size %d, want %d", got.Size, want)
	}
	for _, d := range []digest.Digest{img.config.Digest, img.manifest.Digest} {
		if !p.Blobs.Has(d) {
			t.Errorf("blob %s not stored", d)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(p.Layers.Dir(chains[0]), "bin/sh")); string(b) != "#!shell" {
		t.Errorf("bin/sh = %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(p.Layers.Dir(chains[1]), "etc/hostname")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("whiteout not converted: %v", err)
	}

	// again: every layer is there; whether the tag moved is the caller's call
	var again recorder
	got2, err := p.Pull(context.Background(), refStr, again.add)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range img.layers {
		if s := again.statuses(shortOf(l)); !slices.Equal(s, []string{statusExists}) {
			t.Errorf("second pull, layer statuses %q", s)
		}
	}
	if got2.ID != got.ID || got2.Size != got.Size {
		t.Errorf("second record differs: %+v", got2)
	}

	// a layer whose blob is kept but whose unpacked copy is gone unpacks
	// again without a download
	if err := p.Layers.Remove(chains[1]); err != nil {
		t.Fatal(err)
	}
	var unpackOnly recorder
	if _, err := p.Pull(context.Background(), refStr, unpackOnly.add); err != nil {
		t.Fatal(err)
	}
	want := []string{statusPullingFS, statusDownloaded, statusExtracting, statusPullComplete}
	if s := unpackOnly.statuses(shortOf(img.layers[1])); !slices.Equal(s, want) {
		t.Errorf("re-unpack statuses %q, want %q", s, want)
	}
	if !p.Layers.Has(chains[1]) {
		t.Error("layer not unpacked again")
	}

	// by digest: no tag, the digest names the pull
	var byDigest recorder
	dref := tr.host + "/busybox@" + img.manifest.Digest.String()
	got3, err := p.Pull(context.Background(), dref, byDigest.add)
	if err != nil {
		t.Fatal(err)
	}
	if byDigest.msgs[0].ID != img.manifest.Digest.String() || len(got3.RepoTags) != 0 || got3.RepoDigests[0] != dref {
		t.Errorf("digest pull: %+v %+v", byDigest.msgs[0], got3)
	}
}

func TestPullWaitsBeyondThreeDownloads(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "unpacking layers needs root")
	}
	tr := startRegistry(t)
	img := &testImage{}
	for i := range 5 {
		img.tars = append(img.tars, layerTar(t, map[string]string{fmt.Sprintf("f%d", i): strings.Repeat("x", i+1)}))
	}
	refStr := tr.host + "/many:1"
	tr.push(t, refStr, img)
	var rec recorder
	got, err := newPuller(t).Pull(context.Background(), refStr, rec.add)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range img.layers {
		waited := slices.Contains(rec.statuses(shortOf(l)), statusWaiting)
		if waited != (i >= maxDownloads) {
			t.Errorf("layer %d waited=%v\n%s", i, waited, rec.dump())
		}
	}
	if len(got.Layers) != 5 {
		t.Errorf("%d layers", len(got.Layers))
	}
}

func TestPullZstdLayer(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "unpacking layers needs root")
	}
	tr := startRegistry(t)
	img := &testImage{zstd: true, tars: [][]byte{layerTar(t, map[string]string{"z": "zstd content"})}}
	refStr := tr.host + "/zstd:latest"
	tr.push(t, refStr, img)
	p := newPuller(t)
	got, err := p.Pull(context.Background(), refStr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(p.Layers.Dir(got.Layers[0].ChainID), "z")); string(b) != "zstd content" {
		t.Errorf("z = %q", b)
	}
}

func TestPullPicksPlatformFromIndex(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "unpacking layers needs root")
	}
	tr := startRegistry(t)
	amd := &testImage{arch: "amd64", tars: [][]byte{layerTar(t, map[string]string{"arch": "amd64"})}}
	arm := &testImage{arch: "arm64", tars: [][]byte{layerTar(t, map[string]string{"arch": "arm64"})}}
	tr.push(t, tr.host+"/multi:amd64", amd)
	tr.push(t, tr.host+"/multi:arm64", arm)
	r, _ := ref.New(tr.host + "/multi:latest")
	withPlatform := func(d ocispec.Descriptor, arch string) ocispec.Descriptor {
		d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		return d
	}
	index := tr.putManifest(t, r, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{withPlatform(arm.manifest, "arm64"), withPlatform(amd.manifest, "amd64")},
	})

	tests := []struct {
		platform string
		want     *testImage
	}{
		{"linux/amd64", amd},
		{"linux/arm64", arm},
		{"linux/s390x", nil},
	}
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			p := newPuller(t)
			p.Platform = tt.platform
			got, err := p.Pull(context.Background(), tr.host+"/multi:latest", nil)
			if tt.want == nil {
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no matching manifest for linux/s390x") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.want.config.Digest || got.Architecture != tt.want.arch {
				t.Errorf("picked %s (%s)", got.ID, got.Architecture)
			}
			if got.ManifestDigest != index.Digest || got.ManifestMediaType != ocispec.MediaTypeImageIndex || !p.Blobs.Has(index.Digest) {
				t.Errorf("manifest %s %s, want the stored index", got.ManifestDigest, got.ManifestMediaType)
			}
			if got.RepoDigests[0] != tr.host+"/multi@"+index.Digest.String() {
				t.Errorf("repo digest %v, want the index's", got.RepoDigests)
			}
			if got.Layers[0].Digest != tt.want.layers[0].Digest {
				t.Errorf("layers of the wrong platform")
			}
		})
	}
}

func TestPullMissingTag(t *testing.T) {
	tr := startRegistry(t)
	_, err := newPuller(t).Pull(context.Background(), tr.host+"/nothing:here", nil)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	want := "manifest for " + tr.host + "/nothing:here not found: manifest unknown: manifest unknown"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestPullUnreachable(t *testing.T) {
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens there
	start := time.Now()
	_, err := newPuller(t).Pull(context.Background(), host+"/busybox:latest", nil)
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "http://"+host+"/v2/") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("message %q should name the plain-http URL and the cause", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestPullCorruptLayer(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "unpacking layers needs root")
	}
	tr := startRegistry(t)
	img := &testImage{tars: [][]byte{
		layerTar(t, map[string]string{"good": "fine"}),
		layerTar(t, map[string]string{"bad": strings.Repeat("b", 5000)}),
	}}
	refStr := tr.host + "/corrupt:latest"
	tr.push(t, refStr, img)
	// same length, other bytes: only the digest can tell
	bad := img.layers[1]
	if err := os.WriteFile(tr.blobPath(bad.Digest), bytes.Repeat([]byte{0x42}, int(bad.Size)), 0o644); err != nil {
		t.Fatal(err)
	}

	p := newPuller(t)
	_, err := p.Pull(context.Background(), refStr, nil)
	if err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
	if p.Blobs.Has(bad.Digest) {
		t.Error("corrupt blob stored")
	}
	chain := layers.ChainIDs([]digest.Digest{digest.FromBytes(img.tars[0]), digest.FromBytes(img.tars[1])})[1]
	if p.Layers.Has(chain) {
		t.Error("corrupt layer unpacked")
	}
	if p.Blobs.Has(img.manifest.Digest) {
		t.Error("manifest of a failed pull stored")
	}
	assertNoTemps(t, p)
}

func TestPullDiffIDMismatch(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "unpacking layers needs root")
	}
	tr := startRegistry(t)
	lie := digest.FromString("not the layer")
	img := &testImage{tars: [][]byte{layerTar(t, map[string]string{"f": "x"})}, diffIDs: []digest.Digest{lie}}
	refStr := tr.host + "/liar:latest"
	tr.push(t, refStr, img)
	p := newPuller(t)
	_, err := p.Pull(context.Background(), refStr, nil)
	if err == nil || !strings.Contains(err.Error(), "diff id mismatch") {
		t.Fatalf("err = %v", err)
	}
	if p.Layers.Has(layers.ChainID("", lie)) {
		t.Error("layer unpacked under the lying diff id")
	}
	assertNoTemps(t, p)
}

func assertNoTemps(t *testing.T, p *Puller) {
	t.Helper()
	for _, dir := range []string{filepath.Dir(p.Blobs.Path(digest.FromString(""))), filepath.Dir(filepath.Dir(p.Layers.Dir(digest.FromString(""))))} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("temp %s left in %s", e.Name(), dir)
			}
		}
	}
}

func TestPullCanceled(t *testing.T) {
	tr := startRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newPuller(t).Pull(ctx, tr.host+"/x:latest", nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v", err)
	}
}
