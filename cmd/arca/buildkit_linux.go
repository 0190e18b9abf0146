package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/arcavm/arca/actors"
	"github.com/arcavm/arca/builder/buildkit"
	"github.com/arcavm/arca/httpfront"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence/blobs"
)

// startBuildKit opens the daemon's BuildKit under root/buildkit, its
// steps run by the actors' build step machines.
func startBuildKit(ctx context.Context, root string, sys *actors.System, bs *blobs.Store, log *slog.Logger) (buildKitEngine, error) {
	e, err := buildkit.New(ctx, buildkit.Config{
		Root:   filepath.Join(root, "buildkit"),
		Steps:  sys,
		Images: &daemonImages{sys: sys, blobs: bs},
		Log:    log.With("component", "buildkit"),
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

var _ httpfront.BuildKit = (*buildkit.Engine)(nil)

// daemonImages is the image store as builds see it: requests to the
// images actor, and the blob store's immutable content.
type daemonImages struct {
	sys   *actors.System
	blobs *blobs.Store
}

func (d *daemonImages) Image(ctx context.Context, ref string) (*buildkit.LocalImage, error) {
	res, err := d.sys.Root.RequestFuture(d.sys.Images, &messages.ResolveImage{Name: ref}, 30*time.Second).Result()
	if err != nil {
		return nil, err
	}
	if err, ok := res.(error); ok {
		if messages.KindOf(err) == messages.KindNotFound {
			return nil, nil
		}
		return nil, err
	}
	rec := res.(*messages.ResolveImageReply).Image
	r, err := d.blobs.Open(rec.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", ref, err)
	}
	cfg, err := io.ReadAll(io.LimitReader(r, 8<<20))
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", ref, err)
	}
	img := &buildkit.LocalImage{Config: cfg, ConfigDigest: rec.ID, Open: func(dg digest.Digest) (io.ReadCloser, error) { return d.blobs.Open(dg) }}
	for _, l := range rec.Layers {
		img.Layers = append(img.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size})
	}
	return img, nil
}

func (d *daemonImages) Load(ctx context.Context, archive io.Reader) error {
	progress := make(chan messages.ProgressEvent, 16)
	res, err := d.sys.Root.RequestFuture(d.sys.Images, &messages.LoadImages{Tar: archive, Quiet: true, Progress: progress}, 30*time.Second).Result()
	if err != nil {
		return err
	}
	if err, ok := res.(error); ok {
		return err
	}
	var errs []error
	for ev := range progress {
		if ev.Err != nil {
			errs = append(errs, ev.Err)
		}
	}
	return errors.Join(errs...)
}
