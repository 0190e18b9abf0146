package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// buildTimeout bounds one `docker build` (or prune, or rmi) of the build
// scenario: a cold build on a slow driver (qemu under TCG) takes far longer
// than one API call.
const buildTimeout = 5 * time.Minute

// buildRunSteps is how many RUN steps buildDockerfile has: a warm build
// must report at least this many steps CACHED, or it was not warm (and a
// cold one none).
const buildRunSteps = 3

// buildDockerfile is a small two-stage build from the busybox image every
// engine already has: WORKDIR, COPY of the context, three RUN steps, and a
// second stage that takes the results with COPY --from.
func buildDockerfile(image string) string {
	return `FROM ` + image + ` AS build
WORKDIR /src
COPY . .
RUN cat a.txt b.txt lib/c.txt > all.txt && wc -l all.txt
RUN i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); done > numbers.txt
RUN sha256sum all.txt numbers.txt > sums.txt && gzip -k numbers.txt

FROM ` + image + `
WORKDIR /app
COPY --from=build /src/sums.txt /src/numbers.txt.gz ./
CMD ["cat", "/app/sums.txt"]
`
}

// buildContext is the build context beside the Dockerfile.
var buildContext = map[string]string{
	"a.txt":         "first file of the context\n",
	"b.txt":         strings.Repeat("second file, a little longer\n", 64),
	"lib/c.txt":     "third file, in a directory\n",
	".dockerignore": "*.tmp\n",
	"ignored.tmp":   "not sent to the engine\n",
}

// builder runs the docker CLI's default build path (BuildKit through the
// buildx plugin's docker driver, no builder set up by hand) against one
// engine, with a private DOCKER_CONFIG that has only the user's CLI plugins.
type builder struct {
	e         *engine
	configDir string
	ctxDir    string
	tag       string
	built     []string // image IDs its builds made, for the cleanup
}

// docker runs the CLI against the engine; an error carries the last lines
// of what it printed.
func (bd *builder) docker(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	r := testenv.RunDocker(ctx, bd.e.host, bd.configDir, testenv.Cmd{}, args...)
	out := r.Stdout + r.Stderr
	switch {
	case r.TimedOut:
		return out, fmt.Errorf("docker %s on %s: killed (%v): %s", strings.Join(args, " "), bd.e.role, context.Cause(ctx), lastLines(out, 12))
	case r.Code != 0:
		return out, fmt.Errorf("docker %s on %s: exit code %d: %s", strings.Join(args, " "), bd.e.role, r.Code, lastLines(out, 12))
	}
	return out, nil
}

// build runs one `docker build` and returns its wall time, from starting
// the CLI to its exit, and how many steps it reported CACHED.
func (bd *builder) build(ctx context.Context) (time.Duration, int, error) {
	iid := filepath.Join(bd.configDir, "iid")
	_ = os.Remove(iid)
	t := time.Now()
	// No network for the RUN steps, as every container of the bench has
	// none: neither engine pays for a bridge the other skips (and a
	// dockerd started with --bridge=none has none to give).
	out, err := bd.docker(ctx, "build", "--progress=plain", "--network", "none", "--iidfile", iid, "-t", bd.tag, bd.ctxDir)
	d := time.Since(t)
	if id, rerr := os.ReadFile(iid); rerr == nil && len(id) > 0 {
		bd.built = append(bd.built, strings.TrimSpace(string(id)))
	}
	if err != nil {
		return 0, 0, err
	}
	// The classic builder prints "Step 1/9"; BuildKit numbers vertices.
	if !strings.Contains(out, "#1 ") {
		return 0, 0, fmt.Errorf("docker build on %s did not go through BuildKit: %s", bd.e.role, lastLines(out, 12))
	}
	return d, strings.Count(out, " CACHED\n"), nil
}

