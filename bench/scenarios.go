package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/arcavm/arca/internal/testenv"
	"github.com/arcavm/arca/messages"
	"github.com/moby/moby/client"
)

// opTimeout bounds one API call of a scenario, so a stuck engine fails the
// scenario instead of hanging the bench until --timeout.
const opTimeout = 2 * time.Minute

// runScenario: sequential create → start → wait → remove of busybox `true`,
// A B A B. One unrecorded cycle per engine first: the first container on an
// engine pays for caches (an unpacked image, page cache) later ones don't.
func (b *bench) runScenario(ctx context.Context) (*RunResult, error) {
	type samples struct {
		create, start, wait, remove, total []time.Duration
		steps                              map[string][]time.Duration
	}
	by := map[string]*samples{}
	for _, e := range b.engines {
		by[e.role] = &samples{steps: map[string][]time.Duration{}}
		if _, _, err := b.runOnce(ctx, e); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	for range b.cfg.RunCount {
		for _, e := range b.engines {
			d, steps, err := b.runOnce(ctx, e)
			if err != nil {
				return nil, err
			}
			s := by[e.role]
			if steps != nil {
				for name, v := range map[string]float64{
					"boot": steps.BootMs, "agent": steps.AgentMs, "boot_to_agent": steps.BootMs + steps.AgentMs,
					"setup": steps.SetupMs, "network": steps.NetworkMs, "process": steps.ProcessMs,
				} {
					s.steps[name] = append(s.steps[name], time.Duration(v*float64(time.Millisecond)))
				}
			}
			s.create = append(s.create, d[0])
			s.start = append(s.start, d[1])
			s.wait = append(s.wait, d[2])
			s.remove = append(s.remove, d[3])
			s.total = append(s.total, d[0]+d[1]+d[2]+d[3])
		}
	}
	res := &RunResult{Count: b.cfg.RunCount, Engines: map[string]RunEngine{}}
	for role, s := range by {
		re := RunEngine{
			Create: Summarize(s.create), Start: Summarize(s.start), Wait: Summarize(s.wait),
			Remove: Summarize(s.remove), Total: Summarize(s.total),
		}
		if len(s.steps) > 0 {
			re.Steps = map[string]Summary{}
			for name, ds := range s.steps {
				re.Steps[name] = Summarize(ds)
			}
		}
		res.Engines[role] = re
	}
	return res, nil
}

// runOnce times the four phases of one `docker run --rm busybox true` (on
// --run-network, by default none); on
// Arca it also reads the start's steps from the actor tree (between wait
// and remove, outside the timed phases).
func (b *bench) runOnce(ctx context.Context, e *engine) (d [4]time.Duration, steps *messages.StartTimings, err error) {
	return b.runSpec(ctx, e, onNetwork(containerSpec(b.image, b.runID, "true"), b.cfg.RunNetwork))
}

// runSpec is runOnce of the container spec describes, which must exit 0.
func (b *bench) runSpec(ctx context.Context, e *engine, spec client.ContainerCreateOptions) (d [4]time.Duration, steps *messages.StartTimings, err error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	t0 := time.Now()
	c, err := e.cli.ContainerCreate(ctx, spec)
	if err != nil {
		return d, nil, fmt.Errorf("create on %s: %w", e.role, err)
	}
	t1 := time.Now()
	if _, err := e.cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		return d, nil, fmt.Errorf("start %.12s on %s: %w", c.ID, e.role, err)
	}
	t2 := time.Now()
	w := e.cli.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{})
	select {
	case r := <-w.Result:
		if r.StatusCode != 0 {
			return d, nil, fmt.Errorf("container %.12s on %s exited %d", c.ID, e.role, r.StatusCode)
		}
	case err := <-w.Error:
		return d, nil, fmt.Errorf("wait %.12s on %s: %w", c.ID, e.role, err)
	}
	t3 := time.Now()
	if e.isArca() {
		if steps, err = e.startTimings(ctx, c.ID); err != nil {
			return d, nil, fmt.Errorf("start steps of %.12s on %s: %w", c.ID, e.role, err)
		}
	}
	t3r := time.Now()
	if _, err := e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{}); err != nil {
		return d, nil, fmt.Errorf("remove %.12s on %s: %w", c.ID, e.role, err)
	}
	t4 := time.Now()
	return [4]time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3r)}, steps, nil
}

