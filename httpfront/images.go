package httpfront

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

func nameParam(ctx *fasthttp.RequestCtx) string {
	n, _ := ctx.UserValue("name").(string)
	return strings.TrimPrefix(n, "/")
}

// progressLine is a jsonstream message as written on the wire: with the
// old top-level "error" string beside errorDetail, for older clients.
type progressLine struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

func (s *Server) imageCreate(ctx *fasthttp.RequestCtx) {
	q := ctx.QueryArgs()
	if len(q.Peek("fromSrc")) > 0 {
		s.imageImport(ctx) // commit.go
		return
	}
	platform, err := platformParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	from, tag := string(q.Peek("fromImage")), string(q.Peek("tag"))
	ref, err := normalizeRef(from, tag)
	if err != nil {
		writeError(ctx, err)
		return
	}
	progress := make(chan messages.ProgressEvent, 256)
	if _, err := s.ask(s.sys.Images, &messages.PullImage{Ref: ref, Platform: platform, Auth: registryAuth(ctx), Progress: progress}, quickDeadline); err != nil {
		writeError(ctx, err)
		return
	}
	s.streamProgress(ctx, progress)
}

// streamProgress waits for the first event so that an immediate failure
// (no such manifest, registry down) is a proper error status, then streams
// the rest as JSON lines.
func (s *Server) streamProgress(ctx *fasthttp.RequestCtx, progress chan messages.ProgressEvent) {
	first, ok := <-progress
	if ok && first.Err != nil {
		go drain(progress)
		writeError(ctx, first.Err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	streamNow(ctx)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer drain(progress)
		enc := json.NewEncoder(w)
		write := func(ev messages.ProgressEvent) error {
			line := progressLine{Message: ev.Message}
			if ev.Err != nil {
				line = progressLine{Message: jsonstream.Message{Error: &jsonstream.Error{Message: ev.Err.Error()}}, ErrorMessage: ev.Err.Error()}
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
			return w.Flush()
		}
		if !ok {
			return
		}
		if write(first) != nil {
			return
		}
		for ev := range progress {
			if write(ev) != nil {
				return
			}
		}
	})
}

// drain consumes what is left so the producer never blocks on a client
// that went away.
func drain(ch chan messages.ProgressEvent) {
	for range ch {
	}
}

// normalizeRef makes "busybox" + "latest" into
// "docker.io/library/busybox:latest"; a digest tag makes a digest ref.
func normalizeRef(name, tag string) (string, error) {
	if name == "" {
		return "", messages.InvalidParameter("fromImage is required")
	}
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", messages.InvalidParameter("invalid reference format: %v", err)
	}
	if tag != "" {
		if strings.HasPrefix(tag, "sha256:") {
			dref, err := reference.ParseNormalizedNamed(reference.TrimNamed(ref).String() + "@" + tag)
			if err != nil {
				return "", messages.InvalidParameter("invalid reference format: %v", err)
			}
			return dref.String(), nil
		}
		tagged, err := reference.WithTag(reference.TrimNamed(ref), tag)
		if err != nil {
			return "", messages.InvalidParameter("invalid reference format: %v", err)
		}
		return tagged.String(), nil
	}
	return reference.TagNameOnly(ref).String(), nil
}

func (s *Server) imageList(ctx *fasthttp.RequestCtx) {
	filters, err := filtersParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	if f := string(ctx.QueryArgs().Peek("filter")); f != "" { // API < 1.41
		filters["reference"] = append(filters["reference"], f)
	}
	res, err := s.ask(s.sys.Images, &messages.ListImages{All: boolParam(ctx, "all"), Filters: filters}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.ListImagesReply).Images)
}

// imageGet dispatches GET /images/{name}/json|history|get.
func (s *Server) imageGet(ctx *fasthttp.RequestCtx) {
	name := nameParam(ctx)
	switch {
	case strings.HasSuffix(name, "/json"):
		res, err := s.ask(s.sys.Images, &messages.InspectImage{Name: strings.TrimSuffix(name, "/json")}, quickDeadline)
		if err != nil {
			writeError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, imageInspectBody(res.(*messages.InspectImageReply)))
	case strings.HasSuffix(name, "/history"):
		res, err := s.ask(s.sys.Images, &messages.ImageHistory{Name: strings.TrimSuffix(name, "/history")}, quickDeadline)
		if err != nil {
			writeError(ctx, err)
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, res.(*messages.ImageHistoryReply).History)
	case strings.HasSuffix(name, "/get"):
		s.imageSave(ctx, []string{strings.TrimSuffix(name, "/get")})
	case strings.HasSuffix(name, "/attestations"):
		writeError(ctx, notImplementedError("image attestations (GET /images/{name}/attestations)"))
	default:
		writeError(ctx, messages.NotFound("page not found"))
	}
}

