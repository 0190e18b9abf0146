package httpfront

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

// TestRequestsRefusedBeforeActors drives the router with requests that
// must be answered without asking any actor (the server has none here):
// Docker routes Arca does not serve are 501, unknown paths 404, and
// hostile values a 400, never a 500.
func TestRequestsRefusedBeforeActors(t *testing.T) {
	s := New(nil, Info{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	q := url.QueryEscape
	create := `{"Image":"busybox"}`
	cases := []struct {
		method, uri, body string
		status            int
		msg               string // substring of the message
	}{
		// Unimplemented Docker routes: 501, with and without a version.
		{"POST", "/containers/abc/update", "{}", 501, "container update"},
		// Without a BuildKit engine (it failed to start) its endpoints say so.
		{"POST", "/build/prune", "", 501, "BuildKit is not available"},
		{"POST", "/session", "", 501, "BuildKit is not available"},
		{"POST", "/grpc", "", 501, "BuildKit is not available"},
		{"GET", "/images/search?term=x", "", 501, "image search"},
		{"GET", "/images/busybox/attestations", "", 501, "image attestations"},
		{"GET", "/swarm", "", 501, "swarm (GET /swarm) is not implemented by Arca"},
		{"POST", "/swarm/init", "{}", 501, "swarm"},
		{"GET", "/nodes", "", 501, "swarm nodes"},
		{"GET", "/services", "", 501, "swarm services"},
		{"GET", "/tasks/x/logs", "", 501, "swarm tasks"},
		{"GET", "/secrets", "", 501, "swarm secrets"},
		{"DELETE", "/configs/x", "", 501, "swarm configs"},
		{"GET", "/plugins/vieux/sshfs:latest/json", "", 404, `plugin "vieux/sshfs:latest" not found`},
		{"POST", "/plugins/vieux/sshfs/enable", "", 501, "plugins"},
		{"DELETE", "/plugins/vieux/sshfs", "", 501, "plugins"},
		{"GET", "/distribution/Bad:Name/json", "", 400, "invalid reference format"},
		{"PUT", "/volumes/x", "{}", 501, "cluster volume update"},
		// A build's parameters are checked before any step runs.
		{"POST", "/v1.51/build?buildargs=" + q("{not json"), "", 400, "invalid buildargs"},
		{"POST", "/build?labels=" + q("[1]"), "", 400, "invalid labels"},
		{"POST", "/build?t=" + q("Bad:Name"), "", 400, "invalid reference format"},
		{"POST", "/build?remote=" + q("https://example.com/ctx.tar"), "", 400, "remote build context"},
		// Real 404s stay.
		{"GET", "/nope", "", 404, "page not found"},
		{"GET", "/v1.45/swarmy", "", 404, "page not found"},
		{"GET", "/plugins/x/nope", "", 404, "page not found"},
		{"GET", "/distribution/busybox", "", 404, "page not found"},
		{"GET", "/images/busybox/nope", "", 404, "page not found"},
		// Hostile archive paths.
		{"GET", "/containers/x/archive?path=" + q("/etc/\x00passwd"), "", 400, "NUL byte"},
		{"HEAD", "/containers/x/archive?path=" + q("/a\x00"), "", 400, ""},
		{"PUT", "/containers/x/archive?path=" + q("/tmp\x00"), "", 400, "NUL byte"},
		{"GET", "/containers/x/archive?path=" + q("/"+strings.Repeat("a/", 2100)), "", 400, "file name too long"},
		{"GET", "/containers/x/archive?path=" + q("/tmp/"+strings.Repeat("n", 256)), "", 400, "file name too long"},
		{"PUT", "/containers/x/archive?path=" + q("/tmp/"+strings.Repeat("n", 256)), "", 400, "file name too long"},
		{"GET", "/containers/x/archive?path=" + q("/proc/1/root/etc/passwd"), "", 400, "/proc/<pid>/root"},
		{"GET", "/containers/x/archive?path=" + q("/proc/self/root"), "", 400, "/proc/<pid>/root"},
		{"PUT", "/containers/x/archive?path=" + q("proc/1/cwd/"), "", 400, "/proc/<pid>/root"},
		{"GET", "/containers/x/archive?path=" + q("/proc/../proc/1/root/x"), "", 400, "/proc/<pid>/root"},
		{"GET", "/containers/x/archive", "", 400, "path is required"},
		// Platforms: dockerd's parser and words.
		{"POST", "/containers/create?platform=" + q("bogus/arch"), create, 400, `"bogus/arch": unknown operating system or architecture: invalid argument`},
		{"POST", "/containers/create?platform=bogus", create, 400, `"bogus": unknown operating system or architecture: invalid argument`},
		{"POST", "/containers/create?platform=" + q("linux/*"), create, 400, `"linux/*": wildcards not yet supported: invalid argument`},
		{"POST", "/containers/create?platform=" + q("linux/a b"), create, 400, `"a b" is an invalid component of "linux/a b"`},
		{"POST", "/containers/create?platform=" + q("linux/amd64/v1/x"), create, 400, `cannot parse platform specifier`},
		{"POST", "/images/create?fromImage=busybox&platform=" + q("bogus/arch"), "", 400, `"bogus/arch": unknown operating system or architecture: invalid argument`},
		{"POST", "/images/create?fromImage=busybox&platform=" + q("linux/"), "", 400, `is an invalid component`},
		// Commit and import: changes, references and sources refused first.
		{"POST", "/commit?container=x&changes=" + q("RUN rm -rf /"), "", 400, "RUN is not a valid change command"},
		{"POST", "/commit?container=x&changes=" + q("EXPOSE 99999"), "", 400, "invalid port"},
		{"POST", "/commit?container=x&repo=" + q("Bad:Name"), "", 400, "invalid reference format"},
		{"POST", "/commit?container=x&repo=x&tag=" + q("sha256:abc"), "", 400, "digest reference"},
		{"POST", "/commit?container=x", "{", 400, "invalid JSON"},
		{"POST", "/images/create?fromSrc=" + q("http://example.com/rootfs.tar"), "", 400, "import from a URL (http://example.com/rootfs.tar) is not supported"},
		{"POST", "/images/create?fromSrc=-&changes=" + q("FROM busybox"), "", 400, "FROM is not a valid change command"},
		{"POST", "/images/create?fromSrc=-&platform=" + q("bogus/arch"), "", 400, "unknown operating system"},
		// Bodies.
		{"POST", "/containers/create", `{"Image":`, 400, ""},
		{"POST", "/containers/create", `{}`, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.uri[:min(len(c.uri), 60)], func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(c.method)
			ctx.Request.SetRequestURI(c.uri)
			ctx.Request.SetBodyString(c.body)
			s.serve(&ctx)
			if got := ctx.Response.StatusCode(); got != c.status {
				t.Fatalf("status %d, want %d: %s", got, c.status, ctx.Response.Body())
			}
			if c.method == "HEAD" {
				return
			}
			var body errorBody
			if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
				t.Fatalf("body %q: %v", ctx.Response.Body(), err)
			}
			if !strings.Contains(body.Message, c.msg) {
				t.Errorf("message %q, want it to contain %q", body.Message, c.msg)
			}
		})
	}
}

