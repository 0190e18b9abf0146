package imagearchive

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/blobs"
)

// SaveItem is one image to save and the tags to save it under, in any form
// reference parsing accepts ("busybox:latest", "docker.io/library/busybox").
type SaveItem struct {
	Record *persistence.ImageRecord
	Tags   []string
}

// savedImage is what Save has worked out about one image before writing.
type savedImage struct {
	rec      *persistence.ImageRecord
	manifest []byte // the image manifest's bytes
	desc     ocispec.Descriptor
	tags     []reference.NamedTagged
}

// epoch dates every entry, so saving the same images twice gives the same
// bytes.
var epoch = time.Unix(0, 0).UTC()

// Save streams a docker save tar of images to w: each blob as stored (layers
// possibly compressed, which docker load accepts), one image manifest per
// image, and the index.json, manifest.json, oci-layout and repositories
// files. Everything is checked before the first byte is written, so a
// missing blob fails cleanly rather than midway through the stream.
func Save(w io.Writer, images []SaveItem, bs *blobs.Store) error {
	saved := make([]savedImage, 0, len(images))
	for _, item := range images {
		si, err := plan(item, bs)
		if err != nil {
			return err
		}
		saved = append(saved, si)
	}

	tw := tar.NewWriter(w)
	for _, dir := range []string{"blobs/", blobsDir} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	written := map[digest.Digest]bool{}
	for _, si := range saved {
		for _, d := range append([]digest.Digest{si.rec.ID}, layerDigests(si.rec)...) {
			if written[d] {
				continue
			}
			written[d] = true
			if err := copyBlob(tw, bs, d); err != nil {
				return err
			}
		}
		if !written[si.desc.Digest] {
			written[si.desc.Digest] = true
			if err := writeFile(tw, blobPath(si.desc.Digest), si.manifest); err != nil {
				return err
			}
		}
	}

	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	var entries []manifestEntry
	repositories := map[string]map[string]string{}
	for _, si := range saved {
		entry := manifestEntry{Config: blobPath(si.rec.ID)}
		for _, d := range layerDigests(si.rec) {
			entry.Layers = append(entry.Layers, blobPath(d))
		}
		if len(si.tags) == 0 {
			index.Manifests = append(index.Manifests, si.desc)
		}
		for _, t := range si.tags {
			d := si.desc
			d.Annotations = map[string]string{annotationImageName: t.String(), annotationRefName: t.Tag()}
			index.Manifests = append(index.Manifests, d)
			entry.RepoTags = append(entry.RepoTags, reference.FamiliarString(t))
			repo := reference.FamiliarName(t)
			if repositories[repo] == nil {
				repositories[repo] = map[string]string{}
			}
			repositories[repo][t.Tag()] = si.rec.ID.Encoded()
		}
		entries = append(entries, entry)
	}
	files := []jsonFile{
		{indexFile, index},
		{manifestFile, entries},
		{layoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
	}
	if len(repositories) > 0 {
		files = append(files, jsonFile{repositoriesFile, repositories})
	}
	for _, f := range files {
		b, err := json.Marshal(f.v)
		if err != nil {
			return fmt.Errorf("save: encode %s: %w", f.name, err)
		}
		if err := writeFile(tw, f.name, b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

type jsonFile struct {
	name string
	v    any
}

func layerDigests(rec *persistence.ImageRecord) []digest.Digest {
	out := make([]digest.Digest, len(rec.Layers))
	for i, l := range rec.Layers {
		out[i] = l.Digest
	}
	return out
}

// plan checks that every blob of the image is stored and finds, or makes,
// the image manifest to save.
func plan(item SaveItem, bs *blobs.Store) (savedImage, error) {
	rec := item.Record
	if rec == nil {
		return savedImage{}, fmt.Errorf("save: no image record")
	}
	si := savedImage{rec: rec}
	for _, tag := range item.Tags {
		named, err := reference.ParseNormalizedNamed(tag)
		if err != nil {
			return savedImage{}, fmt.Errorf("save %s: invalid tag %q: %w", rec.ID, tag, err)
		}
		tagged, ok := reference.TagNameOnly(named).(reference.NamedTagged)
		if !ok {
			continue // a digest reference is no tag
		}
		si.tags = append(si.tags, tagged)
	}
	for _, d := range append([]digest.Digest{rec.ID}, layerDigests(rec)...) {
		if !bs.Has(d) {
			return savedImage{}, fmt.Errorf("save %s: blob %s is not stored", rec.ID, d)
		}
	}
	if raw, mediaType, ok := storedManifest(rec, bs); ok {
		si.manifest = raw
		si.desc = ocispec.Descriptor{MediaType: mediaType, Digest: rec.ManifestDigest, Size: int64(len(raw))}
		return si, nil
	}
	raw, err := buildManifest(rec, bs)
	if err != nil {
		return savedImage{}, err
	}
	si.manifest = raw
	si.desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	return si, nil
}

// storedManifest returns the image's own manifest when the store holds it
// and it describes exactly this config and these layers; a pulled
// multi-platform image has an index there instead.
func storedManifest(rec *persistence.ImageRecord, bs *blobs.Store) ([]byte, string, bool) {
	if rec.ManifestDigest == "" || !bs.Has(rec.ManifestDigest) {
		return nil, "", false
	}
	raw, err := readBlob(bs, rec.ManifestDigest, maxMetadataSize)
	if err != nil {
		return nil, "", false
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || m.Config.Digest != rec.ID || len(m.Layers) != len(rec.Layers) {
		return nil, "", false
	}
	for i, l := range m.Layers {
		if l.Digest != rec.Layers[i].Digest {
			return nil, "", false
		}
	}
	mediaType := m.MediaType
	if mediaType == "" {
		mediaType = rec.ManifestMediaType
	}
	if mediaType != ocispec.MediaTypeImageManifest && mediaType != mediaTypeDockerManifest {
		return nil, "", false
	}
	return raw, mediaType, true
}

func buildManifest(rec *persistence.ImageRecord, bs *blobs.Store) ([]byte, error) {
	cfgSize, err := bs.Size(rec.ID)
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", rec.ID, err)
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: rec.ID, Size: cfgSize},
		Layers:    []ocispec.Descriptor{},
	}
	for _, l := range rec.Layers {
		size, err := bs.Size(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("save %s: %w", rec.ID, err)
		}
		mediaType := l.MediaType
		if mediaType == "" {
			if mediaType, err = layerMediaType(bs, l.Digest); err != nil {
				return nil, fmt.Errorf("save %s: %w", rec.ID, err)
			}
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mediaType, Digest: l.Digest, Size: size})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("save %s: encode manifest: %w", rec.ID, err)
	}
	return raw, nil
}

// copyBlob streams one blob into the archive; blobs are never held in memory.
func copyBlob(tw *tar.Writer, bs *blobs.Store, d digest.Digest) error {
	rc, err := bs.Open(d)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer rc.Close()
	size, err := bs.Size(d)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobPath(d), Size: size, Mode: 0o444, ModTime: epoch}); err != nil {
		return fmt.Errorf("save blob %s: %w", d, err)
	}
	if n, err := io.Copy(tw, rc); err != nil {
		return fmt.Errorf("save blob %s: %w", d, err)
	} else if n != size {
		return fmt.Errorf("save blob %s: wrote %d of %d bytes", d, n, size)
	}
	return nil
}

func writeFile(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(b)), Mode: 0o644, ModTime: epoch}); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	return nil
}
