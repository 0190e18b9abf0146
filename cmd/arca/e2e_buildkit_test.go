package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// buildkitCmd is the CLI's default build path (BuildKit through the buildx
// plugin's docker driver), given time for a cold cache.
var buildkitCmd = testenv.Cmd{Timeout: 5 * time.Minute}

// buildkitProject is a multi-stage Dockerfile using what real projects
// do: ARG, ENV, WORKDIR, COPY (with .dockerignore), RUN with a cache mount
// and a secret, COPY --from, USER, EXPOSE, LABEL, HEALTHCHECK and CMD.
func buildkitProject(img string) map[string]string {
	return map[string]string{
		"Dockerfile": `FROM ` + img + ` AS builder
ARG VERSION=1.0
ENV APP_HOME=/opt/app
WORKDIR $APP_HOME
COPY src/ ./src/
RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > cache-runs
RUN --mount=type=secret,id=token wc -c < /run/secrets/token > token-size
RUN echo "version $VERSION" > version.txt && echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd

FROM ` + img + ` AS final
COPY --from=builder /opt/app/ /opt/app/
COPY --from=builder /etc/passwd /etc/passwd
USER app
EXPOSE 8080
LABEL org.example.title=demo
HEALTHCHECK --interval=30s CMD true
WORKDIR /opt/app
CMD ["sh", "-c", "cat version.txt src/a.txt token-size; ls src; test -e /run/secrets/token && echo secret-kept; id -u"]

FROM final AS debug
RUN echo debug > /tmp/debug
`,
		".dockerignore": "src/*.log\n",
		"src/a.txt":     "source a\n",
		"src/skip.log":  "ignored\n",
	}
}

