package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"
)

// Inspect answers GET /distribution/{name}/json: the descriptor of what
// refStr names in its registry, and the platforms it holds (an index's
// entries, or a manifest's config's os and architecture), as dockerd
// reports them.
func (p *Puller) Inspect(ctx context.Context, refStr string) (registry.DistributionInspect, error) {
	var out registry.DistributionInspect
	r, err := ref.New(refStr)
	if err != nil || r.Scheme != "reg" {
		return out, fmt.Errorf("invalid reference %q", refStr)
	}
	rc := p.client(r.Registry)
	m, err := rc.ManifestGet(ctx, r)
	if err != nil {
		return out, p.manifestError(ctx, r, refStr, err)
	}
	raw, err := m.RawBody()
	if err != nil {
		return out, fmt.Errorf("read manifest of %s: %w", refStr, err)
	}
	out.Descriptor = ocispec.Descriptor{MediaType: m.GetDescriptor().MediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	if m.IsList() {
		list, ok := m.(manifest.Indexer)
		if !ok {
			return out, nil
		}
		entries, err := list.GetManifestList()
		if err != nil {
			return out, fmt.Errorf("read index of %s: %w", refStr, err)
		}
		for _, e := range entries {
			if e.Platform != nil {
				out.Platforms = append(out.Platforms, ocispec.Platform{OS: e.Platform.OS, Architecture: e.Platform.Architecture, Variant: e.Platform.Variant, OSVersion: e.Platform.OSVersion})
			}
		}
		return out, nil
	}
	img, ok := m.(manifest.Imager)
	if !ok {
		return out, nil
	}
	cfgDesc, err := img.GetConfig()
	if err != nil {
		return out, fmt.Errorf("read manifest of %s: %w", refStr, err)
	}
	blob, err := rc.BlobGet(ctx, r, cfgDesc)
	if err != nil {
		return out, fmt.Errorf("read config of %s: %w", refStr, err)
	}
	defer blob.Close()
	var cfg ocispec.Image
	if err := json.NewDecoder(io.LimitReader(blob, maxConfigSize)).Decode(&cfg); err != nil {
		return out, fmt.Errorf("read config of %s: %w", refStr, err)
	}
	out.Platforms = []ocispec.Platform{{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}}
	return out, nil
}
