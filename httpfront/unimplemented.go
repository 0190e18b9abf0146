package httpfront

import (
	"strings"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

// unimplemented lists the Docker Engine API routes (swagger of API 1.51
// and the BuildKit hijack endpoints) that Arca does not serve. Each
// answers 501 with a JSON message, so a client can tell "not here" from
// "no such thing" (a real 404 stays for unknown paths and missing objects).
var unimplemented = []struct{ method, path, what string }{
	{"POST", "/containers/{id}/update", "container update"},
	{"GET", "/containers/{id}/attach/ws", "attach over websocket"},
	{"GET", "/images/search", "image search"},
	{"PUT", "/volumes/{name}", "cluster volume update"},
	{"GET", "/swarm", "swarm"},
	{"POST", "/swarm/init", "swarm"},
	{"POST", "/swarm/join", "swarm"},
	{"POST", "/swarm/leave", "swarm"},
	{"POST", "/swarm/update", "swarm"},
	{"GET", "/swarm/unlockkey", "swarm"},
	{"POST", "/swarm/unlock", "swarm"},
	{"GET", "/nodes", "swarm nodes"},
	{"GET", "/nodes/{id}", "swarm nodes"},
	{"DELETE", "/nodes/{id}", "swarm nodes"},
	{"POST", "/nodes/{id}/update", "swarm nodes"},
	{"GET", "/services", "swarm services"},
	{"POST", "/services/create", "swarm services"},
	{"GET", "/services/{id}", "swarm services"},
	{"DELETE", "/services/{id}", "swarm services"},
	{"POST", "/services/{id}/update", "swarm services"},
	{"GET", "/services/{id}/logs", "swarm services"},
	{"GET", "/tasks", "swarm tasks"},
	{"GET", "/tasks/{id}", "swarm tasks"},
	{"GET", "/tasks/{id}/logs", "swarm tasks"},
	{"GET", "/secrets", "swarm secrets"},
	{"POST", "/secrets/create", "swarm secrets"},
	{"GET", "/secrets/{id}", "swarm secrets"},
	{"DELETE", "/secrets/{id}", "swarm secrets"},
	{"POST", "/secrets/{id}/update", "swarm secrets"},
	{"GET", "/configs", "swarm configs"},
	{"POST", "/configs/create", "swarm configs"},
	{"GET", "/configs/{id}", "swarm configs"},
	{"DELETE", "/configs/{id}", "swarm configs"},
	{"POST", "/configs/{id}/update", "swarm configs"},
	{"GET", "/plugins/privileges", "plugins"},
	{"POST", "/plugins/pull", "plugins"},
	{"POST", "/plugins/create", "plugins"},
	// Plugin names carry slashes: the rest of the path is checked below.
	{"POST", "/plugins/{name:*}", "plugins"},
	{"DELETE", "/plugins/{name:*}", "plugins"},
}

// catchAllSuffixes are the endpoints a catch-all route stands for, by the
// last path element; anything else under it stays a 404.
var catchAllSuffixes = map[string][]string{
	"POST /plugins/{name:*}":   {"/enable", "/disable", "/upgrade", "/push", "/set"},
	"DELETE /plugins/{name:*}": {""},
}

func registerUnimplemented(r *router.Router) {
	// Arca has no plugins: the list is empty and each inspect a 404, so
	// that docker inspect, which tries every kind of object, ends with
	// "No such object" as on dockerd.
	r.GET("/plugins", func(ctx *fasthttp.RequestCtx) { writeJSON(ctx, fasthttp.StatusOK, []struct{}{}) })
	r.GET("/plugins/{name:*}", func(ctx *fasthttp.RequestCtx) {
		name, ok := strings.CutSuffix(nameParam(ctx), "/json")
		if !ok || name == "" {
			writeError(ctx, messages.NotFound("page not found"))
			return
		}
		writeError(ctx, messages.NotFound("plugin %q not found", name))
	})
	for _, u := range unimplemented {
		route := u.method + " " + strings.ReplaceAll(u.path, "{name:*}", "{name}")
		r.Handle(u.method, u.path, notImplemented(u.what+" ("+route+")", catchAllSuffixes[u.method+" "+u.path]))
	}
}

// notImplemented answers 501 "<what> is not implemented by Arca". With
// suffixes, the path must end in one of them ("" is any).
func notImplemented(what string, suffixes []string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if suffixes != nil {
			name := nameParam(ctx)
			ok := false
			for _, s := range suffixes {
				if strings.HasSuffix(name, s) && len(name) > len(s) {
					ok = true
				}
			}
			if !ok {
				writeError(ctx, messages.NotFound("page not found"))
				return
			}
		}
		writeError(ctx, notImplementedError(what))
	}
}

func notImplementedError(what string) error {
	return messages.NotImplemented("%s is not implemented by Arca", what)
}
