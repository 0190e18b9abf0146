package httpfront

import (
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

func pruneRequest(query string) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.SetRequestURI("/build/prune?" + query)
	return ctx
}

func TestBuildPruneOptions(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  messages.BuildCachePrune
		bad   bool
	}{
		{"", messages.BuildCachePrune{}, false},
		{"all=1&keep-storage=1000", messages.BuildCachePrune{All: true, ReservedSpace: 1000}, false},
		{"reserved-space=5&max-used-space=6&min-free-space=7", messages.BuildCachePrune{ReservedSpace: 5, MaxUsedSpace: 6, MinFreeSpace: 7}, false},
		{"filters=" + url.QueryEscape(`{"until":{"24h":true},"type":{"regular":true}}`), messages.BuildCachePrune{KeepDuration: 24 * time.Hour, Filters: []string{"type==regular"}}, false},
		{"max-used-space=-1", messages.BuildCachePrune{}, true},
		{"keep-storage=lots", messages.BuildCachePrune{}, true},
		{"filters=" + url.QueryEscape(`{"until":{"yesterday":true}}`), messages.BuildCachePrune{}, true},
		{"filters=" + url.QueryEscape(`{"color":{"red":true}}`), messages.BuildCachePrune{}, true},
	} {
		got, err := buildPruneOptions(pruneRequest(tc.query))
		if tc.bad {
			if err == nil || statusOf(err) != fasthttp.StatusBadRequest {
				t.Errorf("%q: %v, want a 400", tc.query, err)
			}
			continue
		}
		slices.Sort(got.Filters)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, %v; want %+v", tc.query, got, err, tc.want)
		}
	}
}

// FuzzBuildPruneOptions: any query decodes or is a 400.
func FuzzBuildPruneOptions(f *testing.F) {
	for _, s := range []string{"", "all=true&keep-storage=10", "filters=%7B%22until%22%3A%7B%221h%22%3Atrue%7D%7D", "max-used-space=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		if _, err := buildPruneOptions(pruneRequest(query)); err != nil && statusOf(err) != fasthttp.StatusBadRequest {
			t.Fatalf("status %d: %v", statusOf(err), err)
		}
	})
}
