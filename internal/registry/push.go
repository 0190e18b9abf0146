package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/scheme/reg"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/ref"

	"github.com/arcavm/arca/internal/loopback"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/blobs"
)

// maxUploads is how many layers upload at once, as in dockerd.
const maxUploads = 5

// Docker's words for the stages of a pushed layer.
const (
	statusPreparing = "Preparing"
	statusPushing   = "Pushing"
	statusPushed    = "Pushed"
	statusLayerHas  = "Layer already exists"
)

// Pusher uploads images from Blobs to registries. Credentials, when set,
// are the client's for the registry pushed to.
type Pusher struct {
	Blobs       *blobs.Store
	Credentials *Credentials
	// Options are added to the regclient (tests: a transport, a logger).
	Options []regclient.Opt
}

// PushResult is what dockerd reports in the aux message of a push.
type PushResult struct {
	Tag    string
	Digest string
	Size   int
}

// pushJob is one layer of the image being pushed.
type pushJob struct {
	desc descriptor.Descriptor
	id   string // short diff ID, as dockerd names pushed layers
	// file, when set, is a gzip copy of an uncompressed stored layer,
	// made for this push only and removed after it
	file string
}

// Push uploads the image rec as target ("host/repo:tag", normalized): its
// layers (skipping those the registry has, mounting those it has in
// another repository the image came from), its config, then its manifest.
// Progress gets dockerd's lines from each layer's "Preparing" to the final
// "<tag>: digest: ... size: N" and the aux result; the caller says "The
// push refers to repository [...]" first. The stored compressed blobs are
// sent as they are, so a pulled image pushes to the digest it had.
func (p *Pusher) Push(ctx context.Context, rec *persistence.ImageRecord, target string, progress func(jsonstream.Message)) (PushResult, error) {
	rep := &reporter{fn: progress}
	r, err := ref.New(target)
	if err != nil || r.Scheme != "reg" || r.Tag == "" {
		return PushResult{}, fmt.Errorf("invalid reference %q", target)
	}
	// short retry delays, as for pulls: a registry that is down fails
	// the push in a moment rather than after regclient's long backoff
	opts := []regclient.Opt{regclient.WithUserAgent("arca"), regclient.WithRegOpts(reg.WithDelay(50*time.Millisecond, 2*time.Second))}
	if loopback.Host(r.Registry) || !p.Credentials.empty() {
		opts = append(opts, regclient.WithConfigHost(hostConfig(r.Registry, p.Credentials)))
	}
	rc := regclient.New(append(opts, p.Options...)...)
	defer rc.Close(context.Background(), r)

	// base first, as in the manifest
	byLayer := make([]*pushJob, len(rec.Layers))
	defer func() {
		for _, j := range byLayer {
			if j != nil && j.file != "" {
				os.Remove(j.file)
			}
		}
	}()
	for i, l := range rec.Layers {
		if byLayer[i], err = p.layerJob(l); err != nil {
			return PushResult{}, err
		}
	}
	raw, mt, err := p.manifestFor(rec, byLayer)
	if err != nil {
		return PushResult{}, err
	}

	// dockerd lists layers from the top one down
	jobs := make([]*pushJob, 0, len(byLayer))
	for i := len(byLayer) - 1; i >= 0; i-- {
		jobs = append(jobs, byLayer[i])
	}
	for _, j := range jobs {
		rep.layer(j.id, statusPreparing)
	}
	for _, j := range jobs[min(maxUploads, len(jobs)):] {
		rep.layer(j.id, statusWaiting)
	}
	if err := p.pushLayers(ctx, rc, r, rec, jobs, rep); err != nil {
		return PushResult{}, p.pushError(ctx, r, err)
	}

	cfgSize, err := p.Blobs.Size(rec.ID)
	if err != nil {
		return PushResult{}, fmt.Errorf("image config %s: %w", rec.ID, err)
	}
	cfgDesc := descriptor.Descriptor{MediaType: configMediaType(mt), Digest: rec.ID, Size: cfgSize}
	if err := p.putBlob(ctx, rc, r, cfgDesc, "", nil); err != nil {
		return PushResult{}, p.pushError(ctx, r, err)
	}

	mdig := digest.FromBytes(raw)
	m, err := manifest.New(manifest.WithRaw(raw), manifest.WithDesc(descriptor.Descriptor{MediaType: mt, Digest: mdig, Size: int64(len(raw))}))
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: manifest: %w", target, err)
	}
	if err := rc.ManifestPut(ctx, r, m); err != nil {
		return PushResult{}, p.pushError(ctx, r, err)
	}
	res := PushResult{Tag: r.Tag, Digest: mdig.String(), Size: len(raw)}
	rep.send(jsonstream.Message{Status: fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size)})
	aux, _ := json.Marshal(res)
	auxRaw := json.RawMessage(aux)
	rep.send(jsonstream.Message{Progress: &jsonstream.Progress{}, Aux: &auxRaw})
	return res, nil
}

