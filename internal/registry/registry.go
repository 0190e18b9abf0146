// Package registry pulls images from registries into the blob and layer
// stores, telling the client what happens in dockerd's own progress messages.
package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/scheme/reg"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/platform"
	"github.com/regclient/regclient/types/ref"

	"github.com/arcavm/arca/internal/loopback"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/layers"
)

var (
	// ErrNotFound: the registry has no such manifest (tag, digest or
	// repository), or none for the wanted platform.
	ErrNotFound = errors.New("not found")
	// ErrUnreachable: no HTTP conversation with the registry was possible.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrUnauthorized: the registry refused us (Docker Hub answers so for
	// repositories that do not exist, too).
	ErrUnauthorized = errors.New("unauthorized")
)

// maxDownloads is how many layers download at once, as in dockerd.
const maxDownloads = 3

// maxConfigSize bounds the image config read into memory.
const maxConfigSize = 64 << 20

// Puller pulls images into Blobs and Layers. Its zero value needs only the
// two stores; it is safe for concurrent use.
type Puller struct {
	Blobs  *blobs.Store
	Layers *layers.Store
	// Platform to pick from an index, "os/arch[/variant]"; empty means
	// linux and this machine's architecture.
	Platform string
	// Options are added to every regclient this puller makes (certificates,
	// a logger).
	Options []regclient.Opt
	// Credentials, when set, are the client's for the registry pulled from,
	// and are given to no other.
	Credentials *Credentials

	mu      sync.Mutex
	clients map[string]*regclient.RegClient // by registry host, to reuse connections
}

// client returns the regclient for one registry. Loopback registries speak
// plain HTTP, as dockerd assumes; regclient itself would try HTTPS.
func (p *Puller) client(registry string) *regclient.RegClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rc, ok := p.clients[registry]; ok {
		return rc
	}
	opts := []regclient.Opt{
		regclient.WithUserAgent("arca"),
		regclient.WithRegOpts(reg.WithDelay(50*time.Millisecond, 2*time.Second)),
	}
	if loopback.Host(registry) || !p.Credentials.empty() {
		opts = append(opts, regclient.WithConfigHost(hostConfig(registry, p.Credentials)))
	}
	opts = append(opts, p.Options...)
	rc := regclient.New(opts...)
	if p.clients == nil {
		p.clients = map[string]*regclient.RegClient{}
	}
	p.clients[registry] = rc
	return rc
}

func (p *Puller) platform() (platform.Platform, error) {
	s := p.Platform
	if s == "" {
		s = "linux/" + runtime.GOARCH
	}
	plat, err := platform.Parse(s)
	if err != nil {
		return platform.Platform{}, fmt.Errorf("invalid platform %q: %w", s, err)
	}
	return plat, nil
}

// layerJob is one layer of the image being pulled.
type layerJob struct {
	desc     descriptor.Descriptor
	diffID   digest.Digest
	chainID  digest.Digest
	id       string // short id the client shows
	unpacked bool   // already in the layer store
	download bool   // blob must come from the registry
	done     chan struct{}
	err      error // set before done is closed
}