// parallel: for each N, batches of N containers created, attached and
// started at once, as N concurrent `docker run` would, timed from the
// common go until each container's first line arrives on its attach stream.
func (b *bench) parallel(ctx context.Context) (*ParallelResult, error) {
	res := &ParallelResult{Repeat: b.cfg.ParallelRepeat}
	// One untimed start per engine first: what the first container of an
	// engine pays once (a VM driver's template of the machine's shape, an
	// image's disk) is not a cost of starting N at once, and N=1 is the
	// one start the others are compared with.
	for _, e := range b.engines {
		if _, _, err := b.batch(ctx, e, 1); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	for _, n := range b.cfg.ParallelN {
		type acc struct {
			first, create []time.Duration
			rates         []float64
		}
		by := map[string]*acc{}
		for range b.cfg.ParallelRepeat {
			for _, e := range b.engines {
				first, create, err := b.batch(ctx, e, n)
				if err != nil {
					return res, fmt.Errorf("N=%d: %w", n, err)
				}
				a := by[e.role]
				if a == nil {
					a = &acc{}
					by[e.role] = a
				}
				a.first = append(a.first, first...)
				a.create = append(a.create, create...)
				a.rates = append(a.rates, float64(n)/slices.Max(first).Seconds())
			}
		}
		p := ParallelPoint{N: n, Engines: map[string]ParallelEngine{}}
		for role, a := range by {
			slices.Sort(a.rates)
			p.Engines[role] = ParallelEngine{
				FirstLine:  Summarize(a.first),
				Create:     Summarize(a.create),
				Throughput: Percentile(a.rates, 50),
			}
		}
		res.Points = append(res.Points, p)
		b.logf("parallel N=%d: %s", n, describePoint(p))
	}
	return res, nil
}

func describePoint(p ParallelPoint) string {
	var s string
	for _, role := range []string{"target", "compare"} {
		if e, ok := p.Engines[role]; ok {
			s += fmt.Sprintf("%s p50 %.0f ms p95 %.0f ms %.1f starts/s; ", role, e.FirstLine.P50, e.FirstLine.P95, e.Throughput)
		}
	}
	return s
}

// batch runs one batch of n and removes its containers (untimed).
func (b *bench) batch(ctx context.Context, e *engine, n int) (first, create []time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, batchTimeout(n))
	defer cancel()
	first = make([]time.Duration, n)
	create = make([]time.Duration, n)
	ids := make([]string, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	var t0 time.Time
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-gate
			ids[i], create[i], first[i], errs[i] = b.startOne(ctx, e, t0)
		}()
	}
	ready.Wait()
	t0 = time.Now() // written before close(gate), read after it: ordered
	close(gate)
	done.Wait()
	var created []string
	for _, id := range ids {
		if id != "" {
			created = append(created, id)
		}
	}
	rmErr := e.removeContainers(context.WithoutCancel(ctx), created)
	if err := errors.Join(errors.Join(errs...), rmErr); err != nil {
		return nil, nil, err
	}
	return first, create, nil
}

// batchTimeout bounds a batch of n starts. Starts at once share the
// host's cores, so a batch of VMs emulated under TCG takes time in
// proportion to n (50 took 98 s on 2 cores): opTimeout, or 5 s a start.
func batchTimeout(n int) time.Duration {
	return max(opTimeout, time.Duration(n)*5*time.Second)
}

