//go:build linux

package buildkit

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/cache"
	cacheconfig "github.com/moby/buildkit/cache/config"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/util/compression"
	"github.com/moby/buildkit/util/contentutil"
	"github.com/moby/buildkit/worker/base"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"log/slog"
)

// mobyExporter is the name buildx's docker driver asks for: the image
// goes into the engine's own store.
const mobyExporter = "moby"

// arcaWorker is BuildKit's worker with the moby exporter added.
type arcaWorker struct {
	*base.Worker
	images Images
	log    *slog.Logger
}

// Exporter implements worker.Worker.
func (w *arcaWorker) Exporter(name string, sm *session.Manager) (exporter.Exporter, error) {
	if name != mobyExporter {
		return w.Worker.Exporter(name, sm)
	}
	inner, err := w.Worker.Exporter(client.ExporterImage, sm)
	if err != nil {
		return nil, err
	}
	return &daemonExporter{inner: inner, w: w}, nil
}

// daemonExporter is BuildKit's image exporter (which also pushes when
// asked) followed by a load into the daemon's store under the names given.
type daemonExporter struct {
	inner exporter.Exporter
	w     *arcaWorker
}

func (e *daemonExporter) Resolve(ctx context.Context, id int, attrs map[string]string) (exporter.ExporterInstance, error) {
	var names []string
	for n := range strings.SplitSeq(attrs["name"], ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	// buildx pushes a docker driver's image itself, through the Engine
	// API, once it is loaded (dockerd's moby exporter does not push).
	attrs = maps.Clone(attrs)
	delete(attrs, "push")
	inner, err := e.inner.Resolve(ctx, id, attrs)
	if err != nil {
		return nil, err
	}
	return &daemonExport{ExporterInstance: inner, w: e.w, names: names}, nil
}

type daemonExport struct {
	exporter.ExporterInstance
	w     *arcaWorker
	names []string
}

func (e *daemonExport) Type() string { return mobyExporter }

func (e *daemonExport) Export(ctx context.Context, src *exporter.Source, info exporter.ExportBuildInfo) (map[string]string, exporter.FinalizeFunc, exporter.DescriptorReference, error) {
	resp, finalize, ref, err := e.ExporterInstance.Export(ctx, src, info)
	if err != nil {
		return nil, nil, nil, err
	}
	provider, err := e.contentOf(ctx, src, info.SessionID)
	if err != nil {
		ref.Release()
		return nil, nil, nil, fmt.Errorf("load the image into the daemon: %w", err)
	}
	if err := e.load(ctx, provider, ref.Descriptor()); err != nil {
		ref.Release()
		return nil, nil, nil, fmt.Errorf("load the image into the daemon: %w", err)
	}
	return resp, finalize, ref, nil
}

// load streams the image desc names (a manifest, or an index holding the
// daemon's platform) to the daemon as a docker-archive.
func (e *daemonExport) load(ctx context.Context, cs content.Provider, desc ocispec.Descriptor) error {
	mf, err := platformManifest(ctx, cs, desc)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeDockerArchive(ctx, pw, cs, mf, e.names))
	}()
	err = e.w.images.Load(ctx, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	return err
}

// contentOf reads the result's blobs: from the content store, or, for
// layers a cache import left lazy (--cache-from), from where they are,
// fetched through the build's session.
func (e *daemonExport) contentOf(ctx context.Context, src *exporter.Source, sessionID string) (content.Provider, error) {
	mp := contentutil.NewMultiProvider(e.w.ContentStore())
	refCfg := cacheconfig.RefConfig{Compression: compression.New(compression.Default)}
	refs := []cache.ImmutableRef{src.Ref}
	for _, r := range src.Refs {
		refs = append(refs, r)
	}
	for _, ref := range refs {
		if ref == nil {
			continue
		}
		remotes, err := ref.GetRemotes(ctx, false, refCfg, false, session.NewGroup(sessionID))
		if err != nil {
			return nil, err
		}
		for _, r := range remotes {
			for _, d := range r.Descriptors {
				mp.Add(d.Digest, r.Provider)
			}
		}
	}
	return mp, nil
}

// platformManifest is the manifest of desc for this machine's platform.
func platformManifest(ctx context.Context, cs content.Provider, desc ocispec.Descriptor) (ocispec.Manifest, error) {
	var mf ocispec.Manifest
	switch desc.MediaType {
	case ocispec.MediaTypeImageManifest, images.MediaTypeDockerSchema2Manifest:
	case ocispec.MediaTypeImageIndex, images.MediaTypeDockerSchema2ManifestList:
		b, err := content.ReadBlob(ctx, cs, desc)
		if err != nil {
			return mf, fmt.Errorf("read index: %w", err)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return mf, fmt.Errorf("read index: %w", err)
		}
		match := platforms.Default()
		found := false
		for _, m := range idx.Manifests {
			if m.Platform != nil && match.Match(*m.Platform) {
				desc, found = m, true
				break
			}
		}
		if !found {
			return mf, fmt.Errorf("no image for %s in the build result", platforms.DefaultString())
		}
	default:
		return mf, fmt.Errorf("unexpected build result %s", desc.MediaType)
	}
	b, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		return mf, fmt.Errorf("read manifest: %w", err)
	}
	if err := json.Unmarshal(b, &mf); err != nil {
		return mf, fmt.Errorf("read manifest: %w", err)
	}
	return mf, nil
}

// writeDockerArchive writes mf's config and layers as docker save does.
func writeDockerArchive(ctx context.Context, w io.Writer, cs content.Provider, mf ocispec.Manifest, tags []string) error {
	tw := tar.NewWriter(w)
	blobPath := func(d ocispec.Descriptor) string { return "blobs/sha256/" + d.Digest.Encoded() }
	entry := struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{Config: blobPath(mf.Config), RepoTags: tags}
	for _, d := range append([]ocispec.Descriptor{mf.Config}, mf.Layers...) {
		ra, err := cs.ReaderAt(ctx, d)
		if err != nil {
			return fmt.Errorf("read %s: %w", d.Digest, err)
		}
		err = tw.WriteHeader(&tar.Header{Name: blobPath(d), Mode: 0o444, Size: ra.Size(), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.Copy(tw, io.NewSectionReader(ra, 0, ra.Size()))
		}
		ra.Close()
		if err != nil {
			return fmt.Errorf("write %s: %w", d.Digest, err)
		}
		if d.Digest != mf.Config.Digest {
			entry.Layers = append(entry.Layers, blobPath(d))
		}
	}
	index, err := json.Marshal([]any{entry})
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o444, Size: int64(len(index)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(index); err != nil {
		return err
	}
	return tw.Close()
}
