package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/internal/buildcache"
)

// contextTar is a context tar of files (name: content; a name ending in
// "/" is a directory).
func contextTar(t *testing.T, files map[string]string) *Context {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(files[n]))}
		if strings.HasSuffix(n, "/") {
			h = &tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	c, err := ReadContext(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tarOf is a tar of names (dirs end in "/"), owned by 5, a file's content "Z".
func tarOf(names ...string) string {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if strings.HasSuffix(n, "/") {
			tw.WriteHeader(&tar.Header{Name: n, Mode: 0o700, Uid: 5, Typeflag: tar.TypeDir})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o600, Uid: 5, Typeflag: tar.TypeReg, Size: 1})
		tw.Write([]byte("Z"))
	}
	tw.Close()
	return buf.String()
}

// layerFiles lists a layer tar as "name mode uid" lines, with content for files.
func layerFiles(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		line := fmt.Sprintf("%s %o %d", h.Name, h.Mode, h.Uid)
		if h.Typeflag == tar.TypeReg {
			line += " " + string(data)
		}
		out = append(out, line)
	}
}

func TestCopyLayer(t *testing.T) {
	files := map[string]string{"t.tar": tarOf("in/", "in/z"), "a.txt": "A", "b.txt": "B", "dir/": "", "dir/c.txt": "C", "dir/sub/d.txt": "D", ".dockerignore": "b.txt\n", "Dockerfile": "FROM x"}
	tests := []struct {
		name string
		spec copySpec
		want []string
		err  string
	}{
		{"file to a path", copySpec{srcs: []string{"a.txt"}, dest: "/x/y"},
			[]string{"x/ 755 0", "x/y 644 0 A"}, ""},
		{"file into a dir", copySpec{srcs: []string{"a.txt"}, dest: "/x/"},
			[]string{"x/ 755 0", "x/a.txt 644 0 A"}, ""},
		{"relative to the workdir", copySpec{srcs: []string{"a.txt"}, dest: ".", workdir: "/app"},
			[]string{"app/ 755 0", "app/a.txt 644 0 A"}, ""},
		{"a directory's contents", copySpec{srcs: []string{"dir"}, dest: "/d"},
			[]string{"d/ 755 0", "d/c.txt 644 0 C", "d/sub/ 755 0", "d/sub/d.txt 644 0 D"}, ""},
		{"glob, chown, chmod", copySpec{srcs: []string{"*.txt"}, dest: "/g/", chown: "7:8", chmod: "600"},
			[]string{"g/ 755 7", "g/a.txt 600 7 A"}, ""},
		{"ignored", copySpec{srcs: []string{"b.txt"}, dest: "/"}, nil, "file not found in build context"},
		{"several to a file", copySpec{srcs: []string{"a.txt", "dir/c.txt"}, dest: "/f"}, nil, "must be a directory and end with a /"},
		{"ADD unpacks an archive", copySpec{srcs: []string{"t.tar"}, dest: "/u", add: true},
			[]string{"u/ 755 0", "u/in/ 700 5", "u/in/z 600 5 Z"}, ""},
		{"COPY does not", copySpec{srcs: []string{"t.tar"}, dest: "/u/"},
			[]string{"u/ 755 0", "u/t.tar 644 0 " + tarOf("in/", "in/z")}, ""},
		{"URL", copySpec{srcs: []string{"https://example.com/x"}, dest: "/", add: true}, nil, "ADD from a URL"},
		{"chown by name", copySpec{srcs: []string{"a.txt"}, dest: "/", chown: "nobody"}, nil, "only numeric"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := contextTar(t, files)
			if err := c.Ignore("Dockerfile"); err != nil {
				t.Fatal(err)
			}
			matched, err := c.sources(tt.spec)
			var b []byte
			if err == nil {
				b, err = c.layer(tt.spec, matched)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := layerFiles(t, b); !slices.Equal(got, tt.want) {
				t.Errorf("layer %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadContextDockerfileOnly(t *testing.T) {
	c, err := ReadContext(strings.NewReader("FROM base\nRUN x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if df, ok := c.File("Dockerfile"); !ok || string(df) != "FROM base\nRUN x\n" {
		t.Errorf("a bare Dockerfile body: %q %v", df, ok)
	}
	if len(c.files) != 1 {
		t.Errorf("files %d", len(c.files))
	}
}

func TestRunCmd(t *testing.T) {
	tests := []struct {
		shell   []string
		prepend bool
		line    []string
		want    []string
	}{
		{nil, true, []string{"echo hi"}, []string{"/bin/sh", "-c", "echo hi"}},
		{[]string{"/bin/bash", "-xc"}, true, []string{"echo hi"}, []string{"/bin/bash", "-xc", "echo hi"}},
		{nil, false, []string{"echo", "hi"}, []string{"echo", "hi"}},
	}
	for _, tt := range tests {
		cfg := &container.Config{Shell: tt.shell}
		c := &instructions.RunCommand{ShellDependantCmdLine: instructions.ShellDependantCmdLine{CmdLine: tt.line, PrependShell: tt.prepend}}
		if got := runCmd(cfg, c); !slices.Equal(got, tt.want) {
			t.Errorf("runCmd(%v, %v) = %q, want %q", tt.shell, tt.line, got, tt.want)
		}
	}
}

// fake is a Backend that records what the build asked of it, and keeps
// each image's parent and step record for its cache, the images actor's
// rule.
type fake struct {
	n       int
	runs    []container.Config
	code    int64
	images  map[string]container.Config
	made    []madeImage
	probes  int
	removed []string
	tags    []string
	copied  []string
	layers  [][]byte
}

type madeImage struct {
	id, parent string
	step       container.Config
}

func newFake() *fake { return &fake{images: map[string]container.Config{}} }

func (f *fake) add(parent string, cfg, step container.Config) string {
	id := f.next()
	f.images[id] = cfg
	f.made = append(f.made, madeImage{id: id, parent: parent, step: step})
	return id
}

func (f *fake) CachedImage(_ context.Context, parent string, step container.Config) (string, error) {
	f.probes++
	var children []buildcache.Candidate
	for i, m := range f.made {
		if m.parent == parent {
			children = append(children, buildcache.Candidate{ID: m.id, Created: time.Unix(int64(i), 0), Config: &m.step})
		}
	}
	return buildcache.Newest(children, &step), nil
}

func (f *fake) ImageFiles(_ context.Context, image string, paths []string, fn func(string, io.Reader) error) error {
	for _, p := range paths {
		f.copied = append(f.copied, image+" "+p)
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: path.Base(p), Mode: 0o644, Typeflag: tar.TypeReg, Size: 1})
		tw.Write([]byte("F"))
		tw.Close()
		if err := fn(p, &buf); err != nil {
			return err
		}
	}
	return nil
}

func (f *fake) next() string { f.n++; return fmt.Sprintf("sha256:%012d%052d", f.n, 0) }

func (f *fake) Image(_ context.Context, name string, _ bool, _ *Output) (string, container.Config, error) {
	if name == "base" {
		return "sha256:base", container.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}}, nil
	}
	if name == "trig" {
		return "sha256:trig", container.Config{OnBuild: []string{"ENV T=1", "RUN t"}}, nil
	}
	if cfg, ok := f.images[name]; ok {
		return name, cfg, nil
	}
	return "", container.Config{}, fmt.Errorf("no such image: %s", name)
}

func (f *fake) Run(_ context.Context, cfg *container.Config, created func(string), out io.Writer) (int64, error) {
	f.runs = append(f.runs, *cfg)
	created(fmt.Sprintf("c%d", len(f.runs)))
	io.WriteString(out, "output\n")
	return f.code, nil
}

func (f *fake) Commit(_ context.Context, _, parent string, cfg, step container.Config) (string, error) {
	return f.add(parent, cfg, step), nil
}

func (f *fake) AddLayer(_ context.Context, parent string, layer io.Reader, cfg, step container.Config) (string, error) {
	if layer != nil {
		b, _ := io.ReadAll(layer)
		f.layers = append(f.layers, b)
	}
	return f.add(parent, cfg, step), nil
}

func (f *fake) RemoveContainer(_ context.Context, id string) error {
	f.removed = append(f.removed, id)
	return nil
}
func (f *fake) Tag(_ context.Context, id, ref string) error {
	f.tags = append(f.tags, ref)
	return nil
}

func TestBuild(t *testing.T) {
	hi := "hi"
	tests := []struct {
		name       string
		dockerfile string
		opt        Options
		code       int64
		check      func(t *testing.T, f *fake, cfg container.Config, out string)
		err        string
	}{
		{
			name: "config and RUN",
			dockerfile: `ARG BASE=base
FROM $BASE AS first
ARG GREETING=hello
ENV WHO=world
WORKDIR /app
RUN echo $GREETING
ENTRYPOINT ["/e"]
USER nobody
EXPOSE 80
LABEL a=b
`,
			opt: Options{BuildArgs: map[string]*string{"GREETING": &hi}, Remove: true, Tags: []string{"docker.io/library/x:1"}, Labels: map[string]string{"l": "v"}},
			check: func(t *testing.T, f *fake, cfg container.Config, out string) {
				if len(f.runs) != 1 {
					t.Fatalf("runs %d", len(f.runs))
				}
				r := f.runs[0]
				if !slices.Equal(r.Cmd, []string{"/bin/sh", "-c", "echo $GREETING"}) || !slices.Equal(r.Entrypoint, []string{""}) || r.WorkingDir != "/app" {
					t.Errorf("RUN container config %+v", r)
				}
				if !slices.Contains(r.Env, "GREETING=hi") || !slices.Contains(r.Env, "WHO=world") {
					t.Errorf("RUN env %q", r.Env)
				}
				if slices.ContainsFunc(cfg.Env, func(e string) bool { return strings.HasPrefix(e, "GREETING") }) {
					t.Errorf("ARG in the image's env: %q", cfg.Env)
				}
				if cfg.Cmd != nil || !slices.Equal(cfg.Entrypoint, []string{"/e"}) || cfg.User != "nobody" || cfg.Labels["a"] != "b" || cfg.Labels["l"] != "v" || len(cfg.ExposedPorts) != 1 {
					t.Errorf("image config %+v", cfg)
				}
				if !slices.Equal(f.removed, []string{"c1"}) || !slices.Equal(f.tags, []string{"docker.io/library/x:1"}) {
					t.Errorf("removed %q, tagged %q", f.removed, f.tags)
				}
				if len(f.images) != 9 {
					t.Errorf("images: %d, want one a step", len(f.images))
				}
				for _, want := range []string{"Step 1/9 : FROM $BASE AS first\n", "Step 5/9 : RUN echo $GREETING\n", " ---> Running in c1\n", "output\n", "Removing intermediate container c1\n", "Successfully tagged x:1\n"} {
					if !strings.Contains(out, want) {
						t.Errorf("output lacks %q:\n%s", want, out)
					}
				}
			},
		},
		{
			name:       "failing RUN",
			dockerfile: "FROM base\nRUN false\n",
			opt:        Options{Remove: true},
			code:       1,
			err:        "The command '/bin/sh -c false' returned a non-zero code: 1",
			check: func(t *testing.T, f *fake, _ container.Config, _ string) {
				if !slices.Equal(f.removed, []string{"c1"}) {
					t.Errorf("removed %q, want the failed container", f.removed)
				}
			},
		},
		{
			name:       "target and stages",
			dockerfile: "FROM base AS one\nENV A=1\nFROM one AS two\nENV B=2\nFROM base\nENV C=3\n",
			opt:        Options{Target: "two"},
			check: func(t *testing.T, f *fake, cfg container.Config, _ string) {
				if !slices.Contains(cfg.Env, "A=1") || !slices.Contains(cfg.Env, "B=2") || slices.Contains(cfg.Env, "C=3") {
					t.Errorf("env %q", cfg.Env)
				}
			},
		},
		{name: "ONBUILD triggers", dockerfile: "FROM trig\nONBUILD RUN later\n", check: func(t *testing.T, f *fake, cfg container.Config, out string) {
			if len(f.runs) != 1 || !slices.Equal(f.runs[0].Cmd, []string{"/bin/sh", "-c", "t"}) || !slices.Contains(cfg.Env, "T=1") {
				t.Errorf("triggers: runs %+v, env %q", f.runs, cfg.Env)
			}
			if !slices.Equal(cfg.OnBuild, []string{"RUN later"}) || !strings.Contains(out, "# Executing 2 build triggers\n") {
				t.Errorf("ONBUILD %q, output:\n%s", cfg.OnBuild, out)
			}
		}},
		{name: "no such target", dockerfile: "FROM base\n", opt: Options{Target: "x"}, err: "failed to reach build target x"},
		{name: "COPY --from wildcard", dockerfile: "FROM base\nCOPY --from=base /a* /b\n", err: "wildcards"},
		{name: "COPY --from", dockerfile: "FROM base AS one\nRUN x\nFROM base\nCOPY --from=one /etc/f /app/\n", check: func(t *testing.T, f *fake, _ container.Config, _ string) {
			if !slices.Equal(f.copied, []string{"sha256:000000000001" + strings.Repeat("0", 52) + " /etc/f"}) {
				t.Errorf("ImageFiles asked for %q", f.copied)
			}
			if got := layerFiles(t, f.layers[len(f.layers)-1]); !slices.Equal(got, []string{"app/ 755 0", "app/f 644 0 F"}) {
				t.Errorf("COPY --from layer %q", got)
			}
		}},
		{name: "SHELL", dockerfile: "FROM base\nSHELL [\"/bin/bash\", \"-c\"]\nRUN x\n", check: func(t *testing.T, f *fake, _ container.Config, _ string) {
			if !slices.Equal(f.runs[0].Cmd, []string{"/bin/bash", "-c", "x"}) {
				t.Errorf("RUN through SHELL: %q", f.runs[0].Cmd)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.code = tt.code
			var buf bytes.Buffer
			out := NewOutput(&buf, nil, false)
			id, err := Build(context.Background(), f, contextTar(t, map[string]string{"Dockerfile": tt.dockerfile}), tt.opt, out)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			var text strings.Builder
			dec := json.NewDecoder(&buf)
			for dec.More() {
				var m message
				if err := dec.Decode(&m); err != nil {
					t.Fatal(err)
				}
				text.WriteString(m.Stream)
			}
			if tt.check != nil {
				tt.check(t, f, f.images[id], text.String())
			}
		})
	}
}
