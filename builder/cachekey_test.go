package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// entriesContext is a context of tar entries as given (headers and
// contents), for what contextTar cannot say: modes, owners, times.
func entriesContext(t *testing.T, entries []tar.Header, contents map[string]string) *Context {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h.Size = int64(len(contents[h.Name]))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(contents[h.Name]))
	}
	tw.Close()
	c, err := ReadContext(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSourceHash(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	file := func(name string, mode int64) tar.Header {
		return tar.Header{Name: name, Mode: mode, Typeflag: tar.TypeReg, ModTime: t0}
	}
	base := []tar.Header{{Name: "d/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: t0}, file("d/a", 0o644), file("d/b", 0o644), file("c", 0o644)}
	contents := map[string]string{"d/a": "A", "d/b": "B", "c": "C"}
	hash := func(t *testing.T, entries []tar.Header, contents map[string]string, srcs ...string) string {
		c := entriesContext(t, entries, contents)
		matched, err := c.sources(copySpec{srcs: srcs, dest: "/x/"})
		if err != nil {
			t.Fatal(err)
		}
		return c.sourceHash(matched)
	}
	with := func(change func(h *tar.Header)) []tar.Header {
		out := slices.Clone(base)
		for i := range out {
			change(&out[i])
		}
		return out
	}
	tests := []struct {
		name     string
		srcs     []string
		entries  []tar.Header
		contents map[string]string
		same     bool
	}{
		{"the same context", []string{"c"}, base, contents, true},
		{"a touched file", []string{"c"}, with(func(h *tar.Header) { h.ModTime = t0.Add(time.Hour) }), contents, true},
		{"another file's change", []string{"c"}, base, map[string]string{"d/a": "A2", "d/b": "B", "c": "C"}, true},
		{"a changed file", []string{"c"}, base, map[string]string{"d/a": "A", "d/b": "B", "c": "C2"}, false},
		{"a changed mode", []string{"c"}, with(func(h *tar.Header) { h.Mode |= 0o100 }), contents, false},
		{"a changed owner", []string{"c"}, with(func(h *tar.Header) { h.Uid = 7 }), contents, false},
		{"a file changed in a directory", []string{"d"}, base, map[string]string{"d/a": "A", "d/b": "B2", "c": "C"}, false},
		{"a file renamed in a directory", []string{"d"}, []tar.Header{base[0], file("d/a", 0o644), file("d/z", 0o644), base[3]}, map[string]string{"d/a": "A", "d/z": "B", "c": "C"}, false},
		{"a file added to a directory", []string{"d"}, append(slices.Clone(base), file("d/new", 0o644)), contents, false},
		{"one of several changed", []string{"c", "d/a"}, base, map[string]string{"d/a": "A2", "d/b": "B", "c": "C"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := hash(t, base, contents, tt.srcs...)
			got := hash(t, tt.entries, tt.contents, tt.srcs...)
			if (got == want) != tt.same {
				t.Errorf("hash %s, before %s: same %v, want %v", got, want, got == want, tt.same)
			}
		})
	}
	kinds := []struct {
		srcs   []string
		prefix string
	}{
		{[]string{"c"}, "file:"},
		{[]string{"d"}, "dir:"},
		{[]string{"."}, "dir:"},
		{[]string{"d/*"}, "multi:"},
		{[]string{"c", "d/a"}, "multi:"},
	}
	for _, k := range kinds {
		if h := hash(t, base, contents, k.srcs...); !strings.HasPrefix(h, k.prefix) || len(h) != len(k.prefix)+64 {
			t.Errorf("hash of %q = %q, want %s<sha256>", k.srcs, h, k.prefix)
		}
	}
}

func TestCopyInstruction(t *testing.T) {
	tests := []struct {
		spec copySpec
		want string
	}{
		{copySpec{dest: "/app"}, "COPY file:h in /app "},
		{copySpec{dest: ".", add: true}, "ADD file:h in . "},
		{copySpec{dest: "/app/", chown: "1:2"}, "COPY --chown=1:2 file:h in /app/ "},
		{copySpec{dest: "/app/", chown: "1", chmod: "600"}, "COPY --chown=1 --chmod=600 file:h in /app/ "},
	}
	for _, tt := range tests {
		if got := copyInstruction(tt.spec, "file:h"); got != tt.want {
			t.Errorf("copyInstruction(%+v) = %q, want %q", tt.spec, got, tt.want)
		}
	}
}

func TestStepRecords(t *testing.T) {
	cfg := container.Config{Env: []string{"A=1"}, Entrypoint: []string{"/e"}, Cmd: []string{"old"}}
	bash := cfg
	bash.Shell = []string{"/bin/bash", "-c"}
	tests := []struct {
		name string
		step container.Config
		cmd  []string
	}{
		{"config instruction", nopStep(cfg, "ENV A=1", false), []string{"/bin/sh", "-c", "#(nop) ", "ENV A=1"}},
		{"COPY", nopStep(cfg, "COPY file:h in / ", true), []string{"/bin/sh", "-c", "#(nop) COPY file:h in / "}},
		{"through SHELL", nopStep(bash, "LABEL a=b", false), []string{"/bin/bash", "-c", "#(nop) ", "LABEL a=b"}},
		{"RUN", runStepConfig(cfg, []string{"/bin/sh", "-c", "make"}, nil), []string{"/bin/sh", "-c", "make"}},
		{"RUN with build args", runStepConfig(cfg, []string{"/bin/sh", "-c", "make"}, []string{"Z=1", "B=2"}),
			[]string{"|2", "B=2", "Z=1", "/bin/sh", "-c", "make"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.step.Cmd, tt.cmd) {
				t.Errorf("Cmd %q, want %q", tt.step.Cmd, tt.cmd)
			}
			if !slices.Equal(tt.step.Env, cfg.Env) {
				t.Errorf("Env %q, want the stage's", tt.step.Env)
			}
			if strings.HasPrefix(tt.name, "RUN") != (tt.step.Entrypoint == nil) {
				t.Errorf("Entrypoint %q: a RUN is recorded without one, others with the stage's", tt.step.Entrypoint)
			}
		})
	}
	if !slices.Equal(cfg.Cmd, []string{"old"}) {
		t.Errorf("the stage's config changed: %q", cfg.Cmd)
	}
}

// buildOnce runs a build of files with opt on f, answering the image ID
// and the progress text.
func buildOnce(t *testing.T, f *fake, files map[string]string, opt Options) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	id, err := Build(context.Background(), f, contextTar(t, files), opt, NewOutput(&buf, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for dec := json.NewDecoder(&buf); dec.More(); {
		var m message
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		text.WriteString(m.Stream)
	}
	return id, text.String()
}

func TestBuildCache(t *testing.T) {
	dockerfile := `FROM base
ARG V=1
ENV E=e
COPY a.txt /a
RUN make $V
COPY b.txt /b
CMD ["run"]
`
	files := map[string]string{"Dockerfile": dockerfile, "a.txt": "A", "b.txt": "B"}
	one, two := "1", "2"
	tests := []struct {
		name   string
		files  map[string]string
		opt    Options
		cached int // steps after FROM that the cache has
		runs   int
	}{
		{"the same build", files, Options{}, 6, 0},
		{"--no-cache", files, Options{NoCache: true}, 0, 1},
		{"a changed file", map[string]string{"Dockerfile": dockerfile, "a.txt": "A2", "b.txt": "B"}, Options{}, 2, 1},
		{"a file copied later", map[string]string{"Dockerfile": dockerfile, "a.txt": "A", "b.txt": "B2"}, Options{}, 4, 0},
		{"a build arg", files, Options{BuildArgs: map[string]*string{"V": &two}}, 3, 1},
		{"an empty build arg", files, Options{BuildArgs: map[string]*string{"V": new(string)}}, 3, 1},
		{"a build arg as its default", files, Options{BuildArgs: map[string]*string{"V": &one}}, 6, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			first, _ := buildOnce(t, f, files, Options{})
			f.runs = nil
			id, out := buildOnce(t, f, tt.files, tt.opt)
			if n := strings.Count(out, " ---> Using cache\n"); n != tt.cached {
				t.Errorf("%d steps from the cache, want %d:\n%s", n, tt.cached, out)
			}
			if len(f.runs) != tt.runs {
				t.Errorf("%d RUN containers, want %d", len(f.runs), tt.runs)
			}
			if (id == first) != (tt.cached == 6) {
				t.Errorf("image %s, first build's %s: same only when every step is cached", id, first)
			}
		})
	}
}

// TestBuildCacheBust: after a stage's first miss no step of the stage is
// probed, as on dockerd; the next stage probes again.
func TestBuildCacheBust(t *testing.T) {
	f := newFake()
	files := map[string]string{"Dockerfile": "FROM base AS one\nENV A=1\nENV B=1\nFROM base\nENV C=1\n"}
	buildOnce(t, f, files, Options{})
	files["Dockerfile"] = "FROM base AS one\nENV A=2\nENV B=1\nFROM base\nENV C=1\n"
	f.probes = 0
	_, out := buildOnce(t, f, files, Options{})
	if f.probes != 2 || strings.Count(out, "Using cache") != 1 {
		t.Errorf("%d probes (want the first stage's miss and the second stage's hit), output:\n%s", f.probes, out)
	}
	// FROM scratch: nothing to probe.
	f.probes = 0
	buildOnce(t, f, map[string]string{"Dockerfile": "FROM scratch\nENV A=1\n"}, Options{})
	if f.probes != 0 {
		t.Errorf("%d probes after FROM scratch", f.probes)
	}
}
