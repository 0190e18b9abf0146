package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// The self-check's report: plain text, one line per check or step, meant
// to be pasted into an issue whole (docs/macos.md, "How to check a Mac
// install").

// reportHeader is what the report starts with: who checked what, where.
type reportHeader struct {
	when   time.Time
	arca   string // version, commit, build date, go, platform
	host   string // OS and version, chip, cores, memory
	docker string // the CLI and how it reaches the daemon
	image  string
}

func writeHeader(w io.Writer, h reportHeader) {
	fmt.Fprintln(w, "arca self-check")
	for _, kv := range [][2]string{
		{"date", h.when.UTC().Format("2006-01-02 15:04:05 UTC")},
		{"arca", h.arca},
		{"host", h.host},
		{"docker", h.docker},
		{"image", h.image},
	} {
		fmt.Fprintf(w, "%-8s %s\n", kv[0], kv[1])
	}
}

func writeSection(w io.Writer, title string) { fmt.Fprintf(w, "\n-- %s --\n", title) }

// writeStep writes a step's line: status, name, time, detail, and below
// it the error, indented, when it failed.
func writeStep(w io.Writer, r stepResult) {
	took := ""
	if r.status != stepSkip && r.took > 0 {
		took = formatTook(r.took)
	}
	fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%-5s %-8s %7s  %s", r.status, r.name, took, r.detail), " "))
	if r.err != nil {
		for _, line := range strings.Split(r.err.Error(), "\n") {
			fmt.Fprintf(w, "%-24s%s\n", "", line)
		}
	}
}

func formatTook(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// writeSummary counts the steps and tells whether any failed.
func writeSummary(w io.Writer, rs []stepResult, total time.Duration) (failed bool) {
	var n [3]int
	for _, r := range rs {
		n[r.status]++
	}
	fmt.Fprintf(w, "\n%d steps: %d OK, %d FAIL, %d SKIP in %s\n", len(rs), n[stepOK], n[stepFail], n[stepSkip], formatTook(total))
	return n[stepFail] > 0
}

// arcaSummary is the report's arca line.
func arcaSummary() string {
	return fmt.Sprintf("%s (commit %s, built %s) %s/%s, %s", version, gitCommit, buildDate, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// selfCheckDocker is how the self-check calls the docker CLI: through the
// context arca when it points at socket, as a user's commands go after
// make install; else at the socket directly, and the report says so.
func selfCheckDocker(docker, socket string) (dockerCLI, string, error) {
	path, err := exec.LookPath(docker)
	if err != nil {
		return dockerCLI{}, "", fmt.Errorf("no docker CLI on PATH: %w", err)
	}
	want := "unix://" + socket
	// docker --version needs no daemon: "Docker version 28.5.1, build e180ab8".
	v, _ := dockerOutput(path, "--version")
	v = strings.TrimPrefix(v, "Docker version ")
	if host, err := dockerOutput(path, "context", "inspect", "arca", "--format", "{{.Endpoints.docker.Host}}"); err == nil && host == want {
		return dockerCLI{path: path, global: []string{"--context", "arca"}}, fmt.Sprintf("%s %s, context arca (%s)", path, v, want), nil
	}
	return dockerCLI{path: path, global: []string{"--host", want}},
		fmt.Sprintf("%s %s, --host %s (no context arca on this socket)", path, v, want), nil
}

// runFullCheck is arca doctor --full: the header, the static checks, the
// steps, the summary. It tells whether anything failed.
func runFullCheck(ctx context.Context, w io.Writer, env doctorEnv, image string) (failed bool) {
	start := time.Now()
	cli, how, derr := selfCheckDocker(env.docker, env.socket)
	if derr != nil {
		how = derr.Error()
	}
	writeHeader(w, reportHeader{when: start, arca: arcaSummary(), host: hostSummary(), docker: how, image: image})
	writeSection(w, "install")
	failed = printFindings(w, doctor(env))
	writeSection(w, "end to end")
	if derr != nil {
		fmt.Fprintf(w, "FAIL  %s\n", derr)
		return true
	}
	c := newSelfCheck(cli, image)
	rs := c.runSteps(ctx, w, selfCheckSteps())
	return writeSummary(w, rs, time.Since(start)) || failed
}

// formatHost is the report's host line.
func formatHost(osName, kernel, cpu string, cores int, memBytes uint64) string {
	parts := []string{osName}
	if kernel != "" {
		parts = append(parts, kernel)
	}
	if cpu != "" {
		parts = append(parts, cpu)
	}
	parts = append(parts, fmt.Sprintf("%d cores", cores))
	if memBytes > 0 {
		parts = append(parts, gib(memBytes)+" memory")
	}
	return strings.Join(parts, ", ")
}