// startOne is one `docker run busybox echo ready`: create, attach, start,
// read until the first line.
func (b *bench) startOne(ctx context.Context, e *engine, t0 time.Time) (id string, create, first time.Duration, err error) {
	c, err := e.cli.ContainerCreate(ctx, onNetwork(containerSpec(b.image, b.runID, "echo", "ready"), b.cfg.ParallelNetwork))
	if err != nil {
		return "", 0, 0, fmt.Errorf("create on %s: %w", e.role, err)
	}
	create = time.Since(t0)
	// Attach before start, as the CLI does, so no output can be missed.
	att, err := e.cli.ContainerAttach(ctx, c.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return c.ID, 0, 0, fmt.Errorf("attach %.12s on %s: %w", c.ID, e.role, err)
	}
	defer att.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = att.Conn.SetReadDeadline(dl)
	}
	if _, err := e.cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		return c.ID, 0, 0, fmt.Errorf("start %.12s on %s: %w", c.ID, e.role, err)
	}
	if err := readFirstLine(att.Reader); err != nil {
		return c.ID, 0, 0, fmt.Errorf("first line of %.12s on %s: %w", c.ID, e.role, err)
	}
	return c.ID, create, time.Since(t0), nil
}

// api: M created containers per engine, then for each endpoint and engine
// (interleaved) a fixed number of workers issuing requests back to back
// for a fixed time.
func (b *bench) api(ctx context.Context) (*APIResult, error) {
	m := b.cfg.Containers
	ids := map[string][]string{}
	for _, e := range b.engines {
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		created, err := e.createMany(cctx, m, 8, containerSpec(b.image, b.runID, "true"))
		cancel()
		ids[e.role] = created
		if err != nil {
			return nil, err
		}
	}
	res := &APIResult{Containers: m, Workers: b.cfg.APIWorkers, DurationS: b.cfg.APIDuration.Seconds()}
	endpoints := []struct {
		name string
		call func(ctx context.Context, e *engine, i int) error
	}{
		{"GET /containers/json?all=1", func(ctx context.Context, e *engine, _ int) error {
			_, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true})
			return err
		}},
		{"GET /containers/{id}/json", func(ctx context.Context, e *engine, i int) error {
			list := ids[e.role]
			_, err := e.cli.ContainerInspect(ctx, list[i%len(list)], client.ContainerInspectOptions{})
			return err
		}},
		{"GET /_ping", func(ctx context.Context, e *engine, _ int) error {
			_, err := e.cli.Ping(ctx, client.PingOptions{})
			return err
		}},
	}
	for _, ep := range endpoints {
		row := APIEndpoint{Name: ep.name, Engines: map[string]APIEngine{}}
		for _, e := range b.engines {
			row.Engines[e.role] = load(ctx, b.cfg.APIWorkers, b.cfg.APIDuration, func(ctx context.Context, i int) error {
				return ep.call(ctx, e, i)
			})
		}
		res.Endpoints = append(res.Endpoints, row)
	}
	for _, e := range b.engines {
		if err := e.removeContainers(ctx, ids[e.role]); err != nil {
			return res, err
		}
	}
	for _, ep := range res.Endpoints {
		for role, s := range ep.Engines {
			if s.Requests == 0 || s.Errors > 0 {
				return res, fmt.Errorf("%s on %s: %d of %d requests failed", ep.Name, role, s.Errors, s.Requests)
			}
		}
	}
	return res, nil
}

