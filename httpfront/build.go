package httpfront

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/builder"
	"github.com/arcavm/arca/internal/commitconfig"
	"github.com/arcavm/arca/messages"
)

// imageBuild is the classic builder (POST /build, what
// DOCKER_BUILDKIT=0 docker build sends): the context is read here, the
// steps run in the response's stream writer through the actors.
func (s *Server) imageBuild(ctx *fasthttp.RequestCtx) {
	q := ctx.QueryArgs()
	if remote := string(q.Peek("remote")); remote != "" {
		writeError(ctx, messages.InvalidParameter("a remote build context (%s) is not supported by Arca: send the context as the request body", remote))
		return
	}
	opt := builder.Options{
		Dockerfile: string(q.Peek("dockerfile")),
		Target:     string(q.Peek("target")),
		Pull:       boolParam(ctx, "pull"),
		NoCache:    boolParam(ctx, "nocache"),
		// dockerd's defaults: rm on, forcerm off.
		Remove:      !q.Has("rm") || boolParam(ctx, "rm"),
		ForceRemove: boolParam(ctx, "forcerm"),
	}
	for _, t := range q.PeekMulti("t") {
		ref, err := normalizeRef(string(t), "")
		if err != nil {
			writeError(ctx, err)
			return
		}
		if strings.Contains(ref, "@") {
			writeError(ctx, messages.InvalidParameter("refusing to create a tag with a digest reference"))
			return
		}
		opt.Tags = append(opt.Tags, ref)
	}
	if v := q.Peek("buildargs"); len(v) > 0 {
		if err := json.Unmarshal(v, &opt.BuildArgs); err != nil {
			writeError(ctx, messages.InvalidParameter("invalid buildargs: %v", err))
			return
		}
	}
	if v := q.Peek("labels"); len(v) > 0 {
		if err := json.Unmarshal(v, &opt.Labels); err != nil {
			writeError(ctx, messages.InvalidParameter("invalid labels: %v", err))
			return
		}
	}
	quiet := boolParam(ctx, "q")
	auths := buildAuths(ctx)
	var body io.Reader = &stickyEOF{r: ctx.RequestBodyStream()}
	if ctx.RequestBodyStream() == nil {
		body = bytesReader(ctx.PostBody())
	}
	bctx, err := builder.ReadContext(body)
	io.Copy(io.Discard, body)
	if err != nil {
		writeError(ctx, messages.InvalidParameter("%v", err))
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	streamNow(ctx)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		out := builder.NewOutput(w, w.Flush, quiet)
		bctx2, cancel := context.WithCancel(context.Background())
		defer cancel()
		if _, err := builder.Build(bctx2, &buildBackend{s: s, auths: auths}, bctx, opt, out); err != nil {
			out.Error(err)
		}
	})
}

// buildBackend is the daemon as the builder sees it: requests to the
// actors, as the commit and container handlers make them.
type buildBackend struct {
	s     *Server
	auths map[string]registry.AuthConfig // X-Registry-Config, by registry
}

// buildAuths reads X-Registry-Config (base64url JSON of AuthConfigs by
// registry address), the credentials the CLI sends for FROM pulls. Like
// X-Registry-Auth, one that does not decode counts as none.
func buildAuths(ctx *fasthttp.RequestCtx) map[string]registry.AuthConfig {
	h := strings.TrimSpace(string(ctx.Request.Header.Peek("X-Registry-Config")))
	if h == "" {
		return nil
	}
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(h); err == nil {
			var m map[string]registry.AuthConfig
			if json.Unmarshal(b, &m) == nil {
				return m
			}
			return nil
		}
	}
	return nil
}

// authFor is the credentials of auths for ref's registry (Docker Hub's
// under its legacy key too), or nil.
func authFor(auths map[string]registry.AuthConfig, ref string) *messages.RegistryAuth {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil || len(auths) == 0 {
		return nil
	}
	domain := reference.Domain(named)
	keys := []string{domain, "https://" + domain, "http://" + domain, "https://" + domain + "/v1/", "https://" + domain + "/v2/"}
	if domain == "docker.io" {
		keys = append(keys, "https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io")
	}
	for _, k := range keys {
		if ac, ok := auths[k]; ok {
			if a := authFromConfig(ac); !a.Empty() {
				return a
			}
		}
	}
	return nil
}

func (b *buildBackend) Image(ctx context.Context, name string, pull bool, out *builder.Output) (string, container.Config, error) {
	if !pull {
		if id, cfg, err := b.resolve(name); err == nil || messages.KindOf(err) != messages.KindNotFound {
			return id, cfg, err
		}
	}
	ref, err := normalizeRef(name, "")
	if err != nil {
		return "", container.Config{}, err
	}
	progress := make(chan messages.ProgressEvent, 256)
	if _, err := b.s.ask(b.s.sys.Images, &messages.PullImage{Ref: ref, Auth: authFor(b.auths, ref), Progress: progress}, quickDeadline); err != nil {
		return "", container.Config{}, err
	}
	var perr error
	for ev := range progress {
		if ev.Err != nil && perr == nil {
			perr = ev.Err
		}
	}
	if perr != nil {
		return "", container.Config{}, perr
	}
	return b.resolve(ref)
}

func (b *buildBackend) resolve(name string) (string, container.Config, error) {
	res, err := b.s.ask(b.s.sys.Images, &messages.ResolveImage{Name: name}, quickDeadline)
	if err != nil {
		return "", container.Config{}, err
	}
	r := res.(*messages.ResolveImageReply)
	var cfg container.Config
	if r.Config != nil {
		cfg = commitconfig.FromImage(r.Config.Config)
	}
	return r.Image.ID.String(), cfg, nil
}

