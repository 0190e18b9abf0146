package httpfront

import (
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/internal/commitconfig"
	"github.com/arcavm/arca/messages"
)

// How long a commit or an import may take: the layer is read, stored and
// unpacked before the answer.
const imageBuildDeadline = time.Hour

// containerExport streams the container's filesystem as a tar, made by
// its agent (one booted for the purpose when the container is stopped).
func (s *Server) containerExport(ctx *fasthttp.RequestCtx) {
	req, done := fileRequest(idParam(ctx))
	res, err := s.ask(s.sys.Containers, &messages.ExportContainer{FileRequest: req, Kind: messages.ExportRootfs}, filesDeadline)
	if err != nil {
		done()
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/x-tar")
	s.streamArchive(ctx, res.(*messages.ExportContainerReply).Archive, done, "container export")
}

// containerCommit makes an image of the container's image and its
// writable layer, as the agent walks it; with pause (the default) a
// running container is frozen meanwhile.
func (s *Server) containerCommit(ctx *fasthttp.RequestCtx) {
	q := ctx.QueryArgs()
	target, err := targetRef(string(q.Peek("repo")), string(q.Peek("tag")))
	if err != nil {
		writeError(ctx, err)
		return
	}
	var user container.Config
	if body := ctx.PostBody(); len(strings.TrimSpace(string(body))) > 0 {
		var cfg *container.Config
		if err := json.Unmarshal(body, &cfg); err != nil {
			writeError(ctx, messages.InvalidParameter("invalid JSON: %v", err))
			return
		}
		if cfg != nil {
			user = *cfg
		}
	}
	if err := commitconfig.Apply(&user, changesParam(ctx)); err != nil {
		writeError(ctx, messages.InvalidParameter("%v", err))
		return
	}
	ref := messages.Ref{ID: string(q.Peek("container"))}
	res, err := s.ask(s.sys.Containers, &messages.InspectContainer{Ref: ref}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	ctr := res.(*messages.InspectContainerReply).Container
	if ctr.Config != nil {
		commitconfig.Merge(&user, ctr.Config)
	}
	ref.ID = ctr.ID
	pause := !q.Has("pause") || boolParam(ctx, "pause")
	if pause && ctr.State != nil && ctr.State.Running && !ctr.State.Paused {
		// One that stopped since the inspect is committed as it is.
		if _, err := s.ask(s.sys.Containers, &messages.PauseContainer{Ref: ref}, time.Minute); err == nil {
			defer s.ask(s.sys.Containers, &messages.UnpauseContainer{Ref: ref}, time.Minute)
		} else {
			s.log.Warn("commit: pause", "container", ctr.ID, "err", err)
		}
	}
	req, done := fileRequest(ctr.ID)
	defer done()
	res, err = s.ask(s.sys.Containers, &messages.ExportContainer{FileRequest: req, Kind: messages.ExportLayer}, filesDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	layer := res.(*messages.ExportContainerReply).Archive
	defer layer.Close()
	createdBy := "" // dockerd's: the container's Cmd
	if ctr.Config != nil {
		createdBy = strings.Join(ctr.Config.Cmd, " ")
	}
	res, err = s.ask(s.sys.Images, &messages.AddLayerImage{
		Parent: digest.Digest(ctr.Image), Layer: layer, Config: user,
		Author: string(q.Peek("author")), Comment: string(q.Peek("comment")), CreatedBy: createdBy,
		Tag: target, Container: &ctr, ContainerConfig: ctr.Config,
	}, imageBuildDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, container.CommitResponse{ID: res.(*messages.AddLayerImageReply).ID.String()})
}

// imageImport makes a one-layer image of the request body, a filesystem
// tar (plain, gzip, bzip2, xz or zstd). Arca does not download: a URL source
// is refused.
func (s *Server) imageImport(ctx *fasthttp.RequestCtx) {
	q := ctx.QueryArgs()
	if src := string(q.Peek("fromSrc")); src != "-" {
		writeError(ctx, messages.InvalidParameter("import from a URL (%s) is not supported by Arca: send the archive as the request body (fromSrc=-)", src))
		return
	}
	target, err := targetRef(string(q.Peek("repo")), string(q.Peek("tag")))
	if err != nil {
		writeError(ctx, err)
		return
	}
	platform, err := platformParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	osName, arch, variant := "linux", runtime.GOARCH, ""
	if platform != "" {
		parts := strings.SplitN(platform, "/", 3)
		osName = parts[0]
		if len(parts) > 1 {
			arch = normalizeArch(parts[1])
		}
		if len(parts) > 2 {
			variant = parts[2]
		}
	}
	var cfg container.Config
	if err := commitconfig.Apply(&cfg, changesParam(ctx)); err != nil {
		writeError(ctx, messages.InvalidParameter("%v", err))
		return
	}
	var body io.Reader = &stickyEOF{r: ctx.RequestBodyStream()}
	if ctx.RequestBodyStream() == nil {
		body = bytesReader(ctx.PostBody())
	}
	res, err := s.ask(s.sys.Images, &messages.AddLayerImage{
		Layer: body, Config: cfg, Comment: string(q.Peek("message")),
		OS: osName, Architecture: arch, Variant: variant, Tag: target,
	}, imageBuildDeadline)
	io.Copy(io.Discard, body) // a client must not block on an unread body
	if err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	b, _ := json.Marshal(jsonstream.Message{Status: res.(*messages.AddLayerImageReply).ID.String()})
	ctx.SetBody(append(b, '\n'))
}

// targetRef is the repo and tag of a commit or an import as a normalized
// reference; none when repo is empty.
func targetRef(repo, tag string) (string, error) {
	if repo == "" {
		return "", nil
	}
	if strings.HasPrefix(tag, "sha256:") {
		return "", messages.InvalidParameter("refusing to create a tag with a digest reference")
	}
	ref, err := normalizeRef(repo, tag)
	if err != nil {
		return "", err
	}
	if strings.Contains(ref, "@") {
		return "", messages.InvalidParameter("refusing to create a tag with a digest reference")
	}
	return ref, nil
}

// changesParam is the repeated changes parameter, one instruction each.
func changesParam(ctx *fasthttp.RequestCtx) []string {
	var out []string
	for _, v := range ctx.QueryArgs().PeekMulti("changes") {
		if s := strings.TrimSpace(string(v)); s != "" {
			out = append(out, string(v))
		}
	}
	return out
}
