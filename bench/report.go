package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
)

// Report is the whole result of a run, as written by --json. Per-engine
// maps are keyed by role: "target" and, with --compare, "compare".
type Report struct {
	Date     string          `json:"date"`
	Config   Config          `json:"config"`
	Engines  []EngineInfo    `json:"engines"`
	Image    string          `json:"image"`
	Run      *RunResult      `json:"run,omitempty"`
	Parallel *ParallelResult `json:"parallel,omitempty"`
	API      *APIResult      `json:"api,omitempty"`
	Memory   *MemoryResult   `json:"memory,omitempty"`
	Pull     *PullResult     `json:"pull,omitempty"`
	Build    *BuildResult    `json:"build,omitempty"`
	Net      *NetResult      `json:"net,omitempty"`
	Errors   []string        `json:"errors,omitempty"`
}

// RunResult: sequential create → start → wait → remove of busybox `true`.
type RunResult struct {
	Count   int                  `json:"count"`
	Engines map[string]RunEngine `json:"engines"`
}

type RunEngine struct {
	Create Summary `json:"create"`
	Start  Summary `json:"start"`
	Wait   Summary `json:"wait"`
	Remove Summary `json:"remove"`
	Total  Summary `json:"total"`
	// Steps split Arca's start into the steps its actor tree reports
	// (boot, agent, setup, network, process, and boot_to_agent: the first
	// two together); absent for other engines.
	Steps map[string]Summary `json:"steps,omitempty"`
}

// startSteps are RunEngine.Steps' keys, in the order a start takes them.
var startSteps = []string{"boot", "agent", "boot_to_agent", "setup", "network", "process"}

// ParallelResult: N containers created, attached and started at once; the
// time from the common start until each printed its first line.
type ParallelResult struct {
	Repeat int             `json:"repeat"`
	Points []ParallelPoint `json:"points"`
}

type ParallelPoint struct {
	N       int                       `json:"n"`
	Engines map[string]ParallelEngine `json:"engines"`
}

type ParallelEngine struct {
	// FirstLine is over every container of every batch of this size.
	FirstLine Summary `json:"first_line"`
	// Create is the create request's latency inside the batch.
	Create Summary `json:"create"`
	// Throughput is N divided by the time until the batch's last first
	// line, the median over the batches.
	Throughput float64 `json:"starts_per_s"`
}

// APIResult: bounded concurrent load on read endpoints with M containers
// present (created, not started).
type APIResult struct {
	Containers int           `json:"containers"`
	Workers    int           `json:"workers"`
	DurationS  float64       `json:"duration_s"`
	Endpoints  []APIEndpoint `json:"endpoints"`
}

type APIEndpoint struct {
	Name    string               `json:"name"`
	Engines map[string]APIEngine `json:"engines"`
}

type APIEngine struct {
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	RPS      float64 `json:"requests_per_s"`
	Latency  Summary `json:"latency"`
}

// MemoryResult: resident memory of the daemon and of everything that runs
// on its behalf, idle and with M containers running `sleep`.
type MemoryResult struct {
	Containers int                     `json:"containers"`
	Engines    map[string]MemoryEngine `json:"engines"`
}

type MemoryEngine struct {
	DaemonPID        int   `json:"daemon_pid"`
	IdleDaemonRSS    int64 `json:"idle_daemon_rss_bytes"`
	IdleTreeRSS      int64 `json:"idle_tree_rss_bytes"`
	IdleTreePSS      int64 `json:"idle_tree_pss_bytes"`
	IdleProcesses    int   `json:"idle_processes"`
	RunningDaemonRSS int64 `json:"running_daemon_rss_bytes"`
	RunningTreeRSS   int64 `json:"running_tree_rss_bytes"`
	RunningTreePSS   int64 `json:"running_tree_pss_bytes"`
	RunningProcesses int   `json:"running_processes"`
	// PerContainer* are (running − idle) / M over the whole process set.
	PerContainerRSS float64 `json:"per_container_rss_bytes"`
	PerContainerPSS float64 `json:"per_container_pss_bytes"`
}

// PullResult: a multi-layer image of incompressible data pulled through the
// API, a fresh image (new digests) for every repeat.
type PullResult struct {
	Layers  int                   `json:"layers"`
	Bytes   int64                 `json:"bytes"`
	Repeat  int                   `json:"repeat"`
	Engines map[string]PullEngine `json:"engines"`
}

type PullEngine struct {
	Time Summary `json:"time"`
	// MBps is Bytes over the median pull time, in MB (10^6 bytes) per second.
	MBps float64 `json:"mb_per_s"`
}

