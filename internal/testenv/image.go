package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/config"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/ref"
)

// BusyboxPath is where Debian's busybox-static puts its binary.
const BusyboxPath = "/bin/busybox"

// DefaultPath is the PATH both test images set, Docker's usual one.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Pushed describes an image in a registry, for tests that check IDs and
// digests (an image's ID is its config digest).
type Pushed struct {
	Ref            string          // "127.0.0.1:PORT/busybox:latest"
	ManifestDigest digest.Digest   // what the tag points at: a manifest, or an index for busybox-custom
	ConfigDigest   digest.Digest   // of the host platform's image
	Layers         []digest.Digest // compressed, as in the registry
	DiffIDs        []digest.Digest // uncompressed, as in the config's rootfs
}

// CustomImage lists what busybox-custom sets in its config, so tests can
// check that the daemon applies image defaults.
type CustomImage struct {
	Entrypoint []string
	Cmd        []string
	User       string // a user added by the second layer's /etc/passwd
	UID, GID   int
	WorkingDir string // owned by User, holds hello.txt
	Env        []string
	Labels     map[string]string
	// ExposedPort is in the config's ExposedPorts.
	ExposedPort string
	// EntrypointMarker is set in the environment by the entrypoint script, so
	// `env` shows whether the entrypoint ran.
	EntrypointMarker string
	// DefaultOutput is what running the image with no arguments prints.
	DefaultOutput string
	// DecoyArch is the architecture of the index's other manifest, listed
	// first so that a pull that ignores the platform picks it.
	DecoyArch string
}

// BusyboxCustom is what PushBusyboxCustom's image carries.
var BusyboxCustom = CustomImage{
	Entrypoint:       []string{"/usr/local/bin/entrypoint.sh"},
	Cmd:              []string{"cat", "/work/hello.txt"},
	User:             "arca",
	UID:              1000,
	GID:              1000,
	WorkingDir:       "/work",
	Env:              []string{DefaultPath, "GREETING=hello", "ARCA_IMAGE=busybox-custom"},
	Labels:           map[string]string{"org.arcavm.test": "busybox-custom", "maintainer": "arca"},
	ExposedPort:      "8080/tcp",
	EntrypointMarker: "ARCA_ENTRYPOINT=ran",
	DefaultOutput:    "hello from busybox-custom\n",
	DecoyArch:        decoyArch(),
}

func decoyArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

// PushBusybox pushes a real busybox image, built from Debian's busybox-static,
// to registry as busybox:latest and returns its reference. The image has one
// gzip layer (/bin/busybox with a symlink per applet under /bin, /etc/passwd
// with root, daemon and nobody, /etc/group, /tmp 1777, /root, /home), Cmd
// ["sh"], Docker's default PATH, a history entry and a created time. It uses
// Docker's schema2 media types, as Docker Hub's own busybox does.
func PushBusybox(t testing.TB, registry string) string {
	t.Helper()
	return PushBusyboxImage(t, registry).Ref
}

