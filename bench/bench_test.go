package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestSmoke runs `bench --smoke` against a real Arca daemon and checks that
// the tool works and that its JSON and SVG parse; the figures themselves
// are not judged (CI machines vary, and so do race-built daemons).
func TestSmoke(t *testing.T) {
	reg := testenv.SharedRegistry(t)
	d := testenv.StartDaemon(t, testenv.Options{})
	dir := t.TempDir()
	jsonPath, svgPath := filepath.Join(dir, "out.json"), filepath.Join(dir, "out.svg")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"--smoke", "--target", d.Host(), "--registry", reg, "--json", jsonPath, "--svg", svgPath}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench --smoke: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("bench output:\n%s", stdout.String())

	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, raw)
	}
	if len(r.Errors) > 0 {
		t.Errorf("report has errors: %q", r.Errors)
	}
	if len(r.Engines) != 1 || r.Engines[0].Name != "Arca" {
		t.Errorf("engines = %+v, want one Arca", r.Engines)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"run has samples", r.Run != nil && r.Run.Engines["target"].Total.N == r.Config.RunCount},
		{"run has Arca's start steps", r.Run != nil && r.Run.Engines["target"].Steps["boot_to_agent"].N == r.Config.RunCount &&
			r.Run.Engines["target"].Steps["boot_to_agent"].P50 > 0},
		{"parallel has N=1,2", r.Parallel != nil && len(r.Parallel.Points) == 2 && r.Parallel.Points[1].Engines["target"].FirstLine.N == 2},
		{"api has three endpoints with requests", r.API != nil && len(r.API.Endpoints) == 3 && r.API.Endpoints[0].Engines["target"].Requests > 0},
		{"memory found the daemon and its sandboxes", r.Memory != nil && r.Memory.Engines["target"].IdleDaemonRSS > 0 &&
			r.Memory.Engines["target"].RunningProcesses > r.Memory.Engines["target"].IdleProcesses},
		{"pull moved bytes", r.Pull != nil && r.Pull.Bytes > 0 && r.Pull.Engines["target"].MBps > 0},
		{"build has cold and warm builds", r.Build != nil && r.Build.Engines["target"].Cold.N == r.Config.BuildRepeat &&
			r.Build.Engines["target"].Warm.N == r.Config.BuildRepeat && r.Build.Engines["target"].Warm.P50 > 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: no\n%s", c.name, raw)
		}
	}

	// The build scenario removed what it built and the build cache.
	if imgs := d.Docker(t, "images", "-a", "--format", "{{.Repository}}:{{.Tag}}").Must(t).Stdout; strings.Contains(imgs, "arca-bench-build") || strings.Contains(imgs, "<none>") {
		t.Errorf("images left by the build scenario:\n%s", imgs)
	}
	if df := d.Docker(t, "system", "df", "--format", "{{.Type}} {{.TotalCount}}").Must(t).Stdout; !strings.Contains(df, "Build Cache 0\n") {
		t.Errorf("build cache left by the build scenario:\n%s", df)
	}

	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c := checkSVG(t, svg); c["polyline"] != 2 {
		t.Errorf("SVG has %d lines, want p50 and p95 of one engine", c["polyline"])
	}
}