// reset makes the next build cold: the images the bench built removed and
// the engine's whole build cache pruned.
func (bd *builder) reset(ctx context.Context) error {
	var errs []error
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	for _, ref := range append([]string{bd.tag}, bd.built...) {
		if err := bd.e.removeImage(ctx, ref); err != nil && !isNoSuchImage(err) {
			errs = append(errs, err)
		}
	}
	bd.built = nil
	if _, err := bd.docker(ctx, "builder", "prune", "-af"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// buildScenario: per engine, a cold build (after `docker builder prune -af`
// and removing the image) and a warm one (the same build again, every step
// from the cache), Repeat times, A B A B. One unrecorded cold build per
// engine first, as the run scenario warms up: the first build on an engine
// pays for loading its BuildKit and the frontend. The images and the build
// cache it made are removed at the end, even after a failure.
func (b *bench) buildScenario(ctx context.Context) (res *BuildResult, err error) {
	dir, err := os.MkdirTemp("", "arca-bench-build-")
	if err != nil {
		return nil, fmt.Errorf("build dir: %w", err)
	}
	defer os.RemoveAll(dir)
	ctxDir := filepath.Join(dir, "context")
	files := map[string]string{"Dockerfile": buildDockerfile(b.image)}
	for name, body := range buildContext {
		files[name] = body
	}
	for name, body := range files {
		path := filepath.Join(ctxDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
	}

	// builders is set once every engine has one: a missing plugin must not
	// cost an engine its build cache.
	var builders, ready []*builder
	var client string // the CLI's and the plugin's versions
	defer func() {
		for _, bd := range builders {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), buildTimeout)
			if cerr := bd.reset(cctx); cerr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
			}
			cancel()
		}
	}()
	for _, e := range b.engines {
		cfg := filepath.Join(dir, "docker-config-"+e.role)
		if err := testenv.SetupDockerConfig(cfg); err != nil {
			return nil, err
		}
		bd := &builder{e: e, configDir: cfg, ctxDir: ctxDir, tag: "arca-bench-build:" + b.runID}
		bx, err := bd.docker(ctx, "buildx", "version")
		if err != nil {
			return nil, fmt.Errorf("the build scenario needs the buildx plugin in ~/.docker/cli-plugins: %w", err)
		}
		if client == "" {
			cv, err := bd.docker(ctx, "version", "--format", "{{.Client.Version}}")
			if err != nil {
				return nil, err
			}
			client = "docker " + strings.TrimSpace(cv) + ", " + strings.TrimSpace(bx)
		}
		ready = append(ready, bd)
	}
	builders = ready

	cold, warm := map[string][]time.Duration{}, map[string][]time.Duration{}
	for _, bd := range builders {
		if err := bd.reset(ctx); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		if _, _, err := bd.build(ctx); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	for i := range b.cfg.BuildRepeat {
		for _, bd := range builders {
			if err := bd.reset(ctx); err != nil {
				return nil, err
			}
			dc, cached, err := bd.build(ctx)
			if err != nil {
				return nil, fmt.Errorf("cold build %d: %w", i+1, err)
			}
			if cached > 0 {
				return nil, fmt.Errorf("cold build %d on %s took %d steps from the cache after the prune", i+1, bd.e.role, cached)
			}
			dw, cached, err := bd.build(ctx)
			if err != nil {
				return nil, fmt.Errorf("warm build %d: %w", i+1, err)
			}
			if cached < buildRunSteps {
				return nil, fmt.Errorf("warm build %d on %s took %d steps from the cache, want at least %d", i+1, bd.e.role, cached, buildRunSteps)
			}
			cold[bd.e.role] = append(cold[bd.e.role], dc)
			warm[bd.e.role] = append(warm[bd.e.role], dw)
			b.logf("build %d on %s: cold %s, warm %s", i+1, bd.e.role, dc.Round(time.Millisecond), dw.Round(time.Millisecond))
		}
	}
	res = &BuildResult{Repeat: b.cfg.BuildRepeat, Steps: buildRunSteps, Client: client, Engines: map[string]BuildEngine{}}
	for role := range cold {
		res.Engines[role] = BuildEngine{Cold: Summarize(cold[role]), Warm: Summarize(warm[role])}
	}
	return res, nil
}

func isNoSuchImage(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "no such image")
}

// lastLines is the last n lines of s, on one line each, for an error.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