// BuildResult: `docker build` of a small two-stage Dockerfile through the
// docker CLI and its buildx plugin, timed from the CLI's start to its exit.
type BuildResult struct {
	Repeat int `json:"repeat"`
	// Steps is the Dockerfile's RUN steps.
	Steps int `json:"run_steps"`
	// Client is the docker CLI's version and the buildx plugin's.
	Client  string                 `json:"client"`
	Engines map[string]BuildEngine `json:"engines"`
}

type BuildEngine struct {
	// Cold: after `docker builder prune -af` and removing the image.
	Cold Summary `json:"cold"`
	// Warm: the same build right after, every step from the cache.
	Warm Summary `json:"warm"`
}

func writeJSON(path string, r *Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	// NaN has no JSON form; Summaries of empty samples are zero, not NaN,
	// and ratios are never stored, so Marshal only fails on a bug.
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// printReport writes the human-readable tables. With two engines every row
// ends in target/compare: below 1 means the target took less time (or, for
// rates, did less work: the column header says which).
func printReport(w io.Writer, r *Report) {
	roles := []string{"target"}
	cmp := len(r.Engines) > 1
	if cmp {
		roles = append(roles, "compare")
	}
	fmt.Fprintf(w, "arca bench, %s\n", r.Date)
	for _, e := range r.Engines {
		fmt.Fprintf(w, "  %-8s %s  %s %s (API %s)\n", e.Role, e.Host, e.Name, e.Version, e.APIVersion)
	}
	fmt.Fprintf(w, "  image    %s\n", r.Image)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := func(title string, cols ...string) {
		fmt.Fprintf(w, "\n%s\n", title)
		fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	}
	if res := r.Run; res != nil {
		cols := []string{"phase"}
		for _, role := range roles {
			cols = append(cols, role+" p50 ms", role+" p95 ms")
		}
		if cmp {
			cols = append(cols, "p50 ratio")
		}
		header(fmt.Sprintf("run: sequential create/start/wait/remove of `true` on network %s (%d cycles)", orNone(r.Config.RunNetwork), res.Count), cols...)
		for _, ph := range []string{"create", "start", "wait", "remove", "total"} {
			row := []string{ph}
			var p50s []float64
			for _, role := range roles {
				s := res.Engines[role].phase(ph)
				row = append(row, ms(s.P50), ms(s.P95))
				p50s = append(p50s, s.P50)
			}
			if cmp {
				row = append(row, ratioCell(p50s[0], p50s[1]))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
		for _, role := range roles {
			steps := res.Engines[role].Steps
			if len(steps) == 0 {
				continue
			}
			header(fmt.Sprintf("start steps of %s, from Arca's actor tree", role), "step", "p50 ms", "p95 ms", "max ms")
			for _, st := range startSteps {
				s := steps[st]
				fmt.Fprintln(tw, strings.Join([]string{st, ms(s.P50), ms(s.P95), ms(s.Max)}, "\t")+"\t")
			}
			tw.Flush()
		}
	}
	if res := r.Parallel; res != nil {
		cols := []string{"N"}
		for _, role := range roles {
			cols = append(cols, role+" p50", "p95", "p99", "starts/s")
		}
		if cmp {
			cols = append(cols, "p50 ratio")
		}
		header(fmt.Sprintf("parallel: N at once on network %s, ms until each printed its first line (%d batches per N)", orNone(r.Config.ParallelNetwork), res.Repeat), cols...)
		for _, p := range res.Points {
			row := []string{fmt.Sprint(p.N)}
			var p50s []float64
			for _, role := range roles {
				s := p.Engines[role]
				row = append(row, ms(s.FirstLine.P50), ms(s.FirstLine.P95), ms(s.FirstLine.P99), rate(s.Throughput))
				p50s = append(p50s, s.FirstLine.P50)
			}
			if cmp {
				row = append(row, ratioCell(p50s[0], p50s[1]))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
	if res := r.API; res != nil {
		cols := []string{"endpoint"}
		for _, role := range roles {
			cols = append(cols, role+" req/s", "p50 ms", "p99 ms", "errors")
		}
		if cmp {
			cols = append(cols, "req/s ratio")
		}
		header(fmt.Sprintf("api: %d workers for %.1fs per endpoint, %d containers present", res.Workers, res.DurationS, res.Containers), cols...)
		for _, ep := range res.Endpoints {
			row := []string{ep.Name}
			var rps []float64
			for _, role := range roles {
				s := ep.Engines[role]
				row = append(row, rate(s.RPS), ms(s.Latency.P50), ms(s.Latency.P99), fmt.Sprint(s.Errors))
				rps = append(rps, s.RPS)
			}
			if cmp {
				row = append(row, ratioCell(rps[0], rps[1]))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
	if res := r.Memory; res != nil {
		cols := []string{"MiB"}
		cols = append(cols, roles...)
		header(fmt.Sprintf("memory: idle, and with %d containers running `sleep` on network %s", res.Containers, orNone(r.Config.MemoryNetwork)), cols...)
		rows := []struct {
			name string
			get  func(MemoryEngine) float64
		}{
			{"daemon RSS idle", func(m MemoryEngine) float64 { return float64(m.IdleDaemonRSS) }},
			{"all RSS idle", func(m MemoryEngine) float64 { return float64(m.IdleTreeRSS) }},
			{"daemon RSS running", func(m MemoryEngine) float64 { return float64(m.RunningDaemonRSS) }},
			{"all RSS running", func(m MemoryEngine) float64 { return float64(m.RunningTreeRSS) }},
			{"all PSS running", func(m MemoryEngine) float64 { return float64(m.RunningTreePSS) }},
			{"RSS per container", func(m MemoryEngine) float64 { return m.PerContainerRSS }},
			{"PSS per container", func(m MemoryEngine) float64 { return m.PerContainerPSS }},
		}
		for _, rw := range rows {
			row := []string{rw.name}
			for _, role := range roles {
				row = append(row, mb(rw.get(res.Engines[role])))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		procs := []string{"processes idle/running"}
		for _, role := range roles {
			m := res.Engines[role]
			procs = append(procs, fmt.Sprintf("%d/%d", m.IdleProcesses, m.RunningProcesses))
		}
		fmt.Fprintln(tw, strings.Join(procs, "\t")+"\t")
		tw.Flush()
	}
	if res := r.Pull; res != nil {
		cols := []string{""}
		for _, role := range roles {
			cols = append(cols, role+" MB/s", "p50 s")
		}
		if cmp {
			cols = append(cols, "MB/s ratio")
		}
		header(fmt.Sprintf("pull: %d layers, %.1f MB, %d pulls per engine", res.Layers, float64(res.Bytes)/1e6, res.Repeat), cols...)
		row := []string{"pull"}
		var rates []float64
		for _, role := range roles {
			s := res.Engines[role]
			row = append(row, rate(s.MBps), fmt.Sprintf("%.2f", s.Time.P50/1000))
			rates = append(rates, s.MBps)
		}
		if cmp {
			row = append(row, ratioCell(rates[0], rates[1]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		tw.Flush()
	}
	if res := r.Build; res != nil {
		cols := []string{"cache"}
		for _, role := range roles {
			cols = append(cols, role+" p50 ms", role+" p95 ms")
		}
		if cmp {
			cols = append(cols, "p50 ratio")
		}
		title := fmt.Sprintf("build: docker build of two stages, %d RUN steps (%d cold and %d warm builds per engine)", res.Steps, res.Repeat, res.Repeat)
		if res.Client != "" {
			title += "\n  client " + res.Client
		}
		header(title, cols...)
		for _, c := range []string{"cold", "warm"} {
			row := []string{c}
			var p50s []float64
			for _, role := range roles {
				s := res.Engines[role].Cold
				if c == "warm" {
					s = res.Engines[role].Warm
				}
				row = append(row, ms(s.P50), ms(s.P95))
				p50s = append(p50s, s.P50)
			}
			if cmp {
				row = append(row, ratioCell(p50s[0], p50s[1]))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
	if res := r.Net; res != nil {
		header(fmt.Sprintf("net: on a user network, `true` run %d times, then %d MiB sent between two containers with busybox nc", res.Count, res.MiB),
			"engine", "start p50 ms", "start p95 ms", "network step p50 ms", "MB/s each transfer")
		for _, role := range roles {
			ne, ok := res.Engines[role]
			if !ok {
				continue
			}
			rates := make([]string, len(ne.MBps))
			for i, v := range ne.MBps {
				rates[i] = fmt.Sprintf("%.2f", v)
			}
			step := "-"
			if s, ok := ne.Run.Steps["network"]; ok {
				step = ms(s.P50)
			}
			fmt.Fprintln(tw, strings.Join([]string{role, ms(ne.Run.Start.P50), ms(ne.Run.Start.P95), step, strings.Join(rates, " ")}, "\t")+"\t")
		}
		tw.Flush()
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "\nerror: %s\n", e)
	}
}

func (r RunEngine) phase(name string) Summary {
	switch name {
	case "create":
		return r.Create
	case "start":
		return r.Start
	case "wait":
		return r.Wait
	case "remove":
		return r.Remove
	}
	return r.Total
}

func ms(v float64) string {
	if v == 0 || math.IsNaN(v) {
		return "-"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func rate(v float64) string {
	if v == 0 {
		return "-"
	}
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func mb(bytes float64) string {
	if bytes == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", bytes/(1<<20))
}

func ratioCell(a, b float64) string {
	r := ratio(a, b)
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

// orNone names a scenario's network; results older than the flag ran on none.
func orNone(network string) string {
	if network == "" {
		return "none"
	}
	return network
}