// PushBusyboxImage is PushBusybox returning digests too.
func PushBusyboxImage(t testing.TB, registry string) Pushed {
	t.Helper()
	p, err := pushBusybox(registry)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

// PushBusyboxCustom pushes busybox-custom:latest and returns its reference:
// busybox plus a second layer, with the config defaults listed in
// BusyboxCustom (entrypoint, user, working dir, env, labels, exposed port).
// It is an OCI image index with a decoy manifest for another architecture
// listed first, so it also tests that pulls choose the host's platform.
func PushBusyboxCustom(t testing.TB, registry string) string {
	t.Helper()
	return PushBusyboxCustomImage(t, registry).Ref
}

// PushBusyboxCustomImage is PushBusyboxCustom returning digests too.
func PushBusyboxCustomImage(t testing.TB, registry string) Pushed {
	t.Helper()
	p, err := pushBusyboxCustom(registry)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

// layer is one built layer, kept in memory (busybox is 2 MB).
type layer struct {
	gz     []byte
	digest digest.Digest // of gz
	diffID digest.Digest // of the tar
}

var (
	layersOnce              sync.Once
	baseLayer, customLayer  layer
	layersErr               error
	imageCreated            = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	errBusyboxNotStatic     = fmt.Errorf("%s is dynamically linked; install busybox-static", BusyboxPath)
	busyboxHistoryCreatedBy = "arca testenv: busybox from Debian's busybox-static"
)

func buildLayers() (layer, layer, error) {
	layersOnce.Do(func() {
		baseLayer, layersErr = buildBaseLayer()
		if layersErr == nil {
			customLayer, layersErr = buildCustomLayer()
		}
	})
	return baseLayer, customLayer, layersErr
}

func buildBaseLayer() (layer, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return layer{}, fmt.Errorf("read busybox (install busybox-static): %w", err)
	}
	// A dynamic busybox would find no libc in the image.
	if f, err := elf.NewFile(bytes.NewReader(bin)); err != nil {
		return layer{}, fmt.Errorf("parse %s: %w", BusyboxPath, err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return layer{}, errBusyboxNotStatic
			}
		}
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return layer{}, fmt.Errorf("busybox --list: %w", err)
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)

	var l layerWriter
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "sys", "usr", "var"} {
		l.dir(d, 0o755, 0)
	}
	l.dir("root", 0o700, 0)
	l.dir("tmp", 0o1777, 0)
	l.file("bin/busybox", 0o755, 0, bin)
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		l.symlink("bin/"+a, "busybox")
	}
	l.file("etc/passwd", 0o644, 0, []byte(basePasswd))
	l.file("etc/group", 0o644, 0, []byte(baseGroup))
	return l.finish()
}

const basePasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const baseGroup = `root:x:0:
daemon:x:1:
nobody:x:65534:
`

func buildCustomLayer() (layer, error) {
	c := BusyboxCustom
	var l layerWriter
	// The second layer replaces files of the first (whiteout-free override)
	// and adds new ones owned by a non-root user.
	l.dir("etc", 0o755, 0)
	l.file("etc/passwd", 0o644, 0, []byte(basePasswd+fmt.Sprintf("%s:x:%d:%d:%s:/home/%s:/bin/sh\n", c.User, c.UID, c.GID, c.User, c.User)))
	l.file("etc/group", 0o644, 0, []byte(baseGroup+fmt.Sprintf("%s:x:%d:\n", c.User, c.GID)))
	l.dir("home", 0o755, 0)
	l.dir("home/"+c.User, 0o755, c.UID)
	l.dir(strings.TrimPrefix(c.WorkingDir, "/"), 0o755, c.UID)
	l.file(strings.TrimPrefix(c.WorkingDir, "/")+"/hello.txt", 0o644, c.UID, []byte(c.DefaultOutput))
	l.dir("usr", 0o755, 0)
	l.dir("usr/local", 0o755, 0)
	l.dir("usr/local/bin", 0o755, 0)
	l.file(strings.TrimPrefix(c.Entrypoint[0], "/"), 0o755, 0, []byte(
		"#!/bin/sh\n# marks that the image's entrypoint ran, then runs the command\nexport "+c.EntrypointMarker+"\nexec \"$@\"\n"))
	return l.finish()
}

// layerWriter writes a deterministic tar (fixed times, root or given owner)
// so the same busybox binary always gives the same digests.
type layerWriter struct {
	buf bytes.Buffer
	tw  *tar.Writer
	err error
}

func (l *layerWriter) add(h *tar.Header, body []byte) {
	if l.err != nil {
		return
	}
	if l.tw == nil {
		l.tw = tar.NewWriter(&l.buf)
	}
	h.ModTime = imageCreated
	h.Format = tar.FormatPAX
	if err := l.tw.WriteHeader(h); err != nil {
		l.err = fmt.Errorf("tar header %s: %w", h.Name, err)
		return
	}
	if len(body) > 0 {
		if _, err := l.tw.Write(body); err != nil {
			l.err = fmt.Errorf("tar body %s: %w", h.Name, err)
		}
	}
}

func (l *layerWriter) dir(name string, mode int64, uid int) {
	l.add(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid}, nil)
}

func (l *layerWriter) file(name string, mode int64, uid int, body []byte) {
	l.add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: uid, Size: int64(len(body))}, body)
}

func (l *layerWriter) symlink(name, target string) {
	l.add(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil)
}

