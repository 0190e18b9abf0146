// Command bench load-tests a Docker Engine API endpoint through the moby Go
// client and reports how cost grows with work: sequential runs, parallel
// starts, API latency under load, memory per running container, pull
// throughput, and `docker build` (the real CLI and its buildx plugin) with
// a cold and a warm cache. With --compare it runs every measurement against
// a second endpoint too, interleaved (A B A B) so drift in the machine hits
// both, and prints the ratio.
//
//	go run ./bench                                   # Arca on /var/run/arca.sock
//	go run ./bench --compare unix:///tmp/ref.sock    # side by side with a dockerd
//	go run ./bench --smoke --json out.json --svg out.svg
//
// Traffic goes only to the given sockets and to a registry on loopback,
// started here unless --registry names one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Config is everything a run was asked to do; it is written into the JSON
// so a result file says how it was made.
type Config struct {
	Target            string        `json:"target"`
	Compare           string        `json:"compare,omitempty"`
	Registry          string        `json:"registry"`
	Scenarios         []string      `json:"scenarios"`
	RunCount          int           `json:"run_count"`
	RunNetwork        string        `json:"run_network,omitempty"`
	MemoryNetwork     string        `json:"memory_network,omitempty"`
	ParallelNetwork   string        `json:"parallel_network,omitempty"`
	ParallelN         []int         `json:"parallel_n"`
	ParallelRepeat    int           `json:"parallel_repeat"`
	Containers        int           `json:"containers"`
	APIWorkers        int           `json:"api_workers"`
	APIDuration       time.Duration `json:"api_duration_ns"`
	PullLayers        int           `json:"pull_layers"`
	PullLayerMB       int           `json:"pull_layer_mb"`
	PullRepeat        int           `json:"pull_repeat"`
	BuildRepeat       int           `json:"build_repeat"`
	NetMiB            int           `json:"net_mib,omitempty"`
	NetRepeat         int           `json:"net_repeat,omitempty"`
	Smoke             bool          `json:"smoke"`
	TargetPID         int           `json:"target_daemon_pid,omitempty"`
	ComparePID        int           `json:"compare_daemon_pid,omitempty"`
	Settle            time.Duration `json:"settle_ns"`
	Timeout           time.Duration `json:"timeout_ns"`
	JSONPath, SVGPath string        `json:"-"`
	Replot            string        `json:"-"`
}

var allScenarios = []string{"run", "parallel", "api", "memory", "pull", "build"}