// TestBuildKitBuild: plain docker build goes to the daemon's BuildKit
// (the buildx plugin's docker driver, no builder set up by hand), runs
// every step in a machine, and the image runs with its config; a second
// build is all cache; buildx build --load and --target work; the build
// cache is real for system df, buildx du and builder prune.
func TestBuildKitBuild(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	if r := d.Docker(t, "buildx", "version"); r.Code != 0 {
		t.Fatalf("the buildx plugin is missing (make test builds it first): %s", r.Stderr)
	}
	dir := t.TempDir()
	writeFiles(t, dir, buildkitProject(img))
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("s3cret"), 0o600)
	tag := "arca-buildkit:1"
	defer d.Docker(t, "rmi", "-f", tag, "arca-buildkit:debug")
	before := d.Docker(t, "ps", "-aq").Must(t).Stdout
	args := []string{"build", "--progress=plain", "--build-arg", "VERSION=2.5", "--secret", "id=token,src=" + token, "--target", "final", "-t", tag, dir}
	r := d.DockerCmd(t, buildkitCmd, args...).Must(t)
	out := r.Stdout + r.Stderr
	for _, want := range []string{`building with "default" instance using docker driver`, "[builder 5/6] RUN --mount=type=secret", "naming to "} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	if got, want := d.Docker(t, "run", "--rm", tag).Must(t).Stdout, "version 2.5\nsource a\n6\na.txt\n1000\n"; got != want {
		t.Errorf("run of the built image: %q, want %q", got, want)
	}
	cfg := d.Docker(t, "inspect", "-f", `{{index .Config.Labels "org.example.title"}} {{.Config.ExposedPorts}} {{.Config.User}} {{.Config.WorkingDir}} {{.Config.Healthcheck.Test}}`, tag).Must(t).Stdout
	if want := "demo map[8080/tcp:{}] app /opt/app [CMD-SHELL true]\n"; cfg != want {
		t.Errorf("built image's config %q, want %q", cfg, want)
	}

	// Again: every step from the cache, the cache mount's file untouched.
	r = d.DockerCmd(t, buildkitCmd, args...).Must(t)
	if out := r.Stdout + r.Stderr; strings.Count(out, "CACHED") < 5 {
		t.Errorf("second build did not use the cache:\n%s", out)
	}

	// buildx build --load of another stage.
	d.DockerCmd(t, buildkitCmd, "buildx", "build", "--load", "--secret", "id=token,src="+token, "--target", "debug", "-t", "arca-buildkit:debug", dir).Must(t)
	if got := d.Docker(t, "run", "--rm", "arca-buildkit:debug", "cat", "/tmp/debug").Must(t).Stdout; got != "debug\n" {
		t.Errorf("run of the --target debug image: %q", got)
	}

	// A failing step fails the build with BuildKit's words and leaves
	// nothing behind: no container, no machine state, no mount.
	bad := t.TempDir()
	writeFiles(t, bad, map[string]string{"Dockerfile": "FROM " + img + "\nRUN exit 3\n"})
	f := d.DockerCmd(t, buildkitCmd, "build", bad).MustFail(t)
	if want := "did not complete successfully: exit code: 3"; !strings.Contains(f.Stderr+f.Stdout, want) {
		t.Errorf("failed build printed\n%s\n%s\nwant %q", f.Stdout, f.Stderr, want)
	}
	if after := d.Docker(t, "ps", "-aq").Must(t).Stdout; after != before {
		t.Errorf("containers after the builds:\n%s\nbefore:\n%s", after, before)
	}
	if left, _ := os.ReadDir(filepath.Join(d.Root(), "builds")); len(left) != 0 {
		t.Errorf("build step state left behind: %v", left)
	}
	if n := mountsUnder(t, filepath.Join(d.Root(), "buildkit")+"/"); n != 0 {
		t.Errorf("%d mounts left under the build root", n)
	}

	// The cache is real: system df and buildx du count it, prune empties it.
	df := d.Docker(t, "system", "df", "--format", "{{.Type}} {{.TotalCount}}").Must(t).Stdout
	if !strings.Contains(df, "Build Cache ") || strings.Contains(df, "Build Cache 0\n") {
		t.Errorf("system df shows no build cache:\n%s", df)
	}
	if du := d.Docker(t, "buildx", "du").Must(t).Stdout; !strings.Contains(du, "Reclaimable") {
		t.Errorf("buildx du:\n%s", du)
	}
	if p := d.Docker(t, "builder", "prune", "-af").Must(t).Stdout; !strings.Contains(p, "Total:") {
		t.Errorf("builder prune:\n%s", p)
	}
	// In-use records (none now) would stay; the rest went.
	df = d.Docker(t, "system", "df", "--format", "{{.Type}} {{.TotalCount}}").Must(t).Stdout
	if !strings.Contains(df, "Build Cache 0\n") {
		t.Errorf("system df after prune:\n%s", df)
	}
}

// TestComposeBuild: docker compose build and up --build, through BuildKit
// (compose's default) and through the classic builder (DOCKER_BUILDKIT=0).
func TestComposeBuild(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"buildkit", nil},
		{"classic", []string{"DOCKER_BUILDKIT=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			project := "arcabuild" + tc.name
			writeFiles(t, dir, map[string]string{
				"compose.yaml":   "services:\n  app:\n    build:\n      context: ./app\n      args:\n        WHO: compose\n    image: " + project + "-app:dev\n",
				"app/Dockerfile": "FROM " + img + "\nARG WHO\nRUN echo \"built for $WHO\" > /msg\nCMD [\"cat\", \"/msg\"]\n",
			})
			cmd := testenv.Cmd{Env: tc.env, Timeout: 5 * time.Minute}
			compose := func(args ...string) testenv.Result {
				return d.DockerCmd(t, cmd, append([]string{"compose", "--project-directory", dir, "-p", project}, args...)...)
			}
			defer compose("down", "--rmi", "all", "--timeout", "1")
			compose("build").Must(t)
			if got := d.Docker(t, "run", "--rm", project+"-app:dev").Must(t).Stdout; got != "built for compose\n" {
				t.Errorf("run of the compose-built image: %q", got)
			}
			if out := compose("up", "--build", "app").Must(t).Stdout; !strings.Contains(out, "built for compose") {
				t.Errorf("compose up --build:\n%s", out)
			}
		})
	}
}

