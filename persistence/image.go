package persistence

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// ImageRecord is what the daemon knows of one image. Its ID is the digest of
// its config blob, as in Docker. The config itself lives in the blob store
// under that digest; records hold only what listing and lookup need.
type ImageRecord struct {
	ID                digest.Digest `json:"id"`
	RepoTags          []string      `json:"repoTags,omitempty"`    // normalized: "docker.io/library/busybox:latest"
	RepoDigests       []string      `json:"repoDigests,omitempty"` // "127.0.0.1:5000/busybox@sha256:..."
	ManifestDigest    digest.Digest `json:"manifestDigest,omitempty"`
	ManifestMediaType string        `json:"manifestMediaType,omitempty"`
	Layers            []LayerRef    `json:"layers"` // base first
	Created           time.Time     `json:"created"`
	OS                string        `json:"os"`
	Architecture      string        `json:"architecture"`
	Variant           string        `json:"variant,omitempty"`
	Size              int64         `json:"size"` // sum of unpacked layer sizes
	Loaded            time.Time     `json:"loaded"`
	// Parent is the image this one was made from by a build step or a
	// commit (dockerd's parent, which makes it a cache candidate and
	// keeps its ancestors as intermediate images); empty for a pulled,
	// loaded or imported image.
	Parent digest.Digest `json:"parent,omitempty"`
}

// LayerRef names one layer: the blob as stored (possibly compressed), its
// uncompressed DiffID, and the ChainID under which it is unpacked.
type LayerRef struct {
	Digest       digest.Digest `json:"digest"`
	MediaType    string        `json:"mediaType"`
	Size         int64         `json:"size"`
	DiffID       digest.Digest `json:"diffID"`
	ChainID      digest.Digest `json:"chainID"`
	UnpackedSize int64         `json:"unpackedSize"`
}
