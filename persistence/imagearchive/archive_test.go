package imagearchive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/arcavm/arca/internal/prereq"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/layers"
)

type stores struct {
	dir string
	bs  *blobs.Store
	ls  *layers.Store
}

func newStores(t *testing.T) *stores {
	t.Helper()
	if os.Geteuid() != 0 {
		prereq.Missing(t, "unpacking layers needs root")
	}
	dir := t.TempDir()
	bs, err := blobs.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := layers.Open(filepath.Join(dir, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	return &stores{dir: dir, bs: bs, ls: ls}
}

func layerTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(1700000000, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	return buf.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zst(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func configJSON(t *testing.T, arch string, diffIDs ...digest.Digest) []byte {
	created := time.Date(2023, 3, 4, 5, 6, 7, 0, time.UTC)
	b, err := json.Marshal(ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t *testing.T, bs *blobs.Store, b []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	if _, err := bs.Put(bytes.NewReader(b), d); err != nil {
		t.Fatal(err)
	}
	return d
}

// makeImage stores an image's blobs (layers compressed as given) and
// returns its record, as a pull would leave it.
func makeImage(t *testing.T, s *stores, arch string, withManifest bool, layerBlobs ...[2][]byte) *persistence.ImageRecord {
	t.Helper()
	rec := &persistence.ImageRecord{OS: "linux", Architecture: arch}
	var diffIDs []digest.Digest
	var descs []ocispec.Descriptor
	for _, lb := range layerBlobs {
		plain, stored := lb[0], lb[1]
		d := put(t, s.bs, stored)
		diffIDs = append(diffIDs, digest.FromBytes(plain))
		descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(stored))})
		rec.Layers = append(rec.Layers, persistence.LayerRef{Digest: d, Size: int64(len(stored)), DiffID: diffIDs[len(diffIDs)-1]})
	}
	for i, c := range layers.ChainIDs(diffIDs) {
		rec.Layers[i].ChainID = c
	}
	cfg := configJSON(t, arch, diffIDs...)
	rec.ID = put(t, s.bs, cfg)
	if withManifest {
		m, _ := json.Marshal(ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: rec.ID, Size: int64(len(cfg))},
			Layers:    descs,
		})
		rec.ManifestDigest = put(t, s.bs, m)
		rec.ManifestMediaType = ocispec.MediaTypeImageManifest
	}
	return rec
}

