//go:build linux

package buildkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/buildkit/util/leaseutil"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Images is the daemon's image store as builds see it.
type Images interface {
	// Image finds a local image by reference; nil (and no error) when
	// there is none.
	Image(ctx context.Context, ref string) (*LocalImage, error)
	// Load adds built images: a docker-archive tar (docker load's
	// format), tagged as its manifest says.
	Load(ctx context.Context, archive io.Reader) error
}

// LocalImage is one image of the daemon's store.
type LocalImage struct {
	Config       []byte               // the config blob, as stored
	ConfigDigest digest.Digest        // the image ID
	Layers       []ocispec.Descriptor // the stored layer blobs, base first
	// Open reads a stored blob.
	Open func(digest.Digest) (io.ReadCloser, error)
}

// localImageLease is how long a local image copied into BuildKit's content
// store is kept from its garbage collector, for the build that asked.
const localImageLease = time.Hour

// localImages is the worker's image store: the daemon's images, so that a
// FROM finds a local image before any registry, as dockerd's builder
// does. BuildKit reads an image's content from its own store, so an image
// asked for is copied there first (once, while its lease lasts).
type localImages struct {
	images  Images
	content content.Store
	leases  *leaseutil.Manager
	log     *slog.Logger
}

var _ images.Store = (*localImages)(nil)

// Get implements images.Store.
func (s *localImages) Get(ctx context.Context, name string) (images.Image, error) {
	img, err := s.images.Image(ctx, name)
	if err != nil {
		return images.Image{}, err
	}
	if img == nil {
		return images.Image{}, fmt.Errorf("image %s: %w", name, cerrdefs.ErrNotFound)
	}
	desc, err := s.ingest(ctx, img)
	if err != nil {
		s.log.Warn("local image not usable by the build", "image", name, "err", err)
		return images.Image{}, fmt.Errorf("image %s: %w", name, cerrdefs.ErrNotFound)
	}
	return images.Image{Name: name, Target: desc, CreatedAt: time.Now(), UpdatedAt: time.Now()}, nil
}

// ingest copies img into BuildKit's content store under a lease and
// returns its manifest's descriptor. The manifest is made here: the
// daemon keeps an image's config and layers, not always a manifest.
func (s *localImages) ingest(ctx context.Context, img *LocalImage) (ocispec.Descriptor, error) {
	mf := ocispec.Manifest{
		Versioned: ocispecs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    img.ConfigDigest,
			Size:      int64(len(img.Config)),
		},
		Layers: img.Layers,
	}
	mfBytes, err := json.Marshal(mf)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	mfDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mfBytes), Size: int64(len(mfBytes))}
	l, err := s.leases.Create(ctx, leases.WithRandomID(), leases.WithExpiration(localImageLease))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("lease: %w", err)
	}
	ctx = leases.WithLease(ctx, l.ID)
	for _, layer := range img.Layers {
		if err := s.write(ctx, layer, func() (io.ReadCloser, error) { return img.Open(layer.Digest) }); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	if err := s.write(ctx, mf.Config, bytesOpener(img.Config)); err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := s.write(ctx, mfDesc, bytesOpener(mfBytes)); err != nil {
		return ocispec.Descriptor{}, err
	}
	return mfDesc, nil
}

// write puts one blob in the content store unless it is there, and adds
// it to the context's lease either way.
func (s *localImages) write(ctx context.Context, desc ocispec.Descriptor, open func() (io.ReadCloser, error)) error {
	if _, err := s.content.Info(ctx, desc.Digest); err == nil {
		if l, ok := leases.FromContext(ctx); ok {
			return s.leases.AddResource(ctx, leases.Lease{ID: l}, leases.Resource{ID: desc.Digest.String(), Type: "content"})
		}
		return nil
	}
	r, err := open()
	if err != nil {
		return fmt.Errorf("read %s: %w", desc.Digest, err)
	}
	defer r.Close()
	if err := content.WriteBlob(ctx, s.content, "local-"+desc.Digest.String(), r, desc); err != nil {
		return fmt.Errorf("copy %s: %w", desc.Digest, err)
	}
	return nil
}

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// List implements images.Store: no local image is held by BuildKit, so
// none keeps its cache from pruning.
func (s *localImages) List(context.Context, ...string) ([]images.Image, error) { return nil, nil }

// Create implements images.Store. A built image goes to the daemon
// through the moby exporter, not here.
func (s *localImages) Create(_ context.Context, img images.Image) (images.Image, error) {
	return img, nil
}

// Update implements images.Store, as Create.
func (s *localImages) Update(_ context.Context, img images.Image, _ ...string) (images.Image, error) {
	return img, nil
}

// Delete implements images.Store.
func (s *localImages) Delete(context.Context, string, ...images.DeleteOpt) error { return nil }