// manifestFor is the manifest to push: the one pulled, when it is a
// single image's (so its digest stays), else one made from the record.
func (p *Pusher) manifestFor(rec *persistence.ImageRecord, jobs []*pushJob) ([]byte, string, error) {
	switch rec.ManifestMediaType {
	case mediatype.Docker2Manifest, mediatype.OCI1Manifest:
		if rc, err := p.Blobs.Open(rec.ManifestDigest); err == nil {
			raw, err := io.ReadAll(io.LimitReader(rc, 4<<20))
			rc.Close()
			if err == nil && manifestMatches(raw, rec.ID, jobs) {
				return raw, rec.ManifestMediaType, nil
			}
		}
	}
	cfgSize, err := p.Blobs.Size(rec.ID)
	if err != nil {
		return nil, "", fmt.Errorf("image config %s: %w", rec.ID, err)
	}
	// Docker's media types unless a layer is OCI-only (zstd, plain OCI tar)
	mt := mediatype.Docker2Manifest
	var layerDescs []ocispec.Descriptor
	for _, j := range jobs {
		d := j.desc
		if d.MediaType != mediatype.Docker2LayerGzip && d.MediaType != mediatype.Docker2Layer {
			mt = mediatype.OCI1Manifest
		}
		layerDescs = append(layerDescs, ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
	}
	if mt == mediatype.OCI1Manifest {
		for i := range layerDescs {
			switch layerDescs[i].MediaType {
			case mediatype.Docker2LayerGzip:
				layerDescs[i].MediaType = mediatype.OCI1LayerGzip
			case mediatype.Docker2Layer:
				layerDescs[i].MediaType = mediatype.OCI1Layer
			}
		}
	}
	doc := struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Config        ocispec.Descriptor   `json:"config"`
		Layers        []ocispec.Descriptor `json:"layers"`
	}{2, mt, ocispec.Descriptor{MediaType: configMediaType(mt), Digest: rec.ID, Size: cfgSize}, layerDescs}
	if doc.Layers == nil {
		doc.Layers = []ocispec.Descriptor{}
	}
	raw, err := json.MarshalIndent(doc, "", "   ")
	if err != nil {
		return nil, "", fmt.Errorf("encode manifest: %w", err)
	}
	return raw, mt, nil
}

// manifestMatches checks that a stored manifest names the config and the
// very blobs to push, so that a record changed since, a corrupt blob or
// layers compressed for this push do not go under its name.
func manifestMatches(raw []byte, config digest.Digest, jobs []*pushJob) bool {
	var m struct {
		Config ocispec.Descriptor   `json:"config"`
		Layers []ocispec.Descriptor `json:"layers"`
	}
	if json.Unmarshal(raw, &m) != nil || m.Config.Digest != config || len(m.Layers) != len(jobs) {
		return false
	}
	for i, l := range m.Layers {
		if l.Digest != jobs[i].desc.Digest {
			return false
		}
	}
	return true
}

func configMediaType(manifestType string) string {
	if manifestType == mediatype.OCI1Manifest {
		return mediatype.OCI1ImageConfig
	}
	return mediatype.Docker2ImageConfig
}

// layerJob describes what goes up for a stored layer blob, which must be
// there: a compressed blob as it is (a pulled layer's), an uncompressed one
// (a loaded or committed layer's) gzipped first, as dockerd pushes them.
// gzip at one level is deterministic, so a second push of it finds it in
// the registry.
func (p *Pusher) layerJob(l persistence.LayerRef) (*pushJob, error) {
	j := &pushJob{id: shortID(l.DiffID)}
	size, err := p.Blobs.Size(l.Digest)
	if err != nil {
		return nil, fmt.Errorf("layer %s has no stored blob: %w", l.Digest, err)
	}
	mt := l.MediaType
	if mt == "" || mt == mediatype.OCI1Layer || mt == mediatype.Docker2Layer {
		if mt, err = p.sniffLayer(l.Digest); err != nil {
			return nil, err
		}
	}
	if mt != mediatype.OCI1Layer {
		j.desc = descriptor.Descriptor{MediaType: mt, Digest: l.Digest, Size: size}
		return j, nil
	}
	if j.file, j.desc, err = p.gzipLayer(l.Digest); err != nil {
		return nil, err
	}
	return j, nil
}

