package main

import (
	"os"
	"path/filepath"
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