// load runs call from workers goroutines back to back for d and describes
// the latencies of the calls that succeeded.
func load(ctx context.Context, workers int, d time.Duration, call func(ctx context.Context, i int) error) APIEngine {
	lat := make([][]time.Duration, workers)
	errs := make([]int, workers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i += workers {
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t := time.Now()
				err := call(cctx, i)
				cancel()
				if err != nil {
					errs[w]++
					continue
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	var nerr int
	for w := range workers {
		all = append(all, lat[w]...)
		nerr += errs[w]
	}
	return APIEngine{
		Requests: len(all) + nerr,
		Errors:   nerr,
		RPS:      float64(len(all)) / elapsed.Seconds(),
		Latency:  Summarize(all),
	}
}

// memory: RSS of the daemon alone and of its whole process set, idle; then,
// one engine at a time (so one's containers don't squeeze the other), with
// M containers running `sleep`.
func (b *bench) memory(ctx context.Context) (*MemoryResult, error) {
	m := b.cfg.Containers
	res := &MemoryResult{Containers: m, Engines: map[string]MemoryEngine{}}
	for _, e := range b.engines {
		pid, err := b.daemonPID(e)
		if err != nil {
			return nil, fmt.Errorf("daemon pid of %s: %w", e.role, err)
		}
		idle, err := measureTree(pid, nil)
		if err != nil {
			return nil, fmt.Errorf("%s idle: %w", e.role, err)
		}
		res.Engines[e.role] = MemoryEngine{
			DaemonPID: pid, IdleDaemonRSS: idle.DaemonRSS, IdleTreeRSS: idle.RSS,
			IdleTreePSS: idle.PSS, IdleProcesses: idle.Procs,
		}
	}
	for _, e := range b.engines {
		cctx, cancel := context.WithTimeout(ctx, 2*opTimeout)
		spec := onNetwork(containerSpec(b.image, b.runID, "sleep", "3600"), b.cfg.MemoryNetwork)
		ids, err := e.createMany(cctx, m, 8, spec)
		if err == nil {
			err = e.startMany(cctx, ids, 8)
		}
		cancel()
		if err != nil {
			_ = e.removeContainers(context.WithoutCancel(ctx), ids)
			return res, err
		}
		select {
		case <-time.After(b.cfg.Settle):
		case <-ctx.Done():
		}
		running, err := measureTree(b.pids[e.role], ids)
		if rmErr := e.removeContainers(context.WithoutCancel(ctx), ids); err == nil {
			err = rmErr
		}
		if err != nil {
			return res, fmt.Errorf("%s running: %w", e.role, err)
		}
		me := res.Engines[e.role]
		me.RunningDaemonRSS, me.RunningTreeRSS, me.RunningTreePSS, me.RunningProcesses = running.DaemonRSS, running.RSS, running.PSS, running.Procs
		me.PerContainerRSS = float64(running.RSS-me.IdleTreeRSS) / float64(m)
		me.PerContainerPSS = float64(running.PSS-me.IdleTreePSS) / float64(m)
		res.Engines[e.role] = me
	}
	return res, nil
}

// pull: for every repeat a fresh image of random layers is pushed, then
// pulled by each engine in turn and removed again.
func (b *bench) pull(ctx context.Context) (*PullResult, error) {
	res := &PullResult{Layers: b.cfg.PullLayers, Repeat: b.cfg.PullRepeat, Engines: map[string]PullEngine{}}
	times := map[string][]time.Duration{}
	for r := range b.cfg.PullRepeat {
		seed := uint64(time.Now().UnixNano()) + uint64(r)
		pushed, size, err := testenv.PushRandomImage(b.registry, "arca-bench-pull", b.cfg.PullLayers, b.cfg.PullLayerMB<<20, seed)
		if err != nil {
			return nil, fmt.Errorf("push test image: %w", err)
		}
		res.Bytes = size
		for _, e := range b.engines {
			cctx, cancel := context.WithTimeout(ctx, opTimeout)
			t := time.Now()
			err := e.pullImage(cctx, pushed.Ref)
			d := time.Since(t)
			if err == nil {
				err = e.removeImage(cctx, pushed.Ref)
			}
			cancel()
			if err != nil {
				return nil, err
			}
			times[e.role] = append(times[e.role], d)
		}
	}
	for role, ts := range times {
		s := Summarize(ts)
		res.Engines[role] = PullEngine{Time: s, MBps: float64(res.Bytes) / 1e6 / (s.P50 / 1000)}
	}
	return res, nil
}