// tarEntries lists an archive's regular files with their contents.
func tarEntries(t *testing.T, b []byte) (names []string, files map[string][]byte) {
	t.Helper()
	files = map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		c, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		files[h.Name] = c
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	src := newStores(t)
	base := layerTar(t, map[string]string{"etc/os-release": "ID=test\n", "bin/sh": "shell"})
	top := layerTar(t, map[string]string{"app/run": "run"})
	other := layerTar(t, map[string]string{"other": "zstd layer"})
	plain := layerTar(t, map[string]string{"plain": "uncompressed layer"})
	img1 := makeImage(t, src, "amd64", true, [2][]byte{base, gz(base)}, [2][]byte{top, gz(top)})
	// no stored manifest: Save must write one
	img2 := makeImage(t, src, "arm64", false, [2][]byte{base, gz(base)}, [2][]byte{other, zst(other)}, [2][]byte{plain, plain})

	var out bytes.Buffer
	err := Save(&out, []SaveItem{
		{Record: img1, Tags: []string{"busybox:latest", "127.0.0.1:5000/busybox:v1"}},
		{Record: img2},
	}, src.bs)
	if err != nil {
		t.Fatal(err)
	}

	names, files := tarEntries(t, out.Bytes())
	counts := map[string]int{}
	for _, n := range names {
		counts[n]++
	}
	for n, c := range counts {
		if c > 1 {
			t.Errorf("%s written %d times", n, c)
		}
	}
	for _, want := range []string{"index.json", "manifest.json", "oci-layout", "repositories", blobPath(img1.ID), blobPath(img1.ManifestDigest), blobPath(img2.Layers[2].Digest)} {
		if _, ok := files[want]; !ok {
			t.Errorf("archive lacks %s", want)
		}
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", files["oci-layout"])
	}
	var entries []manifestEntry
	if err := json.Unmarshal(files["manifest.json"], &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || !slices.Equal(entries[0].RepoTags, []string{"busybox:latest", "127.0.0.1:5000/busybox:v1"}) || entries[1].RepoTags != nil ||
		entries[0].Config != "blobs/sha256/"+img1.ID.Encoded() || len(entries[1].Layers) != 3 {
		t.Errorf("manifest.json = %s", files["manifest.json"])
	}
	var index ocispec.Index
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 3 {
		t.Fatalf("index.json = %s", files["index.json"])
	}
	if a := index.Manifests[0].Annotations; a[annotationImageName] != "docker.io/library/busybox:latest" || a[annotationRefName] != "latest" || index.Manifests[0].Digest != img1.ManifestDigest {
		t.Errorf("index entry 0: %+v", index.Manifests[0])
	}
	if a := index.Manifests[1].Annotations; a[annotationImageName] != "127.0.0.1:5000/busybox:v1" || a[annotationRefName] != "v1" {
		t.Errorf("index entry 1: %+v", index.Manifests[1])
	}
	if index.Manifests[2].Annotations != nil {
		t.Errorf("untagged image annotated: %+v", index.Manifests[2])
	}
	var generated ocispec.Manifest
	if err := json.Unmarshal(files[blobPath(index.Manifests[2].Digest)], &generated); err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayer}
	for i, l := range generated.Layers {
		if l.MediaType != wantTypes[i] || l.Digest != img2.Layers[i].Digest {
			t.Errorf("generated manifest layer %d: %+v", i, l)
		}
	}
	if generated.Config.Digest != img2.ID {
		t.Errorf("generated manifest config %s", generated.Config.Digest)
	}
	var repos map[string]map[string]string
	json.Unmarshal(files["repositories"], &repos)
	if repos["busybox"]["latest"] != img1.ID.Encoded() || repos["127.0.0.1:5000/busybox"]["v1"] != img1.ID.Encoded() {
		t.Errorf("repositories = %s", files["repositories"])
	}

	// and back, into empty stores
	dst := newStores(t)
	var progress []string
	got, err := Load(bytes.NewReader(out.Bytes()), dst.bs, dst.ls, func(s string) { progress = append(progress, s) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d images", len(got))
	}
	for i, want := range []*persistence.ImageRecord{img1, img2} {
		g := got[i]
		if g.ID != want.ID || g.Architecture != want.Architecture || g.OS != "linux" || !g.Created.Equal(time.Date(2023, 3, 4, 5, 6, 7, 0, time.UTC)) {
			t.Errorf("image %d: %+v", i, g)
		}
		if len(g.Layers) != len(want.Layers) {
			t.Fatalf("image %d: %d layers", i, len(g.Layers))
		}
		var size int64
		for j, l := range g.Layers {
			w := want.Layers[j]
			if l.Digest != w.Digest || l.DiffID != w.DiffID || l.ChainID != w.ChainID || l.Size != w.Size || l.MediaType == "" {
				t.Errorf("image %d layer %d: %+v", i, j, l)
			}
			if !dst.ls.Has(l.ChainID) || !dst.bs.Has(l.Digest) {
				t.Errorf("image %d layer %d not stored", i, j)
			}
			size += l.UnpackedSize
		}
		if g.Size != size || size == 0 {
			t.Errorf("image %d size %d, layers add to %d", i, g.Size, size)
		}
		if g.ManifestDigest == "" || !dst.bs.Has(g.ManifestDigest) {
			t.Errorf("image %d manifest %q not kept", i, g.ManifestDigest)
		}
	}
	if got[0].ManifestDigest != img1.ManifestDigest {
		t.Error("the stored manifest was not saved as is")
	}
	if !slices.Equal(got[0].RepoTags, []string{"busybox:latest", "127.0.0.1:5000/busybox:v1"}) || got[1].RepoTags != nil {
		t.Errorf("tags %v / %v", got[0].RepoTags, got[1].RepoTags)
	}
	if b, _ := os.ReadFile(filepath.Join(dst.ls.Dir(got[1].Layers[1].ChainID), "other")); string(b) != "zstd layer" {
		t.Errorf("zstd layer content %q", b)
	}
	// the shared base layer is unpacked once
	if n := strings.Count(strings.Join(progress, "\n"), "Loading layer"); n != 4 {
		t.Errorf("progress %q", progress)
	}

	// loading again finds everything in place
	again, err := Load(bytes.NewReader(out.Bytes()), dst.bs, dst.ls, nil)
	if err != nil || len(again) != 2 || again[1].Size != got[1].Size {
		t.Errorf("second load: %v", err)
	}

	// a second save of the same images gives the same bytes
	var out2 bytes.Buffer
	if err := Save(&out2, []SaveItem{{Record: img1, Tags: []string{"busybox:latest", "127.0.0.1:5000/busybox:v1"}}, {Record: img2}}, src.bs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), out2.Bytes()) {
		t.Error("save is not deterministic")
	}
}

