package imagearchive

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/ulikunitz/xz"
)

func TestAddLayer(t *testing.T) {
	s := newStores(t)
	base := layerTar(t, map[string]string{"etc/os": "base"})
	parent := makeImage(t, s, "amd64", false, [2][]byte{base, gz(base)})
	top := layerTar(t, map[string]string{"x": "hello"})
	for _, tc := range []struct {
		name   string
		parent bool
		layer  []byte
	}{
		{"commit", true, top},
		{"import", false, top},
		{"import gzip", false, gz(top)},
		{"import xz", false, xzed(t, top)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg dockerspec.DockerOCIImage
			cfg.OS, cfg.Architecture = "linux", "amd64"
			cfg.Config.Cmd = []string{"cat", "/x"}
			cfg.History = []ocispec.History{{Comment: tc.name}}
			p := parent
			if !tc.parent {
				p = nil
			}
			var legacy Legacy
			legacy.Comment = "msg " + tc.name
			if tc.parent {
				legacy.ContainerConfig = &container.Config{Cmd: []string{"/bin/sh", "-c", "#(nop) COPY file:x in / "}}
			}
			rec, err := AddLayer(p, cfg, legacy, bytes.NewReader(tc.layer), s.bs, s.ls)
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if tc.parent {
				want = 2
			}
			if len(rec.Layers) != want {
				t.Fatalf("%d layers, want %d", len(rec.Layers), want)
			}
			last := rec.Layers[len(rec.Layers)-1]
			if last.DiffID != digest.FromBytes(top) || last.Digest != last.DiffID {
				t.Errorf("new layer %+v, want diff id %s stored plain", last, digest.FromBytes(top))
			}
			b, err := os.ReadFile(filepath.Join(s.ls.Dir(last.ChainID), "x"))
			if err != nil || string(b) != "hello" {
				t.Errorf("unpacked x: %q, %v", b, err)
			}
			got, err := readConfig(s.bs, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			l, err := ReadLegacy(s.bs, rec.ID)
			if err != nil || l.Comment != "msg "+tc.name {
				t.Errorf("comment %q, %v", l.Comment, err)
			}
			if tc.parent != (l.ContainerConfig != nil) || tc.parent && l.ContainerConfig.Cmd[2] != "#(nop) COPY file:x in / " {
				t.Errorf("container config %+v", l.ContainerConfig)
			}
			if tc.parent != (rec.Parent == parent.ID) || !tc.parent && rec.Parent != "" {
				t.Errorf("parent %q, want the parent's ID only for a commit", rec.Parent)
			}
			if len(got.Config.Cmd) != 2 || len(got.History) != 1 {
				t.Errorf("config %+v history %+v", got.Config, got.History)
			}
			if len(got.RootFS.DiffIDs) != want || got.RootFS.DiffIDs[want-1] != last.DiffID || got.Created == nil {
				t.Errorf("config rootfs %+v created %v", got.RootFS, got.Created)
			}
		})
	}
}

func xzed(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
