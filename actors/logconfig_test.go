package actors

import (
	"maps"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/messages"
)

func TestMergeLogConfig(t *testing.T) {
	defaults := map[string]string{"max-size": "10m", "max-file": "3"}
	cases := []struct {
		name     string
		in       container.LogConfig
		defaults map[string]string
		want     container.LogConfig
		err      string
	}{
		{"empty, no defaults", container.LogConfig{}, nil,
			container.LogConfig{Type: "json-file", Config: map[string]string{}}, ""},
		{"daemon defaults", container.LogConfig{}, defaults,
			container.LogConfig{Type: "json-file", Config: defaults}, ""},
		{"container wins", container.LogConfig{Config: map[string]string{"max-size": "1m"}}, defaults,
			container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m", "max-file": "3"}}, ""},
		{"bad size", container.LogConfig{Config: map[string]string{"max-size": "abc"}}, nil,
			container.LogConfig{}, "invalid size: 'abc'"},
		{"bad count", container.LogConfig{Config: map[string]string{"max-file": "0"}}, defaults,
			container.LogConfig{}, "max-file cannot be less than 1"},
		{"unknown key", container.LogConfig{Type: "json-file", Config: map[string]string{"mode": "non-blocking"}}, nil,
			container.LogConfig{}, "unknown log opt 'mode' for json-file log driver"},
		{"other driver keeps its own", container.LogConfig{Type: "none"}, defaults,
			container.LogConfig{Type: "none", Config: map[string]string{}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lc := c.in
			err := mergeLogConfig(&lc, c.defaults)
			if c.err != "" {
				if err == nil || err.Error() != c.err || messages.KindOf(err) != messages.KindInvalidParameter {
					t.Fatalf("error %v, want invalid parameter %q", err, c.err)
				}
				return
			}
			if err != nil || lc.Type != c.want.Type || !maps.Equal(lc.Config, c.want.Config) {
				t.Fatalf("got %+v, %v; want %+v", lc, err, c.want)
			}
		})
	}
}