// imageInspectBody is image inspect as dockerd answers API 1.51: the
// type of the API module plus the legacy Parent, which that type no
// longer has and the classic builder's images still set.
func imageInspectBody(r *messages.InspectImageReply) any {
	return struct {
		image.InspectResponse
		Parent string
	}{r.Image, r.Parent}
}

// imagePost dispatches POST /images/{name}/tag|push.
func (s *Server) imagePost(ctx *fasthttp.RequestCtx) {
	name := nameParam(ctx)
	switch {
	case strings.HasSuffix(name, "/tag"):
		s.imageTag(ctx, strings.TrimSuffix(name, "/tag"))
	case strings.HasSuffix(name, "/push"):
		s.imagePush(ctx, strings.TrimSuffix(name, "/push"))
	default:
		writeError(ctx, messages.NotFound("page not found"))
	}
}

func (s *Server) imageTag(ctx *fasthttp.RequestCtx, source string) {
	repo, tag := string(ctx.QueryArgs().Peek("repo")), string(ctx.QueryArgs().Peek("tag"))
	if repo == "" {
		writeError(ctx, messages.InvalidParameter("repository name must have at least one component"))
		return
	}
	if strings.HasPrefix(tag, "sha256:") {
		writeError(ctx, messages.InvalidParameter("refusing to create a tag with a digest reference"))
		return
	}
	target, err := normalizeRef(repo, tag)
	if err != nil {
		writeError(ctx, err)
		return
	}
	if _, err := s.ask(s.sys.Images, &messages.TagImage{Source: source, Target: target}, quickDeadline); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusCreated)
}

func (s *Server) imageRemove(ctx *fasthttp.RequestCtx) {
	res, err := s.ask(s.sys.Images, &messages.RemoveImage{Name: nameParam(ctx), Force: boolParam(ctx, "force"), NoPrune: boolParam(ctx, "noprune")}, time.Minute)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.RemoveImageReply).Deleted)
}

func (s *Server) imageSaveMany(ctx *fasthttp.RequestCtx) {
	var names []string
	for _, v := range ctx.QueryArgs().PeekMulti("names") {
		names = append(names, string(v))
	}
	if len(names) == 0 {
		writeError(ctx, messages.InvalidParameter("no images named"))
		return
	}
	s.imageSave(ctx, names)
}

func (s *Server) imageSave(ctx *fasthttp.RequestCtx, names []string) {
	res, err := s.ask(s.sys.Images, &messages.SaveImages{Names: names}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	save := res.(*messages.SaveImagesReply).WriteTo
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/x-tar")
	streamNow(ctx)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		if err := save(w); err != nil {
			s.log.Warn("image save", "err", err)
			return
		}
		w.Flush()
	})
}

// imageLoad hands the request body to the images actor and waits for the
// load to end before answering: the body stream is only valid while this
// handler runs.
func (s *Server) imageLoad(ctx *fasthttp.RequestCtx) {
	var body io.Reader = &stickyEOF{r: ctx.RequestBodyStream()}
	if ctx.RequestBodyStream() == nil {
		body = bytesReader(ctx.PostBody())
	}
	progress := make(chan messages.ProgressEvent, 64)
	if _, err := s.ask(s.sys.Images, &messages.LoadImages{Tar: body, Quiet: boolParam(ctx, "quiet"), Progress: progress}, quickDeadline); err != nil {
		writeError(ctx, err)
		return
	}
	var lines []messages.ProgressEvent
	for ev := range progress {
		lines = append(lines, ev)
	}
	io.Copy(io.Discard, body) // a client must not block on an unread body
	if len(lines) > 0 && lines[0].Err != nil {
		writeError(ctx, lines[0].Err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	for _, ev := range lines {
		line := progressLine{Message: ev.Message}
		if ev.Err != nil {
			line = progressLine{Message: jsonstream.Message{Error: &jsonstream.Error{Message: ev.Err.Error()}}, ErrorMessage: ev.Err.Error()}
		}
		enc.Encode(line)
	}
	ctx.SetBodyString(sb.String())
}

// stickyEOF keeps answering EOF once its reader has: fasthttp's chunked
// request stream, read again after its end, waits for another chunk that
// never comes.
type stickyEOF struct {
	r   io.Reader
	eof bool
}

func (s *stickyEOF) Read(p []byte) (int, error) {
	if s.eof {
		return 0, io.EOF
	}
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.eof = true
	}
	return n, err
}

func (s *Server) imagePrune(ctx *fasthttp.RequestCtx) {
	filters, err := filtersParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Images, &messages.PruneImages{Filters: filters}, 5*time.Minute)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.PruneImagesReply).Report)
}
