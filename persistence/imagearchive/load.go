package imagearchive

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/layers"
)

// maxLinkHops bounds symlink chains between archive entries (legacy saves
// link repeated layer.tar files to the first copy).
const maxLinkHops = 16

// loader gathers what one archive holds. Entries may come in any order, so
// every file goes to the blob store as it streams by and only its digest is
// remembered; the images are assembled once the whole tar has been read.
type loader struct {
	bs       *blobs.Store
	ls       *layers.Store
	progress func(string)
	files    map[string]digest.Digest // archive path -> stored blob
	links    map[string]string        // archive path -> archive path it names
	manifest []byte                   // manifest.json
	index    []byte                   // index.json
}

// Load reads a docker save tar from r, Docker 25's OCI layout or the older
// one, storing every file in the blob store as it streams by (blobs/sha256
// entries are checked against their names), then unpacks each image's layers,
// each checked against its config's diff IDs. It returns the images with the
// RepoTags manifest.json gives, as given. A broken archive fails before any
// layer is unpacked, and what it leaves in the blob store is only content
// stored under its true digest. Progress receives "Loading layer <id>" lines.
func Load(r io.Reader, bs *blobs.Store, ls *layers.Store, progress func(string)) ([]*persistence.ImageRecord, error) {
	l := &loader{bs: bs, ls: ls, progress: progress, files: map[string]digest.Digest{}, links: map[string]string{}}
	if l.progress == nil {
		l.progress = func(string) {}
	}
	tail := &zeroTail{r: r}
	tr := tar.NewReader(tail)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// the tar reader takes a stream cut at an entry's end for a
			// whole archive; the end-of-archive blocks say it is one
			if tail.zeros < endOfArchive {
				return nil, fmt.Errorf("load: read archive: %w: no end-of-archive marker", io.ErrUnexpectedEOF)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("load: read archive: %w", err)
		}
		if err := l.entry(hdr, tr); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
	}
	switch {
	case l.manifest != nil:
		return l.fromManifestJSON()
	case l.index != nil:
		return l.fromIndexOnly()
	}
	return nil, fmt.Errorf("load: archive has no %s", manifestFile)
}

// archivePath cleans an entry name; names are only map keys, never paths on
// disk, but "./x" and "x" must meet.
func archivePath(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (l *loader) entry(hdr *tar.Header, r io.Reader) error {
	name := archivePath(hdr.Name)
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		target := hdr.Linkname
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(name), target)
		}
		l.links[name] = archivePath(target)
		return nil
	case tar.TypeLink:
		l.links[name] = archivePath(hdr.Linkname)
		return nil
	case tar.TypeReg:
	default:
		return nil // directories and the like carry nothing
	}

	switch name {
	case manifestFile:
		b, err := readLimited(r, maxMetadataSize, manifestFile)
		l.manifest = b
		return err
	case indexFile:
		b, err := readLimited(r, maxMetadataSize, indexFile)
		l.index = b
		return err
	case layoutFile, repositoriesFile:
		return nil
	}
	// a legacy layer directory's own json and VERSION describe nothing we use
	if base := path.Base(name); path.Dir(name) != "." && (base == "json" || base == "VERSION") {
		return nil
	}

	if hex, ok := strings.CutPrefix(name, blobsDir); ok {
		d := digest.NewDigestFromEncoded(digest.SHA256, hex)
		if err := d.Validate(); err != nil {
			return fmt.Errorf("entry %q: not a blob name: %w", hdr.Name, err)
		}
		if !l.bs.Has(d) {
			if _, err := l.bs.Put(r, d); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		}
		l.files[name] = d
		return nil
	}
	d, _, err := l.bs.PutUnverified(r)
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	l.files[name] = d
	return nil
}

// resolve finds the blob stored for an archive path, through links.
func (l *loader) resolve(p string) (digest.Digest, error) {
	name := archivePath(p)
	for range maxLinkHops {
		if d, ok := l.files[name]; ok {
			return d, nil
		}
		target, ok := l.links[name]
		if !ok {
			return "", fmt.Errorf("archive has no file %q", p)
		}
		name = target
	}
	return "", fmt.Errorf("archive file %q: too many links", p)
}

func (l *loader) fromManifestJSON() ([]*persistence.ImageRecord, error) {
	var entries []manifestEntry
	if err := json.Unmarshal(l.manifest, &entries); err != nil {
		return nil, fmt.Errorf("load: parse %s: %w", manifestFile, err)
	}
	manifests := l.manifestsByConfig()
	var out []*persistence.ImageRecord
	for _, e := range entries {
		cfg, err := l.resolve(e.Config)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		layerBlobs := make([]digest.Digest, len(e.Layers))
		for i, p := range e.Layers {
			if layerBlobs[i], err = l.resolve(p); err != nil {
				return nil, fmt.Errorf("load: %w", err)
			}
		}
		rec, err := l.image(cfg, layerBlobs, manifests[cfg])
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		rec.RepoTags = e.RepoTags
		out = append(out, rec)
	}
	return out, nil
}

