package httpfront

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/internal/socketpair"
	"github.com/arcavm/arca/messages"
)

// BuildKit is the daemon's BuildKit engine as the front end serves it:
// the CLI and buildx reach it by hijacking /grpc and /session.
type BuildKit interface {
	ServeConn(c net.Conn)
	ServeSession(ctx context.Context, c net.Conn, headers map[string][]string) error
	DiskUsage(ctx context.Context) ([]build.CacheRecord, error)
	Prune(ctx context.Context, opts messages.BuildCachePrune) (build.CachePruneReport, error)
}

// UseBuildKit serves BuildKit's endpoints from bk; without it /_ping
// says Builder-Version 1 and the CLI builds with POST /build.
func (s *Server) UseBuildKit(bk BuildKit) { s.buildkit = bk }

// switchToH2C is the answer to a hijack of /grpc or /session: the client
// speaks HTTP/2 on the connection from here on.
const switchToH2C = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

// buildkitGRPC serves BuildKit's API (Control, the frontends' LLB
// bridge) on the hijacked connection.
func (s *Server) buildkitGRPC(ctx *fasthttp.RequestCtx) {
	if s.buildkit == nil {
		writeError(ctx, messages.NotImplemented("BuildKit is not available on this daemon"))
		return
	}
	bk := s.buildkit
	s.hijackH2C(ctx, func(_ context.Context, c net.Conn) { bk.ServeConn(c) })
}

// buildkitSession carries a build's session: the client serves the
// build context, secrets and credentials on it.
func (s *Server) buildkitSession(ctx *fasthttp.RequestCtx) {
	if s.buildkit == nil {
		writeError(ctx, messages.NotImplemented("BuildKit is not available on this daemon"))
		return
	}
	headers := map[string][]string{}
	ctx.Request.Header.VisitAll(func(k, v []byte) {
		key := http.CanonicalHeaderKey(string(k))
		headers[key] = append(headers[key], string(v))
	})
	bk, log := s.buildkit, s.log
	s.hijackH2C(ctx, func(sctx context.Context, c net.Conn) {
		if err := bk.ServeSession(sctx, c, headers); err != nil {
			log.Debug("build session ended", "err", err)
		}
	})
}

// hijackH2C answers 101 and runs serve on a connection of its own, bridged
// to the client's. fasthttp recycles a hijacked connection once the
// handler returns, but gRPC's goroutines may touch theirs later: serve
// gets one end of a socket pair, and the handler returns only when both
// copies are done. serve's context ends when the client hangs up (a
// session would otherwise linger until its health checks give up).
func (s *Server) hijackH2C(ctx *fasthttp.RequestCtx, serve func(context.Context, net.Conn)) {
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		raw := c
		if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
			raw = u.UnsafeConn()
		}
		if _, err := c.Write([]byte(switchToH2C)); err != nil {
			return
		}
		inner, outer, err := socketPair()
		if err != nil {
			s.log.Warn("buildkit connection", "err", err)
			return
		}
		sctx, hungUp := context.WithCancel(context.Background())
		defer hungUp()
		go func() {
			serve(sctx, inner)
			inner.Close()
		}()
		fromClient := make(chan struct{})
		go func() {
			defer close(fromClient)
			io.Copy(outer, c)
			outer.CloseWrite()
			hungUp()
		}()
		io.Copy(c, outer)
		// The server side is done: stop reading the client before the
		// connection goes back to fasthttp.
		raw.Close()
		<-fromClient
		outer.Close()
	})
}

// socketPair is two connected unix stream sockets.
func socketPair() (inner net.Conn, outer *net.UnixConn, err error) {
	a, b, err := socketpair.New(unix.SOCK_STREAM, "buildkit-conn", "buildkit-conn")
	if err != nil {
		return nil, nil, err
	}
	conns := make([]net.Conn, 2)
	for i, f := range []*os.File{a, b} {
		conns[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			if i == 0 {
				b.Close()
			}
			return nil, nil, fmt.Errorf("socketpair: %w", err)
		}
	}
	return conns[0], conns[1].(*net.UnixConn), nil
}

// buildPrune is POST /build/prune.
func (s *Server) buildPrune(ctx *fasthttp.RequestCtx) {
	if s.buildkit == nil {
		writeError(ctx, messages.NotImplemented("BuildKit is not available on this daemon"))
		return
	}
	opts, err := buildPruneOptions(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := s.buildkit.Prune(rctx, opts)
	if err != nil {
		writeError(ctx, messages.Internal("%v", err))
		return
	}
	if rep.CachesDeleted == nil {
		rep.CachesDeleted = []string{}
	}
	writeJSON(ctx, fasthttp.StatusOK, rep)
}

// buildPruneOptions reads POST /build/prune's query as dockerd does:
// sizes in bytes, keep-storage as the older name of reserved-space, the
// until filter as a duration and the others as BuildKit's filters.
func buildPruneOptions(ctx *fasthttp.RequestCtx) (messages.BuildCachePrune, error) {
	q := ctx.QueryArgs()
	var opts messages.BuildCachePrune
	opts.All = boolParam(ctx, "all")
	sizes := []struct {
		name string
		dst  *int64
	}{
		{"keep-storage", &opts.ReservedSpace},
		{"reserved-space", &opts.ReservedSpace},
		{"max-used-space", &opts.MaxUsedSpace},
		{"min-free-space", &opts.MinFreeSpace},
	}
	for _, sz := range sizes {
		raw := q.Peek(sz.name)
		if len(raw) == 0 {
			continue
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n < 0 {
			return opts, messages.InvalidParameter("invalid %s: %q", sz.name, raw)
		}
		*sz.dst = n
	}
	filters, err := filtersParam(ctx)
	if err != nil {
		return opts, err
	}
	for key, values := range filters {
		for _, v := range values {
			switch key {
			case "until":
				d, err := time.ParseDuration(v)
				if err != nil {
					return opts, messages.InvalidParameter("%q is not a valid duration", v)
				}
				opts.KeepDuration = d
			case "id", "parent", "type", "description", "inuse", "shared", "private":
				opts.Filters = append(opts.Filters, key+"=="+v)
			default:
				return opts, messages.InvalidParameter("invalid filter '%s'", key)
			}
		}
	}
	return opts, nil
}
