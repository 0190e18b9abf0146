// Package imagearchive reads and writes the tar streams of docker save and
// docker load: the OCI layout Docker 25 writes (blobs/sha256/..., index.json,
// oci-layout) together with the manifest.json every Docker reads, and on
// load also the older layout of <id>/layer.tar and <id>.json files.
package imagearchive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/arcavm/arca/persistence/blobs"
)

const (
	manifestFile     = "manifest.json"
	indexFile        = "index.json"
	layoutFile       = "oci-layout"
	repositoriesFile = "repositories"
	blobsDir         = "blobs/sha256/"

	// annotations Docker 25 puts on each tagged manifest in index.json
	annotationImageName = "io.containerd.image.name"          // docker.io/library/busybox:latest
	annotationRefName   = "org.opencontainers.image.ref.name" // latest

	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"

	// bounds on JSON read into memory: metadata, then image configs
	maxMetadataSize = 16 << 20
	maxConfigSize   = 64 << 20
)

// manifestEntry is one image in manifest.json.
type manifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func blobPath(d digest.Digest) string { return blobsDir + d.Encoded() }

// readLimited reads a small JSON file whole, refusing one past limit.
func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", what, limit)
	}
	return b, nil
}

func readBlob(bs *blobs.Store, d digest.Digest, limit int64) ([]byte, error) {
	rc, err := bs.Open(d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readLimited(rc, limit, "blob "+d.String())
}

func readConfig(bs *blobs.Store, d digest.Digest) (*ocispec.Image, error) {
	raw, err := readBlob(bs, d, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("parse image config %s: %w", d, err)
	}
	for _, id := range cfg.RootFS.DiffIDs {
		if err := id.Validate(); err != nil {
			return nil, fmt.Errorf("image config %s: invalid diff id %q: %w", d, id, err)
		}
	}
	return &cfg, nil
}

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// layerMediaType names a stored layer blob by its compression, for a
// manifest that must describe it.
func layerMediaType(bs *blobs.Store, d digest.Digest) (string, error) {
	rc, err := bs.Open(d)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(rc, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return ocispec.MediaTypeImageLayerGzip, nil
	case bytes.HasPrefix(head, magicZstd):
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return ocispec.MediaTypeImageLayer, nil
}