func (l *layerWriter) finish() (layer, error) {
	if l.err == nil && l.tw != nil {
		l.err = l.tw.Close()
	}
	if l.err != nil {
		return layer{}, l.err
	}
	raw := l.buf.Bytes()
	var gz bytes.Buffer
	// No name or time in the gzip header, so the digest depends on content only.
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return layer{}, fmt.Errorf("gzip layer: %w", err)
	}
	if _, err := zw.Write(raw); err != nil {
		return layer{}, fmt.Errorf("gzip layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return layer{}, fmt.Errorf("gzip layer: %w", err)
	}
	return layer{gz: gz.Bytes(), digest: digest.FromBytes(gz.Bytes()), diffID: digest.FromBytes(raw)}, nil
}

// imageSpec is what one manifest of a test image is made of.
type imageSpec struct {
	arch      string
	layers    []layer
	config    ocispec.ImageConfig
	history   []ocispec.History
	dockerMTs bool // schema2 media types instead of OCI
}

// built is a manifest and its config, serialized.
type built struct {
	manifest, config []byte
	manifestMT       string
	configDigest     digest.Digest
}

func (s imageSpec) build() (built, error) {
	img := ocispec.Image{
		Created:  &imageCreated,
		Platform: ocispec.Platform{OS: "linux", Architecture: s.arch},
		Config:   s.config,
		RootFS:   ocispec.RootFS{Type: "layers"},
		History:  s.history,
	}
	for _, l := range s.layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.diffID)
	}
	cfg, err := json.Marshal(img)
	if err != nil {
		return built{}, fmt.Errorf("marshal image config: %w", err)
	}
	manifestMT, configMT, layerMT := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayerGzip
	if s.dockerMTs {
		manifestMT, configMT, layerMT = mediatype.Docker2Manifest, mediatype.Docker2ImageConfig, mediatype.Docker2LayerGzip
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: manifestMT,
		Config:    ocispec.Descriptor{MediaType: configMT, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
	}
	for _, l := range s.layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerMT, Digest: l.digest, Size: int64(len(l.gz))})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return built{}, fmt.Errorf("marshal manifest: %w", err)
	}
	return built{manifest: raw, config: cfg, manifestMT: manifestMT, configDigest: m.Config.Digest}, nil
}

func busyboxSpec() (imageSpec, error) {
	base, _, err := buildLayers()
	if err != nil {
		return imageSpec{}, err
	}
	return imageSpec{
		arch:   runtime.GOARCH,
		layers: []layer{base},
		config: ocispec.ImageConfig{
			Env: []string{DefaultPath},
			Cmd: []string{"sh"},
		},
		history: []ocispec.History{{
			Created:   &imageCreated,
			CreatedBy: busyboxHistoryCreatedBy,
			Comment:   "arca testenv",
		}},
		dockerMTs: true,
	}, nil
}