// optScenarios run only when named: net makes a user network, which the
// reference dockerd of make dockerd runs without (--bridge=none).
var optScenarios = []string{"net"}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	var scenarios, parallelN string
	fs.StringVar(&c.Target, "target", "unix:///var/run/arca.sock", "DOCKER_HOST of the engine under test")
	fs.StringVar(&c.Compare, "compare", "", "DOCKER_HOST of an engine to compare with (e.g. unix:///tmp/ref.sock)")
	fs.StringVar(&c.Registry, "registry", "", "HOST:PORT of a loopback registry to push test images to (default: start docker-registry here)")
	fs.StringVar(&scenarios, "scenarios", strings.Join(allScenarios, ","), "scenarios to run, comma-separated")
	fs.IntVar(&c.RunCount, "run-count", 20, "run: sequential create/start/wait/remove cycles per engine")
	fs.StringVar(&c.RunNetwork, "run-network", "none", "run: the containers' network (bridge: the default network, as a plain docker run; the engines must both have it)")
	fs.StringVar(&c.MemoryNetwork, "memory-network", "none", "memory: the sleeping containers' network (bridge: the default network)")
	fs.StringVar(&c.ParallelNetwork, "parallel-network", "none", "parallel: the containers' network (bridge: the default network, every start joining it at once)")
	fs.StringVar(&parallelN, "parallel-n", "1,5,10,25,50", "parallel: batch sizes, comma-separated")
	fs.IntVar(&c.ParallelRepeat, "parallel-repeat", 3, "parallel: batches per size and engine")
	fs.IntVar(&c.Containers, "containers", 100, "api, memory: containers present (M)")
	fs.IntVar(&c.APIWorkers, "api-workers", 8, "api: concurrent clients")
	fs.DurationVar(&c.APIDuration, "api-duration", 5*time.Second, "api: load duration per endpoint and engine")
	fs.IntVar(&c.PullLayers, "pull-layers", 3, "pull: layers of the test image")
	fs.IntVar(&c.PullLayerMB, "pull-layer-mb", 20, "pull: MB of incompressible data per layer")
	fs.IntVar(&c.PullRepeat, "pull-repeat", 3, "pull: pulls per engine (a fresh image each time)")
	fs.IntVar(&c.BuildRepeat, "build-repeat", 5, "build: cold and warm builds per engine (each cold one empties the engine's build cache)")
	fs.IntVar(&c.NetMiB, "net-mib", 16, "net: MiB each transfer sends from one container to another")
	fs.IntVar(&c.NetRepeat, "net-repeat", 3, "net: transfers per engine")
	fs.IntVar(&c.TargetPID, "daemon-pid", 0, "memory: the target daemon's pid (default: the socket's peer)")
	fs.IntVar(&c.ComparePID, "compare-daemon-pid", 0, "memory: the compare daemon's pid (default: the socket's peer)")
	fs.DurationVar(&c.Settle, "settle", 3*time.Second, "memory: wait after starting containers before measuring")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Minute, "bound on the whole run")
	fs.BoolVar(&c.Smoke, "smoke", false, "tiny sizes and one repeat, for CI: N=1,2, M=5, short durations")
	fs.StringVar(&c.JSONPath, "json", "", "write results as JSON to this file")
	fs.StringVar(&c.SVGPath, "svg", "", "write the parallel-start chart as SVG to this file")
	fs.StringVar(&c.Replot, "replot", "", "measure nothing: print the tables of this JSON result (and --svg its chart)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.Smoke {
		// Smoke sizes, unless a flag said otherwise.
		defaults := map[string]func(){
			"run-count":       func() { c.RunCount = 3 },
			"parallel-n":      func() { parallelN = "1,2" },
			"parallel-repeat": func() { c.ParallelRepeat = 1 },
			"containers":      func() { c.Containers = 5 },
			"api-duration":    func() { c.APIDuration = 500 * time.Millisecond },
			"api-workers":     func() { c.APIWorkers = 4 },
			"pull-layers":     func() { c.PullLayers = 2 },
			"pull-layer-mb":   func() { c.PullLayerMB = 1 },
			"pull-repeat":     func() { c.PullRepeat = 1 },
			"build-repeat":    func() { c.BuildRepeat = 1 },
			"net-mib":         func() { c.NetMiB = 1 },
			"net-repeat":      func() { c.NetRepeat = 1 },
			"settle":          func() { c.Settle = 500 * time.Millisecond },
			"timeout":         func() { c.Timeout = 5 * time.Minute },
		}
		for name, apply := range defaults {
			if !set[name] {
				apply()
			}
		}
	}
	for _, s := range strings.Split(scenarios, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !contains(allScenarios, s) && !contains(optScenarios, s) {
			return Config{}, fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(append(slices.Clone(allScenarios), optScenarios...), ", "))
		}
		c.Scenarios = append(c.Scenarios, s)
	}
	ns, err := parseInts(parallelN)
	if err != nil {
		return Config{}, fmt.Errorf("--parallel-n: %w", err)
	}
	c.ParallelN = ns
	for _, v := range []struct {
		name string
		n    int
	}{{"run-count", c.RunCount}, {"parallel-repeat", c.ParallelRepeat}, {"containers", c.Containers},
		{"api-workers", c.APIWorkers}, {"pull-layers", c.PullLayers}, {"pull-layer-mb", c.PullLayerMB}, {"pull-repeat", c.PullRepeat},
		{"build-repeat", c.BuildRepeat}, {"net-mib", c.NetMiB}, {"net-repeat", c.NetRepeat}} {
		if v.n < 1 {
			return Config{}, fmt.Errorf("--%s must be at least 1", v.name)
		}
	}
	if c.APIDuration <= 0 || c.Timeout <= 0 {
		return Config{}, errors.New("durations must be positive")
	}
	return c, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no sizes given")
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
