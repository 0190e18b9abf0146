package imagearchive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/arcavm/arca/internal/treecheck"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/layers"
)

// fuzzHostDir stands for the rest of the host: a fixed path so that seeds
// (and what the fuzzer makes of them) can name it from inside a layer. It
// is only ever read here.
const fuzzHostDir = treecheck.HostStandIn

type fuzzFile struct {
	name, link string
	typ        byte
	body       []byte
}

func fuzzTarOf(files ...fuzzFile) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Typeflag: f.typ, Name: f.name, Linkname: f.link, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
		if f.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		tw.Write(f.body)
	}
	tw.Close()
	return buf.Bytes()
}

func gzBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func fuzzConfig(diffIDs ...digest.Digest) []byte {
	created := time.Date(2023, 3, 4, 5, 6, 7, 0, time.UTC)
	return mustJSON(ocispec.Image{Created: &created, Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
}

// ociSeed is a docker save archive as Docker 25 writes it: blobs, an
// index, manifest.json and oci-layout. withManifestJSON false gives a
// plain OCI layout.
func ociSeed(layer []byte, compressed bool, withManifestJSON bool) []byte {
	stored := layer
	mt := ocispec.MediaTypeImageLayer
	if compressed {
		stored, mt = gzBytes(layer), ocispec.MediaTypeImageLayerGzip
	}
	ld := digest.FromBytes(stored)
	cfg := fuzzConfig(digest.FromBytes(layer))
	cd := digest.FromBytes(cfg)
	man := mustJSON(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers: []ocispec.Descriptor{{MediaType: mt, Digest: ld, Size: int64(len(stored))}}})
	md := digest.FromBytes(man)
	index := mustJSON(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(man)),
			Annotations: map[string]string{annotationImageName: "docker.io/library/fuzz:latest", annotationRefName: "latest"}}}})
	files := []fuzzFile{
		{name: blobsDir, typ: tar.TypeDir},
		{name: blobPath(ld), body: stored},
		{name: blobPath(cd), body: cfg},
		{name: blobPath(md), body: man},
		{name: indexFile, body: index},
		{name: layoutFile, body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	}
	if withManifestJSON {
		files = append(files, fuzzFile{name: manifestFile, body: mustJSON([]manifestEntry{{Config: blobPath(cd), RepoTags: []string{"fuzz:latest"}, Layers: []string{blobPath(ld)}}})})
	}
	return fuzzTarOf(files...)
}

// legacySeed is the layout before Docker 25: a directory per layer, a
// repeated layer as a symlink to the first copy.
func legacySeed(l1, l2 []byte) []byte {
	cfg := fuzzConfig(digest.FromBytes(l1), digest.FromBytes(l2), digest.FromBytes(l1))
	cd := digest.FromBytes(cfg)
	id1, id2, id3 := strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)
	return fuzzTarOf(
		fuzzFile{name: manifestFile, body: mustJSON([]manifestEntry{{Config: cd.Encoded() + ".json", RepoTags: []string{"legacy:1.0"},
			Layers: []string{id1 + "/layer.tar", id2 + "/layer.tar", id3 + "/layer.tar"}}})},
		fuzzFile{name: id1 + "/VERSION", body: []byte("1.0")},
		fuzzFile{name: id1 + "/layer.tar", body: l1},
		fuzzFile{name: id2 + "/layer.tar", body: l2},
		fuzzFile{name: id3 + "/layer.tar", typ: tar.TypeSymlink, link: "../" + id1 + "/layer.tar"},
		fuzzFile{name: cd.Encoded() + ".json", body: cfg},
		fuzzFile{name: repositoriesFile, body: []byte(`{"legacy":{"1.0":"` + cd.Encoded() + `"}}`)},
	)
}

