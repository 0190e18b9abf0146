package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// bench holds what every scenario shares.
type bench struct {
	cfg      Config
	log      io.Writer
	runID    string
	registry string
	image    string // busybox, present on every engine
	engines  []*engine
	pids     map[string]int // daemon pid by role, once resolved
}

// run is main without the process: the test calls it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.Replot != "" {
		return replot(cfg, stdout)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	b := &bench{cfg: cfg, log: stderr, runID: fmt.Sprint(time.Now().UnixNano()), pids: map[string]int{}}

	hosts := []struct{ role, host string }{{"target", cfg.Target}}
	if cfg.Compare != "" {
		hosts = append(hosts, struct{ role, host string }{"compare", cfg.Compare})
	}
	for _, h := range hosts {
		e, err := newEngine(ctx, h.role, h.host, b.runID)
		if err != nil {
			return err
		}
		defer e.close()
		b.engines = append(b.engines, e)
	}

	if cfg.Registry == "" {
		dir, err := os.MkdirTemp("", "arca-bench-registry-")
		if err != nil {
			return fmt.Errorf("registry dir: %w", err)
		}
		defer os.RemoveAll(dir)
		b.logf("starting docker-registry on loopback")
		reg, err := testenv.StartRegistryServer(dir)
		if err != nil {
			return fmt.Errorf("start registry (install docker-registry, or pass --registry): %w", err)
		}
		defer reg.Stop()
		cfg.Registry = reg.Addr
		b.cfg.Registry = reg.Addr
	}
	b.registry = cfg.Registry
	pushed, err := testenv.PushBusyboxTo(b.registry)
	if err != nil {
		return fmt.Errorf("push busybox to %s: %w", b.registry, err)
	}
	b.image = pushed.Ref
	for _, e := range b.engines {
		b.logf("%s: %s %s at %s; pulling %s", e.role, e.info.Name, e.info.Version, e.host, b.image)
		if err := e.pullImage(ctx, b.image); err != nil {
			return err
		}
		if err := e.cleanup(ctx); err != nil {
			return err
		}
	}

	report := &Report{Date: time.Now().UTC().Format(time.RFC3339), Config: b.cfg, Image: b.image}
	// memory goes first so that "idle" is a daemon that has not yet served
	// the rest of the bench (its heap only grows).
	order := []string{"memory", "run", "parallel", "api", "pull", "build", "net"}
	for _, name := range order {
		if !contains(cfg.Scenarios, name) {
			continue
		}
		b.logf("scenario %s", name)
		start := time.Now()
		var err error
		switch name {
		case "memory":
			report.Memory, err = b.memory(ctx)
		case "run":
			report.Run, err = b.runScenario(ctx)
		case "parallel":
			report.Parallel, err = b.parallel(ctx)
		case "api":
			report.API, err = b.api(ctx)
		case "pull":
			report.Pull, err = b.pull(ctx)
		case "build":
			report.Build, err = b.buildScenario(ctx)
		case "net":
			report.Net, err = b.netScenario(ctx)
		}
		if err != nil {
			b.logf("scenario %s failed: %v", name, err)
			report.Errors = append(report.Errors, fmt.Sprintf("%s: %v", name, err))
		}
		// Whatever a failed scenario left must not load the next one.
		for _, e := range b.engines {
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			if err := e.cleanup(cctx); err != nil {
				report.Errors = append(report.Errors, fmt.Sprintf("%s: cleanup: %v", name, err))
			}
			ccancel()
		}
		b.logf("scenario %s done in %s", name, time.Since(start).Round(time.Millisecond))
		if ctx.Err() != nil {
			report.Errors = append(report.Errors, fmt.Sprintf("stopped after %s: %v", name, context.Cause(ctx)))
			break
		}
	}
	for _, e := range b.engines {
		e.info.DaemonPID = b.pids[e.role]
		report.Engines = append(report.Engines, e.info)
	}

	printReport(stdout, report)
	var errs []error
	if cfg.JSONPath != "" {
		errs = append(errs, writeJSON(cfg.JSONPath, report))
	}
	if cfg.SVGPath != "" && report.Parallel != nil {
		errs = append(errs, writeSVGFile(cfg.SVGPath, report))
	}
	if len(report.Errors) > 0 {
		errs = append(errs, fmt.Errorf("%d scenario error(s); first: %s", len(report.Errors), report.Errors[0]))
	}
	return errors.Join(errs...)
}

// replot redraws a saved result, so a chart or table can change without
// measuring again.
func replot(cfg Config, stdout io.Writer) error {
	raw, err := os.ReadFile(cfg.Replot)
	if err != nil {
		return fmt.Errorf("read result: %w", err)
	}
	var r Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("parse %s: %w", cfg.Replot, err)
	}
	printReport(stdout, &r)
	if cfg.SVGPath != "" && r.Parallel != nil {
		return writeSVGFile(cfg.SVGPath, &r)
	}
	return nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// daemonPID is --daemon-pid / --compare-daemon-pid, else the pid of the
// process at the other end of the engine's unix socket.
func (b *bench) daemonPID(e *engine) (int, error) {
	if pid := b.pids[e.role]; pid > 0 {
		return pid, nil
	}
	pid := b.cfg.TargetPID
	if e.role == "compare" {
		pid = b.cfg.ComparePID
	}
	if pid == 0 {
		path := unixPath(e.host)
		if path == "" {
			return 0, fmt.Errorf("%s is not a unix socket: pass its daemon's pid", e.host)
		}
		var err error
		if pid, err = peerPID(path); err != nil {
			return 0, err
		}
	}
	b.pids[e.role] = pid
	return pid, nil
}