// Pull fetches ref (normalized, by tag or digest) and returns the image's
// record. Progress, when not nil, receives dockerd's messages one at a time,
// from "Pulling from ..." to the last layer's "Pull complete"; the closing
// "Digest: ..." and "Status: ..." lines are the caller's, who alone knows
// whether the tag moved. The record's ManifestDigest is what ref resolved
// to, an index for a multi-platform image, as dockerd prints and as
// name@digest looks it up; only that blob is stored, since docker save can
// rebuild a platform manifest from the record.
func (p *Puller) Pull(ctx context.Context, refStr string, progress func(jsonstream.Message)) (*persistence.ImageRecord, error) {
	rep := &reporter{fn: progress}
	r, err := ref.New(refStr)
	if err != nil {
		return nil, fmt.Errorf("invalid reference %q: %w", refStr, err)
	}
	if r.Scheme != "reg" {
		return nil, fmt.Errorf("invalid reference %q: not a registry reference", refStr)
	}
	plat, err := p.platform()
	if err != nil {
		return nil, err
	}
	rc := p.client(r.Registry)
	repo := r.Registry + "/" + r.Repository

	tagOrDigest := r.Tag
	if r.Digest != "" {
		tagOrDigest = r.Digest
	}
	rep.send(jsonstream.Message{ID: tagOrDigest, Status: "Pulling from " + r.Repository})

	top, err := rc.ManifestGet(ctx, r)
	if err != nil {
		return nil, p.manifestError(ctx, r, refStr, err)
	}
	topRaw, err := top.RawBody()
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s: %w", refStr, err)
	}
	topDigest := digest.FromBytes(topRaw)

	m := top
	if top.IsList() {
		d, err := manifest.GetPlatformDesc(top, &plat)
		if err != nil {
			return nil, fmt.Errorf("no matching manifest for %s in the manifest list entries: %w", plat, ErrNotFound)
		}
		m, err = rc.ManifestGet(ctx, r.SetDigest(d.Digest.String()))
		if err != nil {
			return nil, manifestError(ctx, refStr, err)
		}
	}
	img, ok := m.(manifest.Imager)
	if !ok || m.IsList() {
		return nil, fmt.Errorf("pull %s: unsupported manifest type %q", refStr, m.GetDescriptor().MediaType)
	}
	cfgDesc, err := img.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("pull %s: manifest has no config: %w", refStr, err)
	}
	cfg, err := p.fetchConfig(ctx, rc, r, cfgDesc)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", refStr, err)
	}
	layerDescs, err := img.GetLayers()
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", refStr, err)
	}
	if len(layerDescs) != len(cfg.RootFS.DiffIDs) {
		return nil, fmt.Errorf("pull %s: manifest has %d layers but config has %d diff ids", refStr, len(layerDescs), len(cfg.RootFS.DiffIDs))
	}

	jobs := make([]*layerJob, len(layerDescs))
	chainIDs := layers.ChainIDs(cfg.RootFS.DiffIDs)
	for i, d := range layerDescs {
		j := &layerJob{desc: d, diffID: cfg.RootFS.DiffIDs[i], chainID: chainIDs[i], id: shortID(d.Digest), done: make(chan struct{})}
		j.unpacked = p.Layers.Has(j.chainID)
		// a layer unpacked from elsewhere still needs its blob for docker save
		j.download = !p.Blobs.Has(d.Digest)
		jobs[i] = j
	}
	layerRefs, err := p.pullLayers(ctx, rc, r, jobs, rep)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", refStr, err)
	}
	// stored last: a manifest in the store means its image is whole
	if _, err := p.Blobs.Put(bytes.NewReader(topRaw), topDigest); err != nil {
		return nil, fmt.Errorf("pull %s: store manifest: %w", refStr, err)
	}

	rec := &persistence.ImageRecord{
		ID:                cfgDesc.Digest,
		RepoDigests:       []string{repo + "@" + topDigest.String()},
		ManifestDigest:    topDigest,
		ManifestMediaType: top.GetDescriptor().MediaType,
		Layers:            layerRefs,
		OS:                cfg.OS,
		Architecture:      cfg.Architecture,
		Variant:           cfg.Variant,
		Loaded:            time.Now().UTC(),
	}
	if r.Digest == "" {
		rec.RepoTags = []string{repo + ":" + r.Tag}
	}
	if cfg.Created != nil {
		rec.Created = cfg.Created.UTC()
	}
	for _, l := range layerRefs {
		rec.Size += l.UnpackedSize
	}
	return rec, nil
}

func (p *Puller) fetchConfig(ctx context.Context, rc *regclient.RegClient, r ref.Ref, d descriptor.Descriptor) (*ocispec.Image, error) {
	var raw []byte
	if rd, err := p.Blobs.Open(d.Digest); err == nil {
		raw, err = io.ReadAll(io.LimitReader(rd, maxConfigSize))
		rd.Close()
		if err != nil {
			return nil, fmt.Errorf("read config %s: %w", d.Digest, err)
		}
	} else {
		br, err := rc.BlobGet(ctx, r, d)
		if err != nil {
			return nil, fmt.Errorf("fetch config %s: %w", d.Digest, blobError(err))
		}
		raw, err = io.ReadAll(io.LimitReader(br, maxConfigSize))
		br.Close()
		if err != nil {
			return nil, fmt.Errorf("fetch config %s: %w", d.Digest, blobError(err))
		}
		if _, err := p.Blobs.Put(bytes.NewReader(raw), d.Digest); err != nil {
			return nil, fmt.Errorf("store config: %w", err)
		}
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", d.Digest, err)
	}
	for _, id := range cfg.RootFS.DiffIDs {
		if err := id.Validate(); err != nil {
			return nil, fmt.Errorf("config %s: invalid diff id %q: %w", d.Digest, id, err)
		}
	}
	return &cfg, nil
}

