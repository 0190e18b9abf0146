package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleReport has every section filled, for both engines when cmp is set.
func sampleReport(cmp bool) *Report {
	roles := []string{"target"}
	engines := []EngineInfo{{Role: "target", Host: "unix:///a.sock", Name: "Arca", Version: "0.1.0"}}
	if cmp {
		roles = append(roles, "compare")
		engines = append(engines, EngineInfo{Role: "compare", Host: "unix:///b.sock", Name: "Docker Engine <&> \"x\"", Version: "20.10"})
	}
	s := func(ms float64) Summary {
		return Summarize([]time.Duration{time.Duration(ms * float64(time.Millisecond))})
	}
	r := &Report{Date: "2026-11-22T00:00:00Z", Engines: engines, Image: "127.0.0.1:5000/busybox:latest",
		Run:      &RunResult{Count: 1, Engines: map[string]RunEngine{}},
		Parallel: &ParallelResult{Repeat: 1},
		API:      &APIResult{Containers: 5, Workers: 2, DurationS: 1, Endpoints: []APIEndpoint{{Name: "GET /_ping", Engines: map[string]APIEngine{}}}},
		Memory:   &MemoryResult{Containers: 5, Engines: map[string]MemoryEngine{}},
		Pull:     &PullResult{Layers: 2, Bytes: 2e6, Repeat: 1, Engines: map[string]PullEngine{}},
		Build:    &BuildResult{Repeat: 1, Steps: 3, Client: "docker 28.2.2, github.com/docker/buildx v0.38.2", Engines: map[string]BuildEngine{}},
	}
	for i, role := range roles {
		f := float64(i + 1)
		r.Run.Engines[role] = RunEngine{Create: s(f), Start: s(2 * f), Wait: s(3 * f), Remove: s(4 * f), Total: s(10 * f)}
		r.API.Endpoints[0].Engines[role] = APIEngine{Requests: 100, RPS: 100 / f, Latency: s(f)}
		r.Memory.Engines[role] = MemoryEngine{DaemonPID: 1, IdleDaemonRSS: 20 << 20, IdleTreeRSS: 20 << 20, RunningTreeRSS: 40 << 20, PerContainerRSS: 4 << 20}
		r.Pull.Engines[role] = PullEngine{Time: s(100 * f), MBps: 20 / f}
		r.Build.Engines[role] = BuildEngine{Cold: s(1000 * f), Warm: s(300 * f)}
	}
	for _, n := range []int{1, 5, 10} {
		p := ParallelPoint{N: n, Engines: map[string]ParallelEngine{}}
		for i, role := range roles {
			p.Engines[role] = ParallelEngine{FirstLine: s(float64(n*10*(i+1)) + 0.5), Throughput: float64(n)}
		}
		r.Parallel.Points = append(r.Parallel.Points, p)
	}
	return r
}

func TestWriteJSONRoundTrip(t *testing.T) {
	for _, cmp := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "out.json")
		want := sampleReport(cmp)
		if err := writeJSON(path, want); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var got Report
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("written JSON does not parse: %v", err)
		}
		if len(got.Engines) != len(want.Engines) || len(got.Parallel.Points) != 3 ||
			got.Parallel.Points[2].Engines["target"].FirstLine.P50 != want.Parallel.Points[2].Engines["target"].FirstLine.P50 ||
			got.Memory.Engines["target"].PerContainerRSS != 4<<20 ||
			got.Build.Engines["target"].Cold.P50 != 1000 || got.Build.Engines["target"].Warm.N != 1 {
			t.Errorf("round trip lost data:\n%s", raw)
		}
	}
}

// checkSVG parses svg as XML and counts its elements by name.
func checkSVG(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	counts := map[string]int{}
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
				if se.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace %q", se.Name.Space)
				}
			}
			counts[se.Name.Local]++
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return counts
}

func TestRenderChart(t *testing.T) {
	tests := []struct {
		name      string
		report    *Report
		polylines int
		points    int
	}{
		{"one engine", sampleReport(false), 2, 6},
		{"two engines, markup in a name", sampleReport(true), 4, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.svg")
			if err := writeSVGFile(path, tt.report); err != nil {
				t.Fatal(err)
			}
			svg, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			c := checkSVG(t, svg)
			if c["polyline"] != tt.polylines || c["circle"] != tt.points {
				t.Errorf("got %d polylines and %d points, want %d and %d", c["polyline"], c["circle"], tt.polylines, tt.points)
			}
		})
	}
}

