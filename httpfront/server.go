// Package httpfront serves the Docker Engine API on a unix socket. Handlers
// are thin: decode the request, send a message to an actor, encode the
// reply; every error goes through writeError.
package httpfront

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/actors"
	"github.com/arcavm/arca/messages"
)

// API versions served: requests may carry any /v1.NN/ prefix in between.
const (
	APIVersion    = "1.51"
	MinAPIVersion = "1.24"
	// multiplexedFrom is the version from which attach and exec announce
	// the multiplexed media type.
	multiplexedFrom = "1.42"
)

// Info is the static part of what /version and /info tell.
type Info struct {
	Version    string // Arca's version
	GitCommit  string
	Driver     string // guest driver name
	DriverNote string // e.g. "TCG" or "KVM"
	BootMode   string // how VMs boot, e.g. "template restore"; "" if not VMs
	// GuestKernel names the kernel VMs boot (release and origin); "" if
	// not VMs.
	GuestKernel string
	Underlay    string // what joins the machines' NICs: "switch" or "bridge"; "" for none
	Root        string
	Debug       bool // serve Go's profiles at /debug/pprof/
}

// Server routes API requests to the actor system.
type Server struct {
	sys    *actors.System
	info   Info
	log    *slog.Logger
	router *router.Router
	srv    *fasthttp.Server
	// buildkit serves docker build's default path; nil: classic only.
	buildkit BuildKit
}

func New(sys *actors.System, info Info, log *slog.Logger) *Server {
	s := &Server{sys: sys, info: info, log: log, router: router.New()}
	// One bad request must never take the daemon down: neither fasthttp
	// nor the router recovers by itself.
	s.router.PanicHandler = func(ctx *fasthttp.RequestCtx, r any) {
		log.Error("panic serving a request", "method", string(ctx.Method()), "path", string(ctx.Path()), "panic", r, "stack", string(debug.Stack()))
		writeError(ctx, messages.Internal("internal error: %v", r))
	}
	s.routes()
	s.srv = &fasthttp.Server{
		Handler:                      s.serve,
		Name:                         "Arca/" + info.Version + " (linux)",
		StreamRequestBody:            true, // image load and archive uploads
		MaxRequestBodySize:           1 << 40,
		ReadBufferSize:               64 << 10,
		DisablePreParseMultipartForm: true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{log},
	}
	return s
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(emptyHostListener{ln}) }

// Shutdown stops accepting at once and waits at most timeout for the
// requests in flight; streams end when the actors behind them stop.
func (s *Server) Shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Listen creates the unix socket at path, refusing to take it over from a
// live daemon (fasthttp's own helper would delete it unasked).
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen %s: another daemon is serving on it", path)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}

// serve strips and checks the /v1.NN prefix, sets the headers every
// response carries, then routes.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Api-Version", APIVersion)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	path := string(ctx.Path())
	version := APIVersion
	if strings.HasPrefix(path, "/v") {
		if i := strings.IndexByte(path[1:], '/'); i > 0 {
			v := path[2 : i+1]
			if isVersion(v) {
				version = v
				if compareVersions(v, APIVersion) > 0 {
					writeError(ctx, messages.InvalidParameter("client version %s is too new. Maximum supported API version is %s", v, APIVersion))
					return
				}
				if compareVersions(v, MinAPIVersion) < 0 {
					writeError(ctx, messages.InvalidParameter("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion))
					return
				}
				ctx.URI().SetPath(path[i+1:])
			}
		}
	}
	ctx.SetUserValue(versionKey, version)
	s.router.Handler(ctx)
}

const versionKey = "arca.apiversion"

func apiVersion(ctx *fasthttp.RequestCtx) string {
	if v, ok := ctx.UserValue(versionKey).(string); ok {
		return v
	}
	return APIVersion
}

func isVersion(v string) bool {
	major, minor, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	_, err1 := strconv.Atoi(major)
	_, err2 := strconv.Atoi(minor)
	return err1 == nil && err2 == nil
}

// compareVersions compares "1.41" style versions numerically.
func compareVersions(a, b string) int {
	am, an, _ := strings.Cut(a, ".")
	bm, bn, _ := strings.Cut(b, ".")
	ai, _ := strconv.Atoi(am)
	bi, _ := strconv.Atoi(bm)
	if ai != bi {
		return ai - bi
	}
	ai, _ = strconv.Atoi(an)
	bi, _ = strconv.Atoi(bn)
	return ai - bi
}

// ask sends msg to pid and waits for the reply; an error reply becomes the
// returned error.
func (s *Server) ask(pid *actor.PID, msg any, timeout time.Duration) (any, error) {
	res, err := s.sys.Root.RequestFuture(pid, msg, timeout).Result()
	if err != nil {
		return nil, err
	}
	if e, ok := res.(error); ok {
		return nil, e
	}
	return res, nil
}

func writeJSON(ctx *fasthttp.RequestCtx, code int, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		writeError(ctx, messages.Internal("encode response: %v", err))
		return
	}
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// marshalJSON encodes v as dockerd's httputils.WriteJSON does: no HTML
// escaping ("a > b", not "a \u003e b"), a newline at the end.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeJSON reads a JSON body into v; an empty body leaves v as is.
func decodeJSON(ctx *fasthttp.RequestCtx, v any) error {
	body := ctx.PostBody()
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return messages.InvalidParameter("invalid JSON: %v", err)
	}
	return nil
}

func boolParam(ctx *fasthttp.RequestCtx, name string) bool {
	v := string(ctx.QueryArgs().Peek(name))
	return v == "1" || strings.EqualFold(v, "true")
}

// intParam parses an integer parameter; absent gives def.
func intParam(ctx *fasthttp.RequestCtx, name string, def int) (int, error) {
	v := ctx.QueryArgs().Peek(name)
	if len(v) == 0 {
		return def, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, messages.InvalidParameter("invalid value for %s: %q", name, v)
	}
	return n, nil
}

// filtersParam decodes Docker's filters JSON: {"key":{"value":true}} or
// the older {"key":["value"]}.
func filtersParam(ctx *fasthttp.RequestCtx) (map[string][]string, error) {
	raw := ctx.QueryArgs().Peek("filters")
	out := map[string][]string{}
	if len(raw) == 0 {
		return out, nil
	}
	var asMap map[string]map[string]bool
	if err := json.Unmarshal(raw, &asMap); err == nil {
		for k, vals := range asMap {
			for v, on := range vals {
				if on {
					out[k] = append(out[k], v)
				}
			}
		}
		return out, nil
	}
	var asList map[string][]string
	if err := json.Unmarshal(raw, &asList); err != nil {
		return nil, messages.InvalidParameter("invalid filter: %v", err)
	}
	return asList, nil
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...), "component", "http")
}

func contextDeadline(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(append([]byte(nil), b...)) }
