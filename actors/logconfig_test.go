package actors

import (
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
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

// A container from before rotation keeps its container.log, under the
// json-file name, and gets its rotation settings from its record.
func TestOpenContainerLogMigrates(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "container.log")
	if err := os.WriteFile(old, []byte(`{"log":"before\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}`+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	rec := &persistence.ContainerRecord{ID: "abc", HostConfig: &container.HostConfig{LogConfig: container.LogConfig{
		Type: "json-file", Config: map[string]string{"max-size": "1k", "max-file": "2"},
	}}}
	w, err := openContainerLog(dir, rec, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		if err := w.Write(1, []byte("after, long enough to rotate soon\n"), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"abc-json.log", "abc-json.log.1"}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
}