func TestRenderChartScale(t *testing.T) {
	tests := []struct {
		name    string
		ys      []float64
		wantLog bool
	}{
		{"close values stay linear", []float64{10, 50, 190}, false},
		{"a wide span goes logarithmic", []float64{10, 400, 9000}, true},
		{"zeros do not break the log axis", []float64{0, 5, 5000}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := renderChart("t", "x", "y", []chartSeries{{Name: "s", Color: "#000", X: []float64{1, 10, 50}, Y: tt.ys}})
			checkSVG(t, svg)
			if got := bytes.Contains(svg, []byte("log scale")); got != tt.wantLog {
				t.Errorf("log scale = %v, want %v", got, tt.wantLog)
			}
			if bytes.Contains(svg, []byte("NaN")) || bytes.Contains(svg, []byte("Inf")) {
				t.Errorf("chart has non-finite coordinates:\n%s", svg)
			}
		})
	}
}

func TestReplot(t *testing.T) {
	dir := t.TempDir()
	jsonPath, svgPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.svg")
	if err := writeJSON(jsonPath, sampleReport(true)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--replot", jsonPath, "--svg", svgPath}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "parallel:") {
		t.Errorf("replot printed no tables:\n%s", out.String())
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg)
}

func TestRenderChartEmpty(t *testing.T) {
	c := checkSVG(t, renderChart("nothing", "x", "y", nil))
	if c["polyline"] != 0 {
		t.Errorf("empty chart drew %d lines", c["polyline"])
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct{ max, want float64 }{
		{50, 10}, {1, 0.2}, {7, 2}, {1000, 200}, {2300, 500}, {12, 5},
	}
	for _, tt := range tests {
		if got := niceStep(tt.max); !near(got, tt.want) {
			t.Errorf("niceStep(%v) = %v, want %v", tt.max, got, tt.want)
		}
	}
}

func TestPrintReport(t *testing.T) {
	tests := []struct {
		name string
		cmp  bool
		want []string
	}{
		{"target only", false, []string{"run:", "parallel:", "api:", "memory:", "pull:", "GET /_ping", "build:", "cold", "warm"}},
		{"with compare", true, []string{"p50 ratio", "req/s ratio", "0.50x", "MB/s ratio", "1000", "2000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			printReport(&out, sampleReport(tt.cmp))
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if !tt.cmp && strings.Contains(out.String(), "ratio") {
				t.Errorf("ratio column without a compare engine:\n%s", out.String())
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{"defaults", nil, "", func(t *testing.T, c Config) {
			if len(c.ParallelN) != 5 || c.ParallelN[4] != 50 || c.Containers != 100 || len(c.Scenarios) != 6 || c.BuildRepeat != 5 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{"smoke", []string{"--smoke"}, "", func(t *testing.T, c Config) {
			if len(c.ParallelN) != 2 || c.ParallelRepeat != 1 || c.Containers != 5 || c.RunCount > 5 || c.BuildRepeat != 1 {
				t.Errorf("smoke: %+v", c)
			}
		}},
		{"smoke keeps explicit flags", []string{"--smoke", "--containers", "9", "--parallel-n", "3"}, "", func(t *testing.T, c Config) {
			if c.Containers != 9 || len(c.ParallelN) != 1 || c.ParallelN[0] != 3 {
				t.Errorf("smoke overrode flags: %+v", c)
			}
		}},
		{"scenario subset", []string{"--scenarios", "api, pull"}, "", func(t *testing.T, c Config) {
			if len(c.Scenarios) != 2 || c.Scenarios[0] != "api" || c.Scenarios[1] != "pull" {
				t.Errorf("scenarios: %q", c.Scenarios)
			}
		}},
		{"unknown scenario", []string{"--scenarios", "exec"}, "unknown scenario", nil},
		{"bad N", []string{"--parallel-n", "1,x"}, "not a positive integer", nil},
		{"zero N", []string{"--parallel-n", "0"}, "not a positive integer", nil},
		{"zero containers", []string{"--containers", "0"}, "at least 1", nil},
		{"zero builds", []string{"--build-repeat", "0"}, "at least 1", nil},
		{"build alone", []string{"--scenarios", "build", "--build-repeat", "2"}, "", func(t *testing.T, c Config) {
			if len(c.Scenarios) != 1 || c.Scenarios[0] != "build" || c.BuildRepeat != 2 {
				t.Errorf("build: %+v", c)
			}
		}},
		{"stray argument", []string{"extra"}, "unexpected arguments", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