func TestSaveMissingBlobWritesNothing(t *testing.T) {
	s := newStores(t)
	l := layerTar(t, map[string]string{"f": "x"})
	rec := makeImage(t, s, "amd64", true, [2][]byte{l, gz(l)})
	if err := s.bs.Delete(rec.Layers[0].Digest); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := Save(&out, []SaveItem{{Record: rec, Tags: []string{"x:1"}}}, s.bs)
	if err == nil || !strings.Contains(err.Error(), "not stored") {
		t.Fatalf("err = %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("wrote %d bytes before failing", out.Len())
	}
}

// legacyEntry is one file of a hand-made archive.
type legacyEntry struct {
	name, link string
	content    []byte
}

func writeTar(t *testing.T, entries []legacyEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.content))}
		if e.link != "" {
			h = &tar.Header{Typeflag: tar.TypeSymlink, Name: e.name, Linkname: e.link, Mode: 0o777}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.content)
	}
	tw.Close()
	return buf.Bytes()
}

// legacyArchive is what docker save wrote before Docker 25: per layer a
// directory with layer.tar, a repeated layer as a symlink to the first.
func legacyArchive(t *testing.T, manifestFirst bool) ([]byte, digest.Digest, []byte) {
	l1 := layerTar(t, map[string]string{"etc/hostname": "legacy\n"})
	l2 := layerTar(t, map[string]string{"usr/bin/tool": "tool"})
	d1, d2 := digest.FromBytes(l1), digest.FromBytes(l2)
	cfg := configJSON(t, "amd64", d1, d2, d1)
	cfgID := digest.FromBytes(cfg)
	id1, id2, id3 := strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)
	manifest, _ := json.Marshal([]manifestEntry{{
		Config:   cfgID.Encoded() + ".json",
		RepoTags: []string{"legacy:1.0"},
		Layers:   []string{id1 + "/layer.tar", id2 + "/layer.tar", id3 + "/layer.tar"},
	}})
	entries := []legacyEntry{
		{name: id1 + "/VERSION", content: []byte("1.0")},
		{name: id1 + "/json", content: []byte(`{"id":"` + id1 + `"}`)},
		{name: id1 + "/layer.tar", content: l1},
		{name: id2 + "/VERSION", content: []byte("1.0")},
		{name: id2 + "/layer.tar", content: l2},
		{name: id3 + "/layer.tar", link: "../" + id1 + "/layer.tar"},
		{name: cfgID.Encoded() + ".json", content: cfg},
		{name: "repositories", content: []byte(`{"legacy":{"1.0":"` + cfgID.Encoded() + `"}}`)},
	}
	m := legacyEntry{name: "manifest.json", content: manifest}
	if manifestFirst {
		entries = append([]legacyEntry{m}, entries...)
	} else {
		entries = append(entries, m)
	}
	return writeTar(t, entries), cfgID, l1
}

func TestLoadLegacy(t *testing.T) {
	for _, manifestFirst := range []bool{true, false} {
		name := "manifest last"
		if manifestFirst {
			name = "manifest first"
		}
		t.Run(name, func(t *testing.T) {
			s := newStores(t)
			archive, cfgID, l1 := legacyArchive(t, manifestFirst)
			got, err := Load(bytes.NewReader(archive), s.bs, s.ls, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d images", len(got))
			}
			img := got[0]
			if img.ID != cfgID || !slices.Equal(img.RepoTags, []string{"legacy:1.0"}) || len(img.Layers) != 3 || img.ManifestDigest != "" {
				t.Errorf("record %+v", img)
			}
			if img.Layers[0].Digest != digest.FromBytes(l1) || img.Layers[2].Digest != img.Layers[0].Digest || img.Layers[0].MediaType != ocispec.MediaTypeImageLayer {
				t.Errorf("layers %+v", img.Layers)
			}
			if b, _ := os.ReadFile(filepath.Join(s.ls.Dir(img.Layers[1].ChainID), "usr/bin/tool")); string(b) != "tool" {
				t.Errorf("tool = %q", b)
			}
			// a legacy image loaded here saves in the new format
			var out bytes.Buffer
			if err := Save(&out, []SaveItem{{Record: img, Tags: img.RepoTags}}, s.bs); err != nil {
				t.Fatal(err)
			}
			again, err := Load(bytes.NewReader(out.Bytes()), s.bs, s.ls, nil)
			if err != nil || again[0].ID != img.ID {
				t.Errorf("reload of the saved legacy image: %v", err)
			}
		})
	}
}