// pullLayers downloads up to maxDownloads blobs at once and unpacks layers in
// order as their downloads finish, the way dockerd shows them.
func (p *Puller) pullLayers(ctx context.Context, rc *regclient.RegClient, r ref.Ref, jobs []*layerJob, rep *reporter) ([]persistence.LayerRef, error) {
	var queued []*layerJob
	for _, j := range jobs {
		switch {
		case j.unpacked && !j.download:
			rep.layer(j.id, statusExists)
			close(j.done)
		case !j.download:
			// the blob stayed from an earlier pull whose unpack failed
			rep.layer(j.id, statusPullingFS)
			rep.layer(j.id, statusDownloaded)
			close(j.done)
		default:
			rep.layer(j.id, statusPullingFS)
			queued = append(queued, j)
		}
	}
	for _, j := range queued[min(maxDownloads, len(queued)):] {
		rep.layer(j.id, statusWaiting)
	}

	ctx, cancel := context.WithCancel(ctx)
	// the first failed download stops the others; its error is the one told
	var failOnce sync.Once
	var failErr error
	queue := make(chan *layerJob, len(queued))
	for _, j := range queued {
		queue <- j
	}
	close(queue)
	var wg sync.WaitGroup
	for range min(maxDownloads, len(queued)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				if err := ctx.Err(); err != nil {
					j.err = err
				} else {
					j.err = p.download(ctx, rc, r, j, rep)
					if j.err != nil && ctx.Err() == nil {
						failOnce.Do(func() { failErr = j.err; cancel() })
					}
				}
				close(j.done)
			}
		}()
	}
	// every worker is done before Pull returns, so no blob reader outlives it
	defer wg.Wait()
	defer cancel()

	refs := make([]persistence.LayerRef, len(jobs))
	for i, j := range jobs {
		<-j.done
		if j.err != nil {
			cancel()
			wg.Wait()
			if failErr != nil {
				return nil, failErr
			}
			return nil, j.err
		}
		var size int64
		var err error
		if j.unpacked {
			size, err = p.Layers.Size(j.chainID)
			if j.download {
				rep.layer(j.id, statusPullComplete)
			}
		} else {
			size, err = p.extract(j, rep)
		}
		if err != nil {
			return nil, err
		}
		refs[i] = persistence.LayerRef{
			Digest:       j.desc.Digest,
			MediaType:    j.desc.MediaType,
			Size:         j.desc.Size,
			DiffID:       j.diffID,
			ChainID:      j.chainID,
			UnpackedSize: size,
		}
	}
	return refs, nil
}

// download streams one layer blob into the blob store, which checks its
// digest; a corrupt blob is never stored.
func (p *Puller) download(ctx context.Context, rc *regclient.RegClient, r ref.Ref, j *layerJob, rep *reporter) error {
	br, err := rc.BlobGet(ctx, r, j.desc)
	if err != nil {
		return fmt.Errorf("download layer %s: %w", j.desc.Digest, blobError(err))
	}
	defer br.Close()
	pr := &progressReader{r: br, rep: rep, id: j.id, status: statusDownloading, total: j.desc.Size,
		atEOF: func() { rep.layer(j.id, statusVerifying) }}
	if _, err := p.Blobs.Put(pr, j.desc.Digest); err != nil {
		return fmt.Errorf("download layer %s: %w", j.desc.Digest, blobError(err))
	}
	rep.layer(j.id, statusDownloaded)
	return nil
}

// extract unpacks a stored layer blob, checking that its uncompressed stream
// is the diff ID the config promises before the layer becomes visible.
func (p *Puller) extract(j *layerJob, rep *reporter) (int64, error) {
	f, err := p.Blobs.Open(j.desc.Digest)
	if err != nil {
		return 0, fmt.Errorf("extract layer %s: %w", j.desc.Digest, err)
	}
	defer f.Close()
	total, err := p.Blobs.Size(j.desc.Digest)
	if err != nil {
		return 0, fmt.Errorf("extract layer %s: %w", j.desc.Digest, err)
	}
	pr := &progressReader{r: f, rep: rep, id: j.id, status: statusExtracting, total: total}
	tr, err := layers.Decompress(pr)
	if err != nil {
		return 0, fmt.Errorf("extract layer %s: %w", j.desc.Digest, err)
	}
	defer tr.Close()
	size, err := p.Layers.UnpackVerified(j.chainID, j.diffID, tr)
	if err != nil {
		return 0, fmt.Errorf("extract layer %s: %w", j.desc.Digest, err)
	}
	rep.layer(j.id, statusPullComplete)
	return size, nil
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	return e[:min(12, len(e))]
}

// manifestError classifies a failed manifest fetch so the caller can answer
// as dockerd does.
func manifestError(ctx context.Context, refStr string, err error) error {
	switch {
	case ctx.Err() != nil:
		// regclient words a cancel its own way; the caller's context says why
		return fmt.Errorf("pull %s: %w", refStr, ctx.Err())
	case errors.Is(err, errs.ErrNotFound):
		return &wrapped{msg: fmt.Sprintf("manifest for %s not found: manifest unknown: manifest unknown", refStr), kind: ErrNotFound, cause: err}
	case errors.Is(err, errs.ErrHTTPUnauthorized):
		return &wrapped{msg: fmt.Sprintf("pull access denied for %s, repository does not exist or may require 'docker login'", refStr), kind: ErrUnauthorized, cause: err}
	}
	if netErr := blobError(err); netErr != err {
		return netErr
	}
	return fmt.Errorf("pull %s: %w", refStr, err)
}

// blobError marks network failures; their message is the one dockerd gives,
// such as: Get "http://127.0.0.1:5000/v2/": dial tcp ...: connection refused.
// A blob missing in the registry is not ErrNotFound, which speaks of
// manifests.
func blobError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnreachable) {
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &wrapped{msg: ue.Error(), kind: ErrUnreachable, cause: err}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &wrapped{msg: ne.Error(), kind: ErrUnreachable, cause: err}
	}
	return err
}

// wrapped carries Docker's message while matching both its kind and the
// underlying regclient error.
type wrapped struct {
	msg   string
	kind  error
	cause error
}

func (w *wrapped) Error() string   { return w.msg }
func (w *wrapped) Unwrap() []error { return []error{w.kind, w.cause} }