// FuzzLoad feeds any archive to docker load's reader, with empty stores
// on a small tmpfs. It loads or fails with an error; whatever it leaves in
// the blob store is content under its true digest (as Load promises); the
// images it returns are whole (config, blobs and unpacked layers present,
// chain IDs and sizes as the config says); and nothing a layer holds
// lands outside the stores: not beside them, not in the host stand-in.
func FuzzLoad(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("unpacking layers needs root")
	}
	const climb = "../../../../../../../../../../../.."
	plain := fuzzTarOf(fuzzFile{name: "etc/os-release", body: []byte("ID=fuzz\n")}, fuzzFile{name: "bin/", typ: tar.TypeDir}, fuzzFile{name: "bin/sh", body: []byte("shell")})
	// One way out per layer: the unpacker stops at the first it refuses.
	var hostile [][]byte
	for _, files := range [][]fuzzFile{
		{{name: "out", typ: tar.TypeSymlink, link: fuzzHostDir}, {name: "out/pwned", body: []byte("x")}},
		{{name: "up", typ: tar.TypeSymlink, link: climb + fuzzHostDir}, {name: "up/pwned", body: []byte("x")}},
		{{name: climb + fuzzHostDir + "/dotdot", body: []byte("x")}},
		{{name: "hl", typ: tar.TypeLink, link: climb + fuzzHostDir + "/secret"}},
		{{name: "sib", typ: tar.TypeSymlink, link: "../../../../../../outside"}, {name: "sib/pwned", body: []byte("x")}},
		{{name: "d/", typ: tar.TypeDir}, {name: "d/.wh..wh..opq"}, {name: "etc/.wh.passwd"}, {name: "d/l", typ: tar.TypeSymlink, link: "/"}, {name: "d/l", body: []byte("replaces the link")}},
	} {
		hostile = append(hostile, fuzzTarOf(files...))
	}
	for _, seed := range [][]byte{
		ociSeed(plain, true, true),
		ociSeed(plain, false, false),
		ociSeed(hostile[0], true, true),
		ociSeed(hostile[1], false, true),
		ociSeed(hostile[2], false, true),
		ociSeed(hostile[3], false, true),
		ociSeed(hostile[4], false, true),
		ociSeed(hostile[5], true, true),
		legacySeed(plain, hostile[1]),
		fuzzTarOf(fuzzFile{name: manifestFile, body: []byte(`[{"Config":"c.json","Layers":["l/layer.tar"]}]`)}, fuzzFile{name: "c.json", body: []byte(`{"rootfs":{"diff_ids":["sha256:zz"]}}`)}),
		fuzzTarOf(fuzzFile{name: indexFile, body: []byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:../../etc"}]}`)}),
		fuzzTarOf(fuzzFile{name: "a", typ: tar.TypeSymlink, link: "b"}, fuzzFile{name: "b", typ: tar.TypeSymlink, link: "a"}, fuzzFile{name: manifestFile, body: []byte(`[{"Config":"a"}]`)}),
		fuzzTarOf(fuzzFile{name: blobsDir + "xyz", body: []byte("x")}),
		{},
		[]byte("not a tar"),
	} {
		f.Add(seed)
	}

	hostBefore := treecheck.Baseline(f)
	mnt := treecheck.SmallTmpfs(f, "64m")

	f.Fuzz(func(t *testing.T, archive []byte) {
		base, err := os.MkdirTemp(mnt, "case")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(base)
		outside := filepath.Join(base, "outside")
		os.MkdirAll(outside, 0o755)
		os.WriteFile(outside+"/secret", []byte("sibling secret"), 0o600)
		stores := filepath.Join(base, "a", "b", "stores")
		bs, err := blobs.Open(filepath.Join(stores, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		ls, err := layers.Open(filepath.Join(stores, "layers"))
		if err != nil {
			t.Fatal(err)
		}
		sibBefore, err := treecheck.Snapshot(outside, "")
		if err != nil {
			t.Fatal(err)
		}

		recs, loadErr := Load(bytes.NewReader(archive), bs, ls, nil)

		if loadErr == nil {
			for _, rec := range recs {
				if !bs.Has(rec.ID) {
					t.Fatalf("image %s: config not stored", rec.ID)
				}
				cfg, err := readConfig(bs, rec.ID)
				if err != nil {
					t.Fatalf("image %s: stored config unreadable: %v", rec.ID, err)
				}
				if len(cfg.RootFS.DiffIDs) != len(rec.Layers) {
					t.Fatalf("image %s: %d layers, config lists %d", rec.ID, len(rec.Layers), len(cfg.RootFS.DiffIDs))
				}
				chains := layers.ChainIDs(cfg.RootFS.DiffIDs)
				var size int64
				for i, l := range rec.Layers {
					if l.DiffID != cfg.RootFS.DiffIDs[i] || l.ChainID != chains[i] || !bs.Has(l.Digest) || !ls.Has(l.ChainID) {
						t.Fatalf("image %s layer %d: %+v not whole", rec.ID, i, l)
					}
					size += l.UnpackedSize
				}
				if size != rec.Size {
					t.Fatalf("image %s: size %d, layers add to %d", rec.ID, rec.Size, size)
				}
				if rec.ManifestDigest != "" && !bs.Has(rec.ManifestDigest) {
					t.Fatalf("image %s: manifest %s not stored", rec.ID, rec.ManifestDigest)
				}
			}
		}
		// What the blob store holds is content under its true digest.
		ents, _ := os.ReadDir(filepath.Join(stores, "blobs", "sha256"))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(stores, "blobs", "sha256", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != e.Name() {
				t.Fatalf("blob %s holds content of digest %x (load error: %v)", e.Name(), sum, loadErr)
			}
		}
		// Nothing outside the stores.
		top, _ := os.ReadDir(base)
		if len(top) != 2 {
			t.Fatalf("load made entries beside the stores: %v", top)
		}
		if after, err := treecheck.Snapshot(outside, ""); err != nil || treecheck.Diff(sibBefore, after) != "" {
			t.Fatalf("load changed the stores' sibling (%v):\n%s", err, treecheck.Diff(sibBefore, after))
		}
		if host, err := treecheck.Snapshot(fuzzHostDir, ""); err != nil || treecheck.Diff(hostBefore, host) != "" {
			t.Fatalf("load changed %s (%v):\n%s", fuzzHostDir, err, treecheck.Diff(hostBefore, host))
		}
	})
}