func (b *buildBackend) Run(ctx context.Context, cfg *container.Config, created func(string), out io.Writer) (int64, error) {
	res, err := b.s.ask(b.s.sys.Containers, &messages.CreateContainer{Config: cfg, HostConfig: &container.HostConfig{}}, quickDeadline)
	if err != nil {
		return 0, err
	}
	ref := messages.Ref{ID: res.(*messages.CreateContainerReply).ID}
	created(ref.ID)
	// Attached before the start, as docker run attaches: the output is
	// streamed as the step writes it.
	res, err = b.s.ask(b.s.sys.Containers, &messages.AttachContainer{Ref: ref, Stdout: true, Stderr: true, Stream: true}, quickDeadline)
	if err != nil {
		return 0, err
	}
	sub := res.(*messages.AttachReply).Output
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		if sub == nil {
			return
		}
		for {
			f, ok := sub.Next()
			if !ok {
				return
			}
			out.Write(f.Data)
		}
	}()
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	if _, err := b.s.ask(b.s.sys.Containers, &messages.StartContainer{Ref: ref}, 5*time.Minute); err != nil {
		return 0, err
	}
	// Asked once started: a created container is already "not running".
	result := make(chan messages.WaitReply, 1)
	if _, err := b.s.ask(b.s.sys.Containers, &messages.WaitContainerStream{Ref: ref, Condition: container.WaitConditionNotRunning, Result: result}, quickDeadline); err != nil {
		return 0, err
	}
	var wait messages.WaitReply
	select {
	case wait = <-result:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// The stream ends with the run; the bound is against one that would not.
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
	}
	if wait.Error != "" {
		return wait.ExitCode, errors.New(wait.Error)
	}
	return wait.ExitCode, nil
}

func (b *buildBackend) Commit(ctx context.Context, containerID, parent string, cfg, step container.Config) (string, error) {
	req, done := fileRequest(containerID)
	defer done()
	res, err := b.s.ask(b.s.sys.Containers, &messages.ExportContainer{FileRequest: req, Kind: messages.ExportLayer}, filesDeadline)
	if err != nil {
		return "", err
	}
	layer := res.(*messages.ExportContainerReply).Archive
	defer layer.Close()
	return b.addLayer(parent, layer, cfg, step)
}

func (b *buildBackend) AddLayer(ctx context.Context, parent string, layer io.Reader, cfg, step container.Config) (string, error) {
	return b.addLayer(parent, layer, cfg, step)
}

// addLayer makes a step's image, recorded as dockerd records one: the
// step's config as its container_config, its Cmd as its history line.
func (b *buildBackend) addLayer(parent string, layer io.Reader, cfg, step container.Config) (string, error) {
	m := &messages.AddLayerImage{
		Parent: digest.Digest(parent), Layer: layer, Config: cfg, CreatedBy: strings.Join(step.Cmd, " "),
		ContainerConfig: &step, Build: true,
	}
	if parent == "" {
		m.OS, m.Architecture = "linux", runtime.GOARCH
	}
	res, err := b.s.ask(b.s.sys.Images, m, imageBuildDeadline)
	if err != nil {
		return "", err
	}
	return res.(*messages.AddLayerImageReply).ID.String(), nil
}

func (b *buildBackend) ImageFiles(ctx context.Context, image string, paths []string, fn func(string, io.Reader) error) error {
	// A container of the image, never started: its agent (a machine
	// booted for the purpose, as for docker cp) reads the files.
	res, err := b.s.ask(b.s.sys.Containers, &messages.CreateContainer{
		Config: &container.Config{Image: image, Entrypoint: []string{""}, Cmd: []string{"/"}}, HostConfig: &container.HostConfig{},
	}, quickDeadline)
	if err != nil {
		return err
	}
	id := res.(*messages.CreateContainerReply).ID
	defer b.RemoveContainer(ctx, id) // after the files are let go (rm waits for them)
	req, done := fileRequest(id)
	defer done()
	// Each archive is closed only once the next is open, so that one
	// machine serves them all.
	var prev io.Closer
	defer func() {
		if prev != nil {
			prev.Close()
		}
	}()
	for _, p := range paths {
		res, err := b.s.ask(b.s.sys.Containers, &messages.GetArchive{FileRequest: req, Path: p}, filesDeadline)
		if err != nil {
			if messages.KindOf(err) == messages.KindNotFound {
				return &builder.Error{Err: fmt.Errorf("COPY --from: %s: no such file or directory", p)}
			}
			return err
		}
		tr := res.(*messages.GetArchiveReply).Archive
		if prev != nil {
			prev.Close()
		}
		prev = tr
		if err := fn(p, tr); err != nil {
			return err
		}
	}
	return nil
}

func (b *buildBackend) RemoveContainer(ctx context.Context, id string) error {
	_, err := b.s.ask(b.s.sys.Containers, &messages.RemoveContainer{Ref: messages.Ref{ID: id}, Force: true, RemoveVolumes: true}, time.Minute)
	return err
}

func (b *buildBackend) CachedImage(ctx context.Context, parent string, step container.Config) (string, error) {
	res, err := b.s.ask(b.s.sys.Images, &messages.ProbeBuildCache{Parent: parent, Config: step}, quickDeadline)
	if err != nil {
		return "", err
	}
	return res.(*messages.ProbeBuildCacheReply).ID, nil
}

func (b *buildBackend) Tag(ctx context.Context, id, ref string) error {
	_, err := b.s.ask(b.s.sys.Images, &messages.TagImage{Source: id, Target: ref}, quickDeadline)
	return err
}