// gzipLayer writes a gzip copy of an uncompressed layer blob to a temp file.
func (p *Pusher) gzipLayer(d digest.Digest) (string, descriptor.Descriptor, error) {
	src, err := p.Blobs.Open(d)
	if err != nil {
		return "", descriptor.Descriptor{}, fmt.Errorf("layer %s: %w", d, err)
	}
	defer src.Close()
	f, err := os.CreateTemp("", "arca-push-layer-")
	if err != nil {
		return "", descriptor.Descriptor{}, fmt.Errorf("compress layer %s: %w", d, err)
	}
	defer f.Close()
	fail := func(err error) (string, descriptor.Descriptor, error) {
		os.Remove(f.Name())
		return "", descriptor.Descriptor{}, fmt.Errorf("compress layer %s: %w", d, err)
	}
	dg := digest.SHA256.Digester()
	cw := &countWriter{w: io.MultiWriter(f, dg.Hash())}
	zw, err := gzip.NewWriterLevel(cw, gzip.DefaultCompression)
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(zw, src); err != nil {
		return fail(err)
	}
	if err := zw.Close(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	return f.Name(), descriptor.Descriptor{MediaType: mediatype.Docker2LayerGzip, Digest: dg.Digest(), Size: cw.n}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// sniffLayer names a layer blob's type by its compression.
func (p *Pusher) sniffLayer(d digest.Digest) (string, error) {
	rc, err := p.Blobs.Open(d)
	if err != nil {
		return "", fmt.Errorf("layer %s: %w", d, err)
	}
	defer rc.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(rc, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return mediatype.Docker2LayerGzip, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return mediatype.OCI1LayerZstd, nil
	}
	return mediatype.OCI1Layer, nil
}

// pushLayers uploads up to maxUploads layers at once; the first failure
// stops the others and is the one reported.
func (p *Pusher) pushLayers(ctx context.Context, rc *regclient.RegClient, r ref.Ref, rec *persistence.ImageRecord, jobs []*pushJob, rep *reporter) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan *pushJob, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(maxUploads, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				if ctx.Err() != nil {
					return
				}
				if err := p.pushLayer(ctx, rc, r, rec, j, rep); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

func (p *Pusher) pushLayer(ctx context.Context, rc *regclient.RegClient, r ref.Ref, rec *persistence.ImageRecord, j *pushJob, rep *reporter) error {
	if exists(ctx, rc, r, j.desc) {
		rep.layer(j.id, statusLayerHas)
		return nil
	}
	for _, src := range mountSources(r, rec) {
		if err := rc.BlobMount(ctx, src, r, j.desc); err == nil {
			rep.layer(j.id, "Mounted from "+src.Repository)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err := p.putBlob(ctx, rc, r, j.desc, j.file, func(br io.Reader) io.Reader {
		return &progressReader{r: br, rep: rep, id: j.id, status: statusPushing, total: j.desc.Size}
	}); err != nil {
		return err
	}
	rep.layer(j.id, statusPushed)
	return nil
}

// putBlob uploads a stored blob (or file, when not empty) unless the
// registry has it already.
func (p *Pusher) putBlob(ctx context.Context, rc *regclient.RegClient, r ref.Ref, d descriptor.Descriptor, file string, wrap func(io.Reader) io.Reader) error {
	if wrap == nil && exists(ctx, rc, r, d) {
		return nil
	}
	var f io.ReadCloser
	var err error
	if file != "" {
		f, err = os.Open(file)
	} else {
		f, err = p.Blobs.Open(d.Digest)
	}
	if err != nil {
		return fmt.Errorf("open blob %s: %w", d.Digest, err)
	}
	defer f.Close()
	var body io.Reader = f
	if wrap != nil {
		body = wrap(f)
	}
	if _, err := rc.BlobPut(ctx, r, d, body); err != nil {
		return fmt.Errorf("upload %s: %w", d.Digest, err)
	}
	return nil
}

// exists asks the registry for a blob; any failure means "upload it", and
// the upload then says what is wrong.
func exists(ctx context.Context, rc *regclient.RegClient, r ref.Ref, d descriptor.Descriptor) bool {
	br, err := rc.BlobHead(ctx, r, d)
	if err != nil {
		return false
	}
	br.Close()
	return true
}

// mountSources are the other repositories of the same registry the image
// came from, which may lend their blobs without an upload.
func mountSources(r ref.Ref, rec *persistence.ImageRecord) []ref.Ref {
	var out []ref.Ref
	seen := map[string]bool{}
	for _, rd := range rec.RepoDigests {
		src, err := ref.New(rd)
		if err != nil || src.Registry != r.Registry || src.Repository == r.Repository || seen[src.Repository] {
			continue
		}
		seen[src.Repository] = true
		out = append(out, src.SetTag(""))
	}
	return out
}

// pushError words a failed push as dockerd does in its stream.
func (p *Pusher) pushError(ctx context.Context, r ref.Ref, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("push %s: %w", r.CommonName(), ctx.Err())
	}
	if errors.Is(err, errs.ErrHTTPUnauthorized) {
		switch {
		case !p.Credentials.empty():
			return &wrapped{msg: "unauthorized: authentication required", kind: ErrUnauthorized, cause: err}
		case challengeScheme(ctx, r.Registry) == "basic":
			return &wrapped{msg: "no basic auth credentials", kind: ErrUnauthorized, cause: err}
		}
		return &wrapped{msg: "denied: requested access to the resource is denied", kind: ErrUnauthorized, cause: err}
	}
	if e := blobError(err); e != err {
		return e
	}
	return err
}