// assertTrustworthy checks that a failed load left nothing a later load
// could mistake: no unpacked layers, no temp files, and every stored blob
// under its true digest.
func assertTrustworthy(t *testing.T, s *stores) {
	t.Helper()
	if entries, _ := os.ReadDir(filepath.Join(s.dir, "layers")); len(entries) != 0 {
		t.Errorf("%d entries in the layer store", len(entries))
	}
	blobDir := filepath.Join(s.dir, "blobs", "sha256")
	entries, _ := os.ReadDir(blobDir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(blobDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if digest.FromBytes(b).Encoded() != e.Name() {
			t.Errorf("blob %s does not hold its digest's content", e.Name())
		}
	}
}

func TestLoadBrokenArchives(t *testing.T) {
	src := newStores(t)
	l := layerTar(t, map[string]string{"big": strings.Repeat("payload ", 20000)})
	rec := makeImage(t, src, "amd64", true, [2][]byte{l, l})
	var saved bytes.Buffer
	if err := Save(&saved, []SaveItem{{Record: rec, Tags: []string{"broken:1"}}}, src.bs); err != nil {
		t.Fatal(err)
	}
	full := saved.Bytes()
	layerAt := bytes.Index(full, []byte("payload payload"))
	manifestAt := bytes.LastIndex(full, []byte("manifest.json"))

	flipped := bytes.Clone(full)
	flipped[layerAt+100] ^= 0xff

	legacy, _, _ := legacyArchive(t, false)
	legacyBad := bytes.Replace(legacy, []byte("legacy\n"), []byte("LEGACY\n"), 1)

	noManifest := writeTar(t, []legacyEntry{{name: "x/layer.tar", content: l}})
	missingLayer, _ := json.Marshal([]manifestEntry{{Config: blobPath(rec.ID), Layers: []string{"nowhere/layer.tar"}}})
	dangling := writeTar(t, []legacyEntry{{name: "manifest.json", content: missingLayer}})

	tests := []struct {
		name    string
		archive []byte
		wantErr string
	}{
		{"truncated inside a layer", full[:layerAt+5000], "unexpected EOF"},
		{"truncated before manifest.json", full[:manifestAt-10], "unexpected EOF"},
		{"truncated at an entry boundary", full[:1024], "no end-of-archive marker"},
		{"corrupt blob", flipped, "digest mismatch"},
		{"corrupt legacy layer", legacyBad, "diff id mismatch"},
		{"no manifest", noManifest, "no manifest.json"},
		{"dangling layer path", dangling, "no file"},
		{"not a tar", []byte(strings.Repeat("garbage!", 200)), "read archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStores(t)
			_, err := Load(bytes.NewReader(tt.archive), s.bs, s.ls, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
			assertTrustworthy(t, s)
			// whatever the failure left, the whole archive loads after it
			if _, err := Load(bytes.NewReader(full), s.bs, s.ls, nil); err != nil {
				t.Errorf("load after failure: %v", err)
			}
		})
	}
}

// A plain OCI layout, with no manifest.json, loads from index.json.
func TestLoadIndexOnly(t *testing.T) {
	src := newStores(t)
	l := layerTar(t, map[string]string{"f": "oci"})
	rec := makeImage(t, src, "amd64", true, [2][]byte{l, gz(l)})
	var saved bytes.Buffer
	if err := Save(&saved, []SaveItem{{Record: rec, Tags: []string{"oci:1", "oci:2"}}}, src.bs); err != nil {
		t.Fatal(err)
	}
	names, files := tarEntries(t, saved.Bytes())
	var entries []legacyEntry
	for _, n := range names {
		if n != "manifest.json" && n != "repositories" {
			entries = append(entries, legacyEntry{name: n, content: files[n]})
		}
	}
	dst := newStores(t)
	got, err := Load(bytes.NewReader(writeTar(t, entries)), dst.bs, dst.ls, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != rec.ID || !slices.Equal(got[0].RepoTags, []string{"docker.io/library/oci:1", "docker.io/library/oci:2"}) {
		t.Errorf("got %+v", got[0])
	}
}
