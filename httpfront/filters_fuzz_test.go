package httpfront

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzFilters feeds any filters= value, through the query string as a
// client sends it, to the parser ps, images, networks, volumes and events
// share. A value decodes or is a 400; what decodes means the same set of
// key=value terms once written back in Docker's current form, so neither
// form loses or invents a term.
func FuzzFilters(f *testing.F) {
	for _, s := range []string{
		``,
		`{"label":{"a=b":true}}`,
		`{"label":{"com.docker.compose.project=app":true,"com.docker.compose.oneoff=False":true},"status":{"running":true}}`,
		`{"status":["running","exited"],"name":["web"]}`,
		`{"dangling":{"true":true},"reference":{"busybox:*":true}}`,
		`{"type":{"container":true},"event":{"die":true,"start":false}}`,
		`{"until":{"2024-01-01T00:00:00Z":true}}`,
		`{"a":{"x":true},"b":["y"]}`,
		`{"a":null}`,
		`null`,
		`[]`,
		`{broken`,
		`{"a":{"b":1}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseFilters(raw)
		if err != nil {
			if statusOf(err) != fasthttp.StatusBadRequest {
				t.Fatalf("status %d: %v", statusOf(err), err)
			}
			return
		}
		if got == nil {
			t.Fatal("nil map with no error")
		}
		canon := map[string]map[string]bool{}
		for k, vals := range got {
			for _, v := range vals {
				if canon[k] == nil {
					canon[k] = map[string]bool{}
				}
				canon[k][v] = true
			}
		}
		b, err := json.Marshal(canon)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseFilters(string(b))
		if err != nil {
			t.Fatalf("canonical form %s: %v", b, err)
		}
		if a, c := termSet(got), termSet(again); !slices.Equal(a, c) {
			t.Fatalf("%q: terms %q, written back as %s: %q", raw, a, b, c)
		}
	})
}

func parseFilters(raw string) (map[string][]string, error) {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/containers/json")
	if raw != "" {
		ctx.QueryArgs().Set("filters", raw)
	}
	// Through the wire form, so escaping is part of what is fuzzed.
	var req fasthttp.Request
	req.SetRequestURI(string(ctx.Request.URI().FullURI()))
	ctx.Request.SetRequestURI(string(req.URI().RequestURI()))
	return filtersParam(&ctx)
}

// termSet lists "key\x00value" once per distinct term, sorted.
func termSet(m map[string][]string) []string {
	set := map[string]bool{}
	for k, vals := range m {
		for _, v := range vals {
			set[k+"\x00"+v] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
