package httpfront

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

// loginDeadline covers dockerd's two 15 s requests and a token fetch.
const loginDeadline = 70 * time.Second

// registryAuth reads X-Registry-Auth (base64url JSON of an AuthConfig).
// Like dockerd, a header that does not decode counts as no credentials.
// The result lives for this request only.
func registryAuth(ctx *fasthttp.RequestCtx) *messages.RegistryAuth {
	h := strings.TrimSpace(string(ctx.Request.Header.Peek(registry.AuthHeader)))
	if h == "" {
		return nil
	}
	var raw []byte
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(h); err == nil {
			raw = b
			break
		}
	}
	var ac registry.AuthConfig
	if raw == nil || json.Unmarshal(raw, &ac) != nil {
		return nil
	}
	a := authFromConfig(ac)
	if a.Empty() {
		return nil
	}
	return a
}

// authFromConfig takes the user and password from "auth" (base64 of
// user:password) when they are not given apart.
func authFromConfig(ac registry.AuthConfig) *messages.RegistryAuth {
	a := &messages.RegistryAuth{
		Username:      ac.Username,
		Password:      ac.Password,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
		ServerAddress: ac.ServerAddress,
	}
	if a.Username == "" && a.Password == "" && ac.Auth != "" {
		if b, err := base64.StdEncoding.DecodeString(ac.Auth); err == nil {
			a.Username, a.Password, _ = strings.Cut(string(b), ":")
		}
	}
	return a
}

// authLogin is POST /auth: docker login checks the credentials here and
// keeps them itself; the daemon forgets them when it has answered.
func (s *Server) authLogin(ctx *fasthttp.RequestCtx) {
	var ac registry.AuthConfig
	if err := decodeJSON(ctx, &ac); err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Images, &messages.RegistryLogin{Auth: authFromConfig(ac)}, loginDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	r := res.(*messages.RegistryLoginReply)
	writeJSON(ctx, fasthttp.StatusOK, registry.AuthResponse{Status: r.Status, IdentityToken: r.IdentityToken})
}

// imagePush is POST /images/{name}/push?tag=: an unknown image is a 404
// before any stream; registry failures come in the stream, as errorDetail.
func (s *Server) imagePush(ctx *fasthttp.RequestCtx, name string) {
	progress := make(chan messages.ProgressEvent, 256)
	msg := &messages.PushImage{Name: name, Tag: string(ctx.QueryArgs().Peek("tag")), Auth: registryAuth(ctx), Progress: progress}
	if _, err := s.ask(s.sys.Images, msg, quickDeadline); err != nil {
		writeError(ctx, err)
		return
	}
	s.streamProgress(ctx, progress)
}

// distributionInspect is GET /distribution/{name}/json: what the name
// resolves to in its registry, asked with the request's credentials.
func (s *Server) distributionInspect(ctx *fasthttp.RequestCtx) {
	name, ok := strings.CutSuffix(nameParam(ctx), "/json")
	if !ok || name == "" {
		writeError(ctx, messages.NotFound("page not found"))
		return
	}
	ref, err := normalizeRef(name, "")
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Images, &messages.DistributionInspect{Name: ref, Auth: registryAuth(ctx)}, 90*time.Second)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.DistributionInspectReply).Result)
}
