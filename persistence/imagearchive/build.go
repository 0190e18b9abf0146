package imagearchive

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/ulikunitz/xz"

	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/layers"
)

// Legacy is what dockerd writes in an image config beside the OCI
// fields for the images it makes itself.
type Legacy struct {
	// Comment is the top-level comment of commit and import, shown by
	// image inspect.
	Comment string
	// ContainerConfig is the config the step's or the committed
	// container ran with (dockerd's container_config): the classic
	// builder's cache key. nil for an import.
	ContainerConfig *container.Config
}

// AddLayer makes the image of docker commit, docker import and a classic
// build step: parent's layers (none when parent is nil) and one more from
// layerTar, which may be compressed as a stored layer may. cfg is the new
// image's config whole but for its rootfs, which AddLayer fills in; its
// history should already hold the new entry. legacy goes into the config
// as dockerd writes it. The layer is stored uncompressed, so its blob
// digest is its diff ID, and unpacked verified against it; the config
// blob's digest is the image ID. The record has no tags; its Parent is
// parent's ID.
//
// A nil layerTar adds no layer: the image is parent's layers with a new
// config, as a build's ENV or CMD step makes one.
func AddLayer(parent *persistence.ImageRecord, cfg dockerspec.DockerOCIImage, legacy Legacy, layerTar io.Reader, bs *blobs.Store, ls *layers.Store) (*persistence.ImageRecord, error) {
	rec := &persistence.ImageRecord{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, Loaded: time.Now().UTC()}
	diffIDs := []digest.Digest{}
	if parent != nil {
		rec.Layers = append(rec.Layers, parent.Layers...)
		for _, l := range parent.Layers {
			diffIDs = append(diffIDs, l.DiffID)
		}
		rec.Size = parent.Size
		rec.Parent = parent.ID
	}
	if layerTar != nil {
		layerTar, err := unxz(layerTar)
		if err != nil {
			return nil, fmt.Errorf("new layer: %w", err)
		}
		plain, err := layers.Decompress(layerTar)
		if err != nil {
			return nil, fmt.Errorf("new layer: %w", err)
		}
		defer plain.Close()
		blob, blobSize, err := bs.PutUnverified(plain)
		if err != nil {
			return nil, fmt.Errorf("store new layer: %w", err)
		}
		diffIDs = append(diffIDs, blob)
		chain := layers.ChainIDs(diffIDs)[len(diffIDs)-1]
		size, err := unpackBlob(bs, ls, blob, chain)
		if err != nil {
			return nil, err
		}
		rec.Layers = append(rec.Layers, persistence.LayerRef{
			Digest: blob, MediaType: ocispec.MediaTypeImageLayer, Size: blobSize,
			DiffID: blob, ChainID: chain, UnpackedSize: size,
		})
		rec.Size += size
	}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}
	if cfg.Created == nil {
		now := time.Now().UTC()
		cfg.Created = &now
	}
	rec.Created = cfg.Created.UTC()
	raw, err := json.Marshal(legacyConfig{DockerOCIImage: cfg, Comment: legacy.Comment, ContainerConfig: legacy.ContainerConfig})
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	id, _, err := bs.PutUnverified(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("store image config: %w", err)
	}
	rec.ID = id
	return rec, nil
}

// legacyConfig is an image config with dockerd's legacy fields.
type legacyConfig struct {
	dockerspec.DockerOCIImage
	Comment         string            `json:"comment,omitempty"`
	ContainerConfig *container.Config `json:"container_config,omitempty"`
}

// ReadLegacy reads dockerd's legacy fields of the image config blob id.
func ReadLegacy(bs *blobs.Store, id digest.Digest) (Legacy, error) {
	raw, err := readBlob(bs, id, maxConfigSize)
	if err != nil {
		return Legacy{}, err
	}
	var c struct {
		Comment         string            `json:"comment"`
		ContainerConfig *container.Config `json:"container_config"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return Legacy{}, fmt.Errorf("parse image config %s: %w", id, err)
	}
	return Legacy{Comment: c.Comment, ContainerConfig: c.ContainerConfig}, nil
}

var magicXz = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// unxz decompresses an xz stream, which docker import takes beside what
// a stored layer may be; anything else passes as it is.
func unxz(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(len(magicXz))
	if !bytes.Equal(head, magicXz) {
		return br, nil
	}
	return xz.NewReader(br)
}

func unpackBlob(bs *blobs.Store, ls *layers.Store, blob, chain digest.Digest) (int64, error) {
	if ls.Has(chain) {
		return ls.Size(chain)
	}
	rc, err := bs.Open(blob)
	if err != nil {
		return 0, fmt.Errorf("new layer: %w", err)
	}
	defer rc.Close()
	size, err := ls.UnpackVerified(chain, blob, rc)
	if err != nil {
		return 0, fmt.Errorf("new layer: %w", err)
	}
	return size, nil
}