// TestBuildKitKill9: a daemon killed while a step runs leaves its
// snapshots mounted; the next start unmounts them, and builds go on.
func TestBuildKitKill9(t *testing.T) {
	reg := testenv.SharedRegistry(t)
	img := testenv.PushBusybox(t, reg)
	d := testenv.StartDaemon(t, testenv.Options{AllowUnclean: true})
	d.Docker(t, "pull", "-q", img).Must(t)
	root := d.Root() + "/"
	before := mountsUnder(t, root)
	dir := t.TempDir()
	// The step marks its root: the mark lands in the step's snapshot,
	// wherever the daemon mounted it (or did not).
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM " + img + "\nRUN touch /arca-step-runs && sleep 120\n"})
	done := make(chan testenv.Result, 1)
	go func() { done <- d.DockerCmd(t, buildkitCmd, "build", dir) }()
	marks := filepath.Join(d.Root(), "buildkit", "worker", "snapshots", "snapshots", "*", "fs", "arca-step-runs")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if m, _ := filepath.Glob(marks); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			// What the build said tells where it stopped.
			d.Kill9(t)
			select {
			case r := <-done:
				t.Fatalf("the step never ran; the build said:\n%s\n%s\ndaemon log:\n%s", r.Stdout, r.Stderr, d.Log())
			case <-time.After(30 * time.Second):
				t.Fatalf("the step never ran, and the build did not end with its daemon:\n%s", d.Log())
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	running := mountsUnder(t, root)
	own, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", d.PID()))
	t.Logf("mounts under the root: %d before the build, %d while its step runs:\n%s", before, running, linesWith(string(own), root))
	d.Kill9(t)
	if r := <-done; r.Code == 0 {
		t.Errorf("the build survived its daemon:\n%s", r.Stdout)
	}
	d.Restart(t)
	if n := mountsUnder(t, root); n != before {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		t.Errorf("%d mounts under %s after a restart, %d before the build:\n%s", n, root, before, linesWith(string(b), root))
	}
	ok := t.TempDir()
	writeFiles(t, ok, map[string]string{"Dockerfile": "FROM " + img + "\nRUN echo after > /f\nCMD [\"cat\", \"/f\"]\n"})
	id := strings.TrimSpace(d.DockerCmd(t, buildkitCmd, "build", "-q", ok).Must(t).Stdout)
	if got := d.Docker(t, "run", "--rm", id).Must(t).Stdout; got != "after\n" {
		t.Errorf("build after the restart: %q", got)
	}
}

// TestBuildKitPrivateRegistry: a FROM in a registry behind a password is
// pulled with the CLI's login (the build session carries it), refused
// without one, and build --push sends the result there; the password is
// nowhere the daemon writes.
func TestBuildKitPrivateRegistry(t *testing.T) {
	plain := testenv.Registry(t)
	src := testenv.PushBusybox(t, plain)
	ar := testenv.AuthRegistry(t)
	d := testenv.StartDaemon(t, testenv.Options{})
	login := func() {
		d.DockerStdin(t, strings.NewReader(ar.Password+"\n"), "login", "-u", ar.User, "--password-stdin", ar.Addr).Must(t)
	}
	base := ar.Addr + "/base:1"
	d.Docker(t, "pull", "-q", src).Must(t)
	d.Docker(t, "tag", src, base).Must(t)
	login()
	d.Docker(t, "push", base).Must(t)
	// Neither is local now: the FROM must come from the registry.
	d.Docker(t, "rmi", base, src).Must(t)
	d.Docker(t, "logout", ar.Addr).Must(t)

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo private > /p\nCMD [\"cat\", \"/p\"]\n"})
	built := ar.Addr + "/built:1"
	r := d.DockerCmd(t, buildkitCmd, "build", "-t", built, dir).MustFail(t)
	if out := r.Stdout + r.Stderr; !strings.Contains(out, "401 Unauthorized") && !strings.Contains(out, "no basic auth credentials") && !strings.Contains(out, "authorization") {
		t.Errorf("build FROM a private image without login:\n%s", out)
	}
	login()
	d.DockerCmd(t, buildkitCmd, "build", "--push", "-t", built, dir).Must(t)
	if got := d.Docker(t, "run", "--rm", built).Must(t).Stdout; got != "private\n" {
		t.Errorf("run of the built image: %q", got)
	}
	d.Docker(t, "rmi", built).Must(t)
	d.Docker(t, "pull", "-q", built).Must(t)
	if got := d.Docker(t, "run", "--rm", built).Must(t).Stdout; got != "private\n" {
		t.Errorf("run of the pushed image pulled back: %q", got)
	}

	secrets := []string{ar.Password, base64.StdEncoding.EncodeToString([]byte(ar.User + ":" + ar.Password))}
	if containsAny(d.Log(), secrets) {
		t.Error("the daemon's log holds the password")
	}
	filepath.WalkDir(d.Root(), func(p string, e os.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && containsAny(string(b), secrets) {
			t.Errorf("%s holds the password", p)
		}
		return nil
	})
}