func pushBusybox(registry string) (Pushed, error) {
	s, err := busyboxSpec()
	if err != nil {
		return Pushed{}, err
	}
	b, err := s.build()
	if err != nil {
		return Pushed{}, err
	}
	p := newPusher(registry)
	r, err := ref.New(registry + "/busybox:latest")
	if err != nil {
		return Pushed{}, fmt.Errorf("parse reference: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer p.rc.Close(ctx, r)
	md, err := p.pushImage(ctx, r, s, b, false)
	if err != nil {
		return Pushed{}, err
	}
	return pushed(r, md, b.configDigest, s.layers), nil
}

func pushBusyboxCustom(registry string) (Pushed, error) {
	s, err := busyboxSpec()
	if err != nil {
		return Pushed{}, err
	}
	_, custom, err := buildLayers()
	if err != nil {
		return Pushed{}, err
	}
	c := BusyboxCustom
	labels := make(map[string]string, len(c.Labels))
	for k, v := range c.Labels {
		labels[k] = v
	}
	s.layers = append(s.layers, custom)
	s.dockerMTs = false
	s.config = ocispec.ImageConfig{
		User:         c.User,
		ExposedPorts: map[string]struct{}{c.ExposedPort: {}},
		Env:          append([]string(nil), c.Env...),
		Entrypoint:   append([]string(nil), c.Entrypoint...),
		Cmd:          append([]string(nil), c.Cmd...),
		WorkingDir:   c.WorkingDir,
		Labels:       labels,
	}
	s.history = append(s.history, ocispec.History{
		Created:   &imageCreated,
		CreatedBy: "arca testenv: user, working dir, entrypoint script",
	})
	host, err := s.build()
	if err != nil {
		return Pushed{}, err
	}
	decoySpec := s
	decoySpec.arch = c.DecoyArch
	decoy, err := decoySpec.build()
	if err != nil {
		return Pushed{}, err
	}

	p := newPusher(registry)
	r, err := ref.New(registry + "/busybox-custom:latest")
	if err != nil {
		return Pushed{}, fmt.Errorf("parse reference: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer p.rc.Close(ctx, r)

	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	// The decoy goes first: a pull that takes the first entry gets the wrong
	// architecture, which `docker image inspect` then shows.
	for _, e := range []struct {
		s imageSpec
		b built
	}{{decoySpec, decoy}, {s, host}} {
		md, err := p.pushImage(ctx, r, e.s, e.b, true)
		if err != nil {
			return Pushed{}, err
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: e.b.manifestMT,
			Digest:    md,
			Size:      int64(len(e.b.manifest)),
			Platform:  &ocispec.Platform{OS: "linux", Architecture: e.s.arch},
		})
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return Pushed{}, fmt.Errorf("marshal index: %w", err)
	}
	md, err := p.putManifest(ctx, r, raw, ocispec.MediaTypeImageIndex, false)
	if err != nil {
		return Pushed{}, err
	}
	return pushed(r, md, host.configDigest, s.layers), nil
}

func pushed(r ref.Ref, md, cd digest.Digest, layers []layer) Pushed {
	p := Pushed{Ref: r.CommonName(), ManifestDigest: md, ConfigDigest: cd}
	for _, l := range layers {
		p.Layers = append(p.Layers, l.digest)
		p.DiffIDs = append(p.DiffIDs, l.diffID)
	}
	return p
}

type pusher struct {
	rc *regclient.RegClient
}

func newPusher(registry string) pusher {
	// Loopback registries are plain HTTP in regclient already; saying so
	// keeps a registry on another address (a netns test host) working too.
	return pusher{rc: regclient.New(
		regclient.WithConfigHost(config.Host{Name: registry, TLS: config.TLSDisabled}),
		regclient.WithRetryLimit(2),
		regclient.WithUserAgent("arca-testenv"),
	)}
}

// pushImage uploads the blobs and the manifest of one image; as an index
// child it is pushed by digest, else to r's tag. It returns the manifest
// digest.
func (p pusher) pushImage(ctx context.Context, r ref.Ref, s imageSpec, b built, child bool) (digest.Digest, error) {
	for _, l := range s.layers {
		if err := p.putBlob(ctx, r, l.gz); err != nil {
			return "", err
		}
	}
	if err := p.putBlob(ctx, r, b.config); err != nil {
		return "", err
	}
	return p.putManifest(ctx, r, b.manifest, b.manifestMT, child)
}

func (p pusher) putBlob(ctx context.Context, r ref.Ref, data []byte) error {
	d := descriptor.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	if _, err := p.rc.BlobPut(ctx, r, d, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("push blob %s to %s: %w", d.Digest, r.CommonName(), err)
	}
	return nil
}

func (p pusher) putManifest(ctx context.Context, r ref.Ref, raw []byte, mt string, child bool) (digest.Digest, error) {
	d := digest.FromBytes(raw)
	m, err := manifest.New(manifest.WithRaw(raw), manifest.WithDesc(descriptor.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}))
	if err != nil {
		return "", fmt.Errorf("parse manifest %s: %w", d, err)
	}
	target := r
	var opts []regclient.ManifestOpts
	if child {
		target = r.SetDigest(d.String())
		opts = append(opts, regclient.WithManifestChild())
	}
	if err := p.rc.ManifestPut(ctx, target, m, opts...); err != nil {
		return "", fmt.Errorf("push manifest %s to %s: %w", d, target.CommonName(), err)
	}
	return d, nil
}
