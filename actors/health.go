package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// runProbe runs one check in the guest; the agent's RunCapture keeps the
// first 4 KiB of its output and kills it at the timeout.
func runProbe(c *wire.Client, spec wire.ProcessSpec, timeout time.Duration) container.HealthcheckResult {
	res := container.HealthcheckResult{Start: time.Now()}
	sctx, cancel := deadline(timeout + 10*time.Second)
	defer cancel()
	code, out, err := c.RunCapture(sctx, spec, timeout)
	res.End, res.ExitCode, res.Output = time.Now(), code, out
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		res.ExitCode, res.Output = -1, fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
	case err != nil:
		res.ExitCode, res.Output = -1, err.Error()
	}
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