// TestBuildKitStepNetwork: a RUN reaches out through the host, as with
// buildkitd's host networking (here to a server on the host's loopback,
// host.docker.internal), and RUN --network=none has loopback only.
func TestBuildKitStepNetwork(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from the host\n") })}
	go srv.Serve(ln)
	defer srv.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM " + img + `
RUN wget -q -O /got http://host.docker.internal:` + port + `/
RUN ip -o link > /links-default
RUN --network=none ip -o link > /links-none
CMD ["cat", "/got"]
`})
	id := strings.TrimSpace(d.DockerCmd(t, buildkitCmd, "build", "-q", dir).Must(t).Stdout)
	defer d.Docker(t, "rmi", "-f", id)
	links := func(file string) []string {
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(d.Docker(t, "run", "--rm", id, "cat", file).Must(t).Stdout), "\n") {
			if f := strings.Fields(l); len(f) > 1 {
				names = append(names, strings.TrimSuffix(f[1], ":"))
			}
		}
		return names
	}
	if got := links("/links-none"); len(got) != 1 || got[0] != "lo" {
		t.Errorf("links of a RUN --network=none: %v", got)
	}
	if got := links("/links-default"); len(got) < 2 {
		t.Errorf("links of a RUN: %v", got)
	}
	if got := d.Docker(t, "run", "--rm", "--network", "none", id).Must(t).Stdout; got != "from the host\n" {
		t.Errorf("the steps saw %q", got)
	}
}

// TestBuildKitCacheFrom: a build's cache inlined in an image it pushes
// (--cache-to type=inline) serves a later build with an empty cache
// (--cache-from), as on dockerd: the steps do not run again (what they
// wrote, a random value, is the first build's).
func TestBuildKitCacheFrom(t *testing.T) {
	reg := testenv.SharedRegistry(t)
	img := testenv.PushBusybox(t, reg)
	d := testenv.StartDaemon(t, testenv.Options{})
	d.Docker(t, "pull", "-q", img).Must(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM " + img + "\nRUN cat /proc/sys/kernel/random/uuid > /s\nRUN cat /proc/sys/kernel/random/uuid > /t\n"})
	cached := reg + "/arca-cache:1"
	d.DockerCmd(t, buildkitCmd, "build", "--cache-to", "type=inline", "--push", "-t", cached, dir).Must(t)
	first := d.Docker(t, "run", "--rm", cached, "cat", "/s", "/t").Must(t).Stdout
	d.Docker(t, "rmi", cached).Must(t)
	d.Docker(t, "builder", "prune", "-af").Must(t)
	d.DockerCmd(t, buildkitCmd, "build", "--cache-from", cached, "-t", "arca-rebuilt:1", dir).Must(t)
	if again := d.Docker(t, "run", "--rm", "arca-rebuilt:1", "cat", "/s", "/t").Must(t).Stdout; again != first || len(first) < 64 {
		t.Errorf("the steps ran again: wrote %q, the cached build had %q", again, first)
	}
}

// linesWith is the lines of s that contain sub.
func linesWith(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