func TestCheckPlatformAccepts(t *testing.T) {
	for _, p := range []string{"linux", "amd64", "linux/amd64", "linux/arm64/v8", "Linux/x86_64", "linux/arm/v7", "windows/amd64", "linux/aarch64", "darwin/arm64"} {
		if err := checkPlatform(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestErrorBodyNotHTMLEscaped: messages go out as dockerd writes them,
// without \u003c for "<" (its WriteJSON turns HTML escaping off).
func TestErrorBodyNotHTMLEscaped(t *testing.T) {
	var ctx fasthttp.RequestCtx
	writeError(&ctx, messages.InvalidParameter("soft limit: 200 > 100 & <x>"))
	if got := string(ctx.Response.Body()); got != `{"message":"soft limit: 200 > 100 & <x>"}`+"\n" {
		t.Errorf("body %q", got)
	}
}

// A handler that panics is answered with a 500 and the server goes on.
func TestPanicIsA500(t *testing.T) {
	s := New(nil, Info{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.router.GET("/boom", func(*fasthttp.RequestCtx) { panic("boom") })
	for range 2 {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.SetRequestURI("/boom")
		s.serve(&ctx)
		if got := ctx.Response.StatusCode(); got != 500 || !strings.Contains(string(ctx.Response.Body()), "internal error: boom") {
			t.Fatalf("status %d body %s", got, ctx.Response.Body())
		}
	}
}
