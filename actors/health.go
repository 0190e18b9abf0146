package actors

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/arcavm/arca/guest/wire"
)

// Health checks run inside the guest as execs, scheduled by the container
// actor, with dockerd's defaults.
const (
	healthDefaultInterval      = 30 * time.Second
	healthDefaultTimeout       = 30 * time.Second
	healthDefaultStartInterval = 5 * time.Second
	healthDefaultRetries       = 3
	healthMaxLog               = 5
	healthMaxOutput            = 4096
)

type (
	healthProbe  struct{ run int }
	healthResult struct {
		run    int
		result container.HealthcheckResult
	}
)

// healthArgs turns a HEALTHCHECK test into argv; nil means no check.
func healthArgs(h *container.HealthConfig) []string {
	if h == nil || len(h.Test) == 0 {
		return nil
	}
	switch h.Test[0] {
	case "NONE":
		return nil
	case "CMD":
		return h.Test[1:]
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", joinArgs(h.Test[1:])}
	}
	return h.Test // a bare command, as older clients send
}

func joinArgs(a []string) string {
	var b bytes.Buffer
	for i, s := range a {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// startHealth begins checking a container that just started.
func (a *containerActor) startHealth(ctx actor.Context) {
	rt := a.rt
	if healthArgs(rt.rec.Config.Healthcheck) == nil {
		rt.health = nil
		return
	}
	rt.health = &container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
	a.scheduleProbe(ctx)
}

// scheduleProbe arms the next probe: StartInterval while in the start
// period, Interval after.
func (a *containerActor) scheduleProbe(ctx actor.Context) {
	rt := a.rt
	h := rt.rec.Config.Healthcheck
	next := orDefault(h.Interval, healthDefaultInterval)
	if rt.health.Status == container.Starting && time.Since(rt.rec.State.StartedAt) < h.StartPeriod {
		next = orDefault(h.StartInterval, healthDefaultStartInterval)
	}
	self, run, sys := ctx.Self(), rt.run, ctx.ActorSystem()
	rt.healthTimer = time.AfterFunc(next, func() { sys.Root.Send(self, &healthProbe{run: run}) })
}

func (a *containerActor) stopHealth() {
	if a.rt.healthTimer != nil {
		a.rt.healthTimer.Stop()
		a.rt.healthTimer = nil
	}
}

func (a *containerActor) onHealthProbe(ctx actor.Context, m *healthProbe) {
	rt := a.rt
	if m.run != rt.run || rt.client == nil || rt.health == nil || rt.rec.State.Status != container.StateRunning {
		return
	}
	h := rt.rec.Config.Healthcheck
	rt.healthSeq++
	spec := wire.ProcessSpec{
		ID:   fmt.Sprintf("health-%d", rt.healthSeq),
		Args: healthArgs(h),
		Env:  processEnv(rt.rec.Config),
		Cwd:  firstNonEmpty(rt.rec.Config.WorkingDir, "/"),
		User: rt.rec.Config.User,
	}
	c, run, timeout := rt.client, rt.run, orDefault(h.Timeout, healthDefaultTimeout)
	goSafe(ctx.ActorSystem(), ctx.Self(), func() any {
		return &healthResult{run: run, result: runProbe(c, spec, timeout)}
	})
}

// runProbe runs one check and keeps the first 4 KiB of its output.
func runProbe(c *wire.Client, spec wire.ProcessSpec, timeout time.Duration) container.HealthcheckResult {
	res := container.HealthcheckResult{Start: time.Now()}
	sctx, cancel := deadline(timeout)
	defer cancel()
	p, err := c.Start(sctx, spec)
	if err != nil {
		res.End, res.ExitCode, res.Output = time.Now(), -1, err.Error()
		return res
	}
	var out limitedBuffer
	var wg sync.WaitGroup
	for _, r := range []io.Reader{p.Stdout, p.Stderr} {
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(&out, r) }()
	}
	done := make(chan wire.ExitStatus, 1)
	go func() {
		wg.Wait()
		st, _ := p.Wait()
		done <- st
	}()
	select {
	case st := <-done:
		res.ExitCode = st.Code
		res.Output = out.String()
	case <-time.After(timeout):
		kctx, kcancel := deadline(5 * time.Second)
		c.Signal(kctx, spec.ID, 9)
		kcancel()
		p.Close()
		res.ExitCode = -1
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
	}
	res.End = time.Now()
	return res
}

func (a *containerActor) onHealthResult(ctx actor.Context, m *healthResult) {
	rt := a.rt
	if m.run != rt.run || rt.health == nil {
		return
	}
	h := rt.rec.Config.Healthcheck
	r := m.result
	rt.health.Log = append(rt.health.Log, &r)
	if len(rt.health.Log) > healthMaxLog {
		rt.health.Log = rt.health.Log[len(rt.health.Log)-healthMaxLog:]
	}
	before := rt.health.Status
	inStartPeriod := time.Since(rt.rec.State.StartedAt) < h.StartPeriod
	if r.ExitCode == 0 {
		rt.health.Status = container.Healthy
		rt.health.FailingStreak = 0
	} else if !inStartPeriod {
		rt.health.FailingStreak++
		retries := h.Retries
		if retries <= 0 {
			retries = healthDefaultRetries
		}
		if rt.health.FailingStreak >= retries {
			rt.health.Status = container.Unhealthy
		}
	}
	if rt.health.Status != before {
		a.event(ctx, events.Action(string(events.ActionHealthStatus)+": "+string(rt.health.Status)), nil)
		a.publish(ctx)
	}
	a.scheduleProbe(ctx)
}

// limitedBuffer keeps the first healthMaxOutput bytes and discards the
// rest, so a chatty check cannot grow the daemon.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := healthMaxOutput - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
