package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// classic is the CLI's classic builder: POST /build, not BuildKit.
var classic = testenv.Cmd{Env: []string{"DOCKER_BUILDKIT=0"}, Timeout: 5 * time.Minute}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClassicBuild: DOCKER_BUILDKIT=0 docker build runs a Dockerfile's
// steps (RUN in a container of the daemon's, COPY from the context
// without what .dockerignore excludes) and the image runs with the
// config the Dockerfile gave it; -q prints only the ID; a failing RUN
// fails the build with dockerd's message and leaves no container.
func TestClassicBuild(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": `FROM ` + img + `
ARG GREETING=hello
ENV WHO=world
WORKDIR /app
COPY msg.txt sub/ ./
RUN echo "$GREETING $WHO" > /app/out.txt && mkdir -p /data && echo ran
LABEL arca.test=classic
EXPOSE 8080/tcp
USER nobody
CMD ["sh", "-c", "cat /app/out.txt /app/msg.txt /app/inner.txt; pwd; id -u; test -e /app/secret.txt && echo secret-leaked; true"]
`,
		".dockerignore": "secret.txt\n",
		"msg.txt":       "from the context\n",
		"secret.txt":    "do not send\n",
		"sub/inner.txt": "inner\n",
	})
	tag := "arca-classic:1"
	defer d.Docker(t, "rmi", "-f", tag)
	before := d.Docker(t, "ps", "-aq").Must(t).Stdout
	r := d.DockerCmd(t, classic, "build", "--build-arg", "GREETING=hi", "-t", tag, dir).Must(t)
	for _, want := range []string{"Step 1/10 : FROM ", "Step 6/10 : RUN ", " ---> Running in ", "ran\n", "Removing intermediate container", "Successfully built ", "Successfully tagged arca-classic:1"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("build output lacks %q:\n%s", want, r.Stdout)
		}
	}
	got := d.Docker(t, "run", "--rm", tag).Must(t).Stdout
	if want := "hi world\nfrom the context\ninner\n/app\n65534\n"; got != want {
		t.Errorf("run of the built image: %q, want %q", got, want)
	}
	cfg := d.Docker(t, "inspect", "-f", `{{index .Config.Labels "arca.test"}} {{.Config.ExposedPorts}} {{.Config.User}} {{.Config.WorkingDir}} {{.Config.Env}}`, tag).Must(t).Stdout
	if want := "classic map[8080/tcp:{}] nobody /app"; !strings.HasPrefix(cfg, want) || !strings.Contains(cfg, "WHO=world") || strings.Contains(cfg, "GREETING") {
		t.Errorf("built image's config %q, want %q…, WHO and no GREETING", cfg, want)
	}
	if after := d.Docker(t, "ps", "-aq").Must(t).Stdout; after != before {
		t.Errorf("containers after the build:\n%s\nbefore:\n%s", after, before)
	}
	if dangling := d.Docker(t, "images", "-q", "--filter", "dangling=true").Must(t).Stdout; dangling != "" {
		t.Errorf("the build left dangling images: %s", dangling)
	}

	// -q: only the ID.
	q := d.DockerCmd(t, classic, "build", "-q", dir).Must(t)
	id := strings.TrimSpace(q.Stdout)
	if !strings.HasPrefix(id, "sha256:") || strings.Contains(id, "\n") {
		t.Errorf("build -q printed %q, want one image ID", q.Stdout)
	}
	defer d.Docker(t, "rmi", "-f", id)

	// A failing RUN.
	bad := t.TempDir()
	writeFiles(t, bad, map[string]string{"Dockerfile": "FROM " + img + "\nRUN false\n"})
	f := d.DockerCmd(t, classic, "build", bad).MustFail(t)
	if want := "The command '/bin/sh -c false' returned a non-zero code: 1"; !strings.Contains(f.Stderr+f.Stdout, want) {
		t.Errorf("failed build printed\n%s\n%s\nwant %q", f.Stdout, f.Stderr, want)
	}
	if after := d.Docker(t, "ps", "-aq").Must(t).Stdout; after != before {
		t.Errorf("containers after the failed build:\n%s\nbefore:\n%s", after, before)
	}
}

// TestClassicBuildStages: a multi-stage build copies files of an earlier
// stage (COPY --from, read by an agent) and --target stops at a stage.
func TestClassicBuildStages(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": `FROM ` + img + ` AS gen
RUN mkdir -p /out/d && echo made > /out/d/f && echo top > /out/t
CMD ["echo", "gen stage"]
FROM ` + img + `
COPY --from=gen /out /copied
COPY --from=0 /out/t /single
CMD cat /copied/d/f /copied/t /single
`,
	})
	tag, genTag := "arca-classic-stages:1", "arca-classic-stages:gen"
	defer d.Docker(t, "rmi", "-f", tag, genTag)
	before := d.Docker(t, "ps", "-aq").Must(t).Stdout
	d.DockerCmd(t, classic, "build", "-t", tag, dir).Must(t)
	if got := d.Docker(t, "run", "--rm", tag).Must(t).Stdout; got != "made\ntop\ntop\n" {
		t.Errorf("run of the multi-stage image: %q", got)
	}
	d.DockerCmd(t, classic, "build", "--target", "gen", "-t", genTag, dir).Must(t)
	if got := d.Docker(t, "run", "--rm", genTag).Must(t).Stdout; got != "gen stage\n" {
		t.Errorf("run of the --target image: %q", got)
	}
	// docker build - < Dockerfile: the body is the Dockerfile alone.
	stdin := classic
	stdin.Stdin = strings.NewReader("FROM " + img + "\nRUN echo from-stdin > /s\nCMD [\"cat\", \"/s\"]\n")
	did := strings.TrimSpace(d.DockerCmd(t, stdin, "build", "-q", "-").Must(t).Stdout)
	defer d.Docker(t, "rmi", "-f", did)
	if got := d.Docker(t, "run", "--rm", did).Must(t).Stdout; got != "from-stdin\n" {
		t.Errorf("run of the image built from stdin: %q", got)
	}

	// FROM scratch: the image is the COPY's one layer.
	scratch := t.TempDir()
	writeFiles(t, scratch, map[string]string{"Dockerfile": "FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n", "f": "x"})
	sid := strings.TrimSpace(d.DockerCmd(t, classic, "build", "-q", scratch).Must(t).Stdout)
	defer d.Docker(t, "rmi", "-f", sid)
	if got := d.Docker(t, "image", "inspect", "-f", "{{len .RootFS.Layers}} {{.Config.Cmd}} {{.Os}}", sid).Must(t).Stdout; got != "1 [/f] linux\n" {
		t.Errorf("scratch image: %q", got)
	}
	if after := d.Docker(t, "ps", "-aq").Must(t).Stdout; after != before {
		t.Errorf("containers after the builds:\n%s\nbefore:\n%s", after, before)
	}
}

// stepsCached is, for each step of a classic build's output, "c" when
// the cache had it (" ---> Using cache") and "b" when it was built.
func stepsCached(out string) string {
	var s strings.Builder
	for _, step := range strings.Split(out, "Step ")[1:] {
		if strings.Contains(step, " ---> Using cache\n") {
			s.WriteString("c")
		} else {
			s.WriteString("b")
		}
	}
	return s.String()
}

// imageID is the full ID of an image by name.
func imageID(t *testing.T, d *testenv.Daemon, name string) string {
	t.Helper()
	return strings.TrimSpace(d.Docker(t, "image", "inspect", "-f", "{{.Id}}", name).Must(t).Stdout)
}

// lines are the non-empty lines of s.
func lines(s string) []string { return strings.Fields(s) }

// TestClassicBuildCache: the classic builder keeps each step's image as
// the next one's parent and reuses them as dockerd does: an identical
// build takes every step from the cache and gives the same image; a
// changed context file rebuilds from its COPY on, a changed build arg
// from the RUN that sees it; --no-cache builds all. docker images hides
// the steps' images, -a shows them, history and inspect name them, and
// rmi of the tag deletes them with it.
func TestClassicBuildCache(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	base := imageID(t, d, img)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": `FROM ` + img + `
ARG V=1
ENV E=e
COPY a.txt /a.txt
RUN cat /a.txt > /made && echo "v=$V" >> /made
COPY b.txt /b.txt
CMD ["cat", "/made", "/b.txt"]
`,
		"a.txt": "a1\n",
		"b.txt": "b1\n",
	})
	tag := "arca-classic-cache:" + testenv.Name(t)
	var built []string // every build's image, removed at the end
	t.Cleanup(func() {
		d.Docker(t, append([]string{"rmi", "-f", tag}, built...)...)
	})
	build := func(wantSteps, wantRun string, args ...string) string {
		t.Helper()
		r := d.DockerCmd(t, classic, append(append([]string{"build", "-t", tag}, args...), dir)...).Must(t)
		if got := stepsCached(r.Stdout); got != wantSteps {
			t.Errorf("build %q: steps cached %q, want %q:\n%s", args, got, wantSteps, r.Stdout)
		}
		if ran := strings.Contains(r.Stdout, " ---> Running in "); ran != strings.Contains(wantSteps[4:5], "b") {
			t.Errorf("build %q ran a container: %v:\n%s", args, ran, r.Stdout)
		}
		if got := d.Docker(t, "run", "--rm", tag).Must(t).Stdout; got != wantRun {
			t.Errorf("run after build %q: %q, want %q", args, got, wantRun)
		}
		id := imageID(t, d, tag)
		if !slices.Contains(built, id) {
			built = append(built, id)
		}
		return id
	}

	first := build("bbbbbbb", "a1\nv=1\nb1\n")
	if again := build("bcccccc", "a1\nv=1\nb1\n"); again != first {
		t.Errorf("an identical build made %s, want the cached %s", again, first)
	}

	// Each step's image is its successor's parent, named in history and
	// inspect, listed only with -a.
	hist := lines(d.Docker(t, "history", "--no-trunc", "--format", "{{.ID}}", tag).Must(t).Stdout)
	if len(hist) < 7 || hist[0] != first || hist[6] != base || slices.Contains(hist[:7], "<missing>") {
		t.Fatalf("history IDs %q: want the 6 steps' images, then the base %s", hist, base)
	}
	steps := hist[:6]
	if parent := strings.TrimSpace(d.Docker(t, "image", "inspect", "-f", "{{.Parent}}", tag).Must(t).Stdout); parent != steps[1] {
		t.Errorf("inspect Parent %q, want %q", parent, steps[1])
	}
	listed := lines(d.Docker(t, "images", "-q", "--no-trunc").Must(t).Stdout)
	all := lines(d.Docker(t, "images", "-a", "-q", "--no-trunc").Must(t).Stdout)
	dangling := lines(d.Docker(t, "images", "-q", "--no-trunc", "--filter", "dangling=true").Must(t).Stdout)
	for _, id := range steps[1:] {
		if slices.Contains(listed, id) || slices.Contains(dangling, id) || !slices.Contains(all, id) {
			t.Errorf("intermediate image %s: in images %v, dangling %v, images -a %v; want -a only", id, slices.Contains(listed, id), slices.Contains(dangling, id), slices.Contains(all, id))
		}
	}
	if !slices.Contains(listed, first) {
		t.Errorf("docker images lacks the built image %s", first)
	}
	// A parent cannot go while its children stay, even forced.
	if r := d.Docker(t, "rmi", "-f", steps[2]).MustFail(t); !strings.Contains(r.Stderr, "(cannot be forced) - image has dependent child images") {
		t.Errorf("rmi of a parent: %s", r.Stderr)
	}

	// A changed file rebuilds from its COPY on; a build arg from the RUN.
	writeFiles(t, dir, map[string]string{"a.txt": "a2\n"})
	build("bccbbbb", "a2\nv=1\nb1\n")
	build("bcccbbb", "a2\nv=2\nb1\n", "--build-arg", "V=2")
	noCache := build("bbbbbbb", "a2\nv=2\nb1\n", "--no-cache", "--build-arg", "V=2")

	// rmi of the tag deletes the image and the steps' images no other
	// image needs: here all six, as --no-cache shared none.
	chain := lines(d.Docker(t, "history", "--no-trunc", "--format", "{{.ID}}", tag).Must(t).Stdout)[:6]
	if chain[0] != noCache || slices.ContainsFunc(chain, func(id string) bool { return slices.Contains(steps, id) }) {
		t.Fatalf("--no-cache image's steps %q share images with the first build's %q", chain, steps)
	}
	out := d.Docker(t, "rmi", tag).Must(t).Stdout
	for _, id := range chain {
		if !strings.Contains(out, "Deleted: "+id+"\n") {
			t.Errorf("rmi %s did not delete %s:\n%s", tag, id, out)
		}
	}
	if strings.Contains(out, "Deleted: "+base) {
		t.Errorf("rmi deleted the tagged base image:\n%s", out)
	}
	all = lines(d.Docker(t, "images", "-a", "-q", "--no-trunc").Must(t).Stdout)
	if slices.ContainsFunc(chain, func(id string) bool { return slices.Contains(all, id) }) {
		t.Errorf("images left after rmi: %q", all)
	}

	// The earlier builds' images are dangling now; removing them by ID
	// takes every step's image this test made.
	d.Docker(t, append([]string{"rmi"}, built[:len(built)-1]...)...).Must(t)
	all = lines(d.Docker(t, "images", "-a", "-q", "--no-trunc").Must(t).Stdout)
	if slices.ContainsFunc(steps, func(id string) bool { return slices.Contains(all, id) }) || !slices.Contains(all, base) {
		t.Errorf("images after removing every build: %q", all)
	}
}

// TestClassicBuildCacheKill9: what a build acknowledged survives a
// daemon killed right after it: the next start finds every step's image
// and parent, so the same build is all cache, and rmi still takes the
// steps' images with the tag.
func TestClassicBuildCacheKill9(t *testing.T) {
	img := testenv.SharedBusybox(t).Ref
	d := testenv.StartDaemon(t, testenv.Options{AllowUnclean: true})
	d.Docker(t, "pull", "-q", img).Must(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM " + img + "\nCOPY f /f\nRUN cp /f /g\nCMD [\"cat\", \"/g\"]\n",
		"f":          "kept\n",
	})
	d.DockerCmd(t, classic, "build", "-t", "kept:1", dir).Must(t)
	first := imageID(t, d, "kept:1")
	d.Kill9(t)
	d.Restart(t)
	r := d.DockerCmd(t, classic, "build", "-t", "kept:1", dir).Must(t)
	if got := stepsCached(r.Stdout); got != "bccc" {
		t.Errorf("build after a kill: steps cached %q, want bccc:\n%s", got, r.Stdout)
	}
	if again := imageID(t, d, "kept:1"); again != first {
		t.Errorf("build after a kill made %s, want the cached %s", again, first)
	}
	d.Docker(t, "rmi", "kept:1").Must(t)
	if left := lines(d.Docker(t, "images", "-a", "-q").Must(t).Stdout); len(left) != 1 {
		t.Errorf("images after rmi: %q, want the base only", left)
	}
}