// fromIndexOnly loads a plain OCI layout with no manifest.json, taking tags
// from the index's image name annotations.
func (l *loader) fromIndexOnly() ([]*persistence.ImageRecord, error) {
	var out []*persistence.ImageRecord
	byID := map[digest.Digest]*persistence.ImageRecord{}
	for _, im := range l.imageManifests() {
		rec, ok := byID[im.config]
		if !ok {
			var err error
			if rec, err = l.image(im.config, im.layers, &im.desc); err != nil {
				return nil, fmt.Errorf("load: %w", err)
			}
			byID[im.config] = rec
			out = append(out, rec)
		}
		if name := im.desc.Annotations[annotationImageName]; name != "" {
			rec.RepoTags = append(rec.RepoTags, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load: %s names no image this archive holds", indexFile)
	}
	return out, nil
}

// indexedManifest is an image manifest reachable from index.json.
type indexedManifest struct {
	desc   ocispec.Descriptor // as index.json gives it, annotations included
	config digest.Digest
	layers []digest.Digest
}

// imageManifests lists the image manifests index.json points at, directly
// or through one nested index, that the archive holds whole.
func (l *loader) imageManifests() []indexedManifest {
	if l.index == nil {
		return nil
	}
	var index ocispec.Index
	if json.Unmarshal(l.index, &index) != nil {
		return nil
	}
	var out []indexedManifest
	var walk func(descs []ocispec.Descriptor, depth int)
	walk = func(descs []ocispec.Descriptor, depth int) {
		for _, d := range descs {
			if !l.bs.Has(d.Digest) {
				continue
			}
			raw, err := readBlob(l.bs, d.Digest, maxMetadataSize)
			if err != nil {
				continue
			}
			switch d.MediaType {
			case ocispec.MediaTypeImageIndex, mediaTypeDockerList:
				var nested ocispec.Index
				if depth == 0 && json.Unmarshal(raw, &nested) == nil {
					walk(nested.Manifests, depth+1)
				}
			case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
				var m ocispec.Manifest
				if json.Unmarshal(raw, &m) != nil || !l.bs.Has(m.Config.Digest) {
					continue
				}
				im := indexedManifest{desc: d, config: m.Config.Digest}
				whole := true
				for _, layer := range m.Layers {
					whole = whole && l.bs.Has(layer.Digest)
					im.layers = append(im.layers, layer.Digest)
				}
				if whole {
					out = append(out, im)
				}
			}
		}
	}
	walk(index.Manifests, 0)
	return out
}

func (l *loader) manifestsByConfig() map[digest.Digest]*ocispec.Descriptor {
	out := map[digest.Digest]*ocispec.Descriptor{}
	for _, im := range l.imageManifests() {
		if _, seen := out[im.config]; !seen {
			d := im.desc
			out[im.config] = &d
		}
	}
	return out
}

// image unpacks an image's layers, each verified against the config's diff
// IDs, and builds its record. manifest, when known, is the stored image
// manifest for it.
func (l *loader) image(cfgDigest digest.Digest, layerBlobs []digest.Digest, manifest *ocispec.Descriptor) (*persistence.ImageRecord, error) {
	cfg, err := readConfig(l.bs, cfgDigest)
	if err != nil {
		return nil, err
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(layerBlobs) {
		return nil, fmt.Errorf("image %s: %d layers but its config lists %d diff ids", cfgDigest, len(layerBlobs), len(diffIDs))
	}
	rec := &persistence.ImageRecord{
		ID:           cfgDigest,
		Layers:       make([]persistence.LayerRef, len(layerBlobs)),
		OS:           cfg.OS,
		Architecture: cfg.Architecture,
		Variant:      cfg.Variant,
		Loaded:       time.Now().UTC(),
	}
	if cfg.Created != nil {
		rec.Created = cfg.Created.UTC()
	}
	if manifest != nil {
		rec.ManifestDigest = manifest.Digest
		rec.ManifestMediaType = manifest.MediaType
	}
	for i, chain := range layers.ChainIDs(diffIDs) {
		blob := layerBlobs[i]
		size, err := l.layer(blob, diffIDs[i], chain)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", cfgDigest, err)
		}
		blobSize, err := l.bs.Size(blob)
		if err != nil {
			return nil, err
		}
		mediaType, err := layerMediaType(l.bs, blob)
		if err != nil {
			return nil, err
		}
		rec.Layers[i] = persistence.LayerRef{
			Digest:       blob,
			MediaType:    mediaType,
			Size:         blobSize,
			DiffID:       diffIDs[i],
			ChainID:      chain,
			UnpackedSize: size,
		}
		rec.Size += size
	}
	return rec, nil
}

func (l *loader) layer(blob, diffID, chain digest.Digest) (int64, error) {
	if l.ls.Has(chain) {
		return l.ls.Size(chain)
	}
	l.progress("Loading layer " + diffID.Encoded()[:12])
	rc, err := l.bs.Open(blob)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", blob, err)
	}
	defer rc.Close()
	tr, err := layers.Decompress(rc)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", blob, err)
	}
	defer tr.Close()
	size, err := l.ls.UnpackVerified(chain, diffID, tr)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", blob, err)
	}
	return size, nil
}

// endOfArchive is the length of the zero blocks that close every tar.
const endOfArchive = 2 * 512

// zeroTail counts the zero bytes that end what has been read so far.
type zeroTail struct {
	r     io.Reader
	zeros int
}

func (z *zeroTail) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	// from the end back: most reads stop at their last byte
	i := n - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	if i < 0 {
		z.zeros += n
	} else {
		z.zeros = n - 1 - i
	}
	return n, err
}
