package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/messages"
)

// Restart policies are decided here, by the container's own supervision
// logic, with dockerd's delays: 100 ms doubling up to a minute, back to
// 100 ms after a run of 10 s or more.
const (
	restartDelayMin   = 100 * time.Millisecond
	restartDelayMax   = time.Minute
	restartResetAfter = 10 * time.Second
)

type restartNow struct{ run int }

// validateRestartPolicy checks a policy at create, with dockerd's words.
func validateRestartPolicy(hc *container.HostConfig) error {
	p := hc.RestartPolicy
	switch p.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if p.MaximumRetryCount != 0 {
			return messages.InvalidParameter("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if p.MaximumRetryCount < 0 {
			return messages.InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return messages.InvalidParameter("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", p.Name)
	}
	if hc.AutoRemove && p.Name != "" && p.Name != container.RestartPolicyDisabled {
		return messages.InvalidParameter("conflicting options: cannot use --rm with --restart")
	}
	return nil
}

// wantsRestart says whether the policy restarts the container after an
// exit with code; stopped by the user or being removed, it never does.
func (a *containerActor) wantsRestart(code int) bool {
	rt := a.rt
	if rt.rec.HostConfig == nil || rt.phase == phaseRemoving || rt.rec.StoppedByUser || len(rt.restartWaiters) > 0 {
		return false
	}
	p := rt.rec.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return code != 0 && (p.MaximumRetryCount == 0 || rt.rec.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// scheduleRestart puts the container in "restarting" and starts it again
// after the backoff delay.
func (a *containerActor) scheduleRestart(ctx actor.Context) {
	rt := a.rt
	ran := rt.rec.State.FinishedAt.Sub(rt.rec.State.StartedAt)
	switch {
	case ran >= restartResetAfter || rt.restartDelay == 0:
		rt.restartDelay = restartDelayMin
		if a.env.firstRestartDelay > 0 {
			rt.restartDelay = a.env.firstRestartDelay
		}
	default:
		rt.restartDelay *= 2
		if rt.restartDelay > restartDelayMax {
			rt.restartDelay = restartDelayMax
		}
	}
	rt.rec.State.Status = container.StateRestarting
	rt.rec.RestartCount++
	a.to(phaseRestarting)
	a.persistUnasked(ctx)
	self, run, sys := ctx.Self(), rt.run, ctx.ActorSystem()
	rt.restartTimer = time.AfterFunc(rt.restartDelay, func() { sys.Root.Send(self, &restartNow{run: run}) })
}

func (a *containerActor) cancelRestart() {
	if a.rt.restartTimer != nil {
		a.rt.restartTimer.Stop()
		a.rt.restartTimer = nil
	}
}

func (a *containerActor) onRestartNow(ctx actor.Context, m *restartNow) {
	rt := a.rt
	if m.run != rt.run || rt.phase != phaseRestarting {
		return
	}
	rt.restartTimer = nil
	a.beginStart(ctx, nil)
}

// restart is docker restart: a container that runs is stopped and
// started at its exit (one stopping already, at that exit); one that
// does not is started now, ending a policy's wait.
func (a *containerActor) restart(ctx actor.Context, m *messages.RestartContainer) {
	rt := a.rt
	switch rt.phase {
	case phaseCreated, phaseExited, phaseRestarting:
		a.cancelRestart()
		a.beginStart(ctx, ctx.Sender())
	default:
		if a.stop(ctx, &messages.StopContainer{Ref: m.Ref, Signal: m.Signal, Timeout: m.Timeout}, false) {
			rt.restartWaiters = append(rt.restartWaiters, ctx.Sender())
		}
	}
}

func (a *containerActor) rename(ctx actor.Context, m *messages.RenameContainer) {
	old := a.rt.rec.Name
	a.rt.rec.Name = m.Name
	a.persistThenReply(ctx, ctx.Sender(), "rename", func() { a.rt.rec.Name = old }, func() any {
		a.event(ctx, "rename", map[string]string{"oldName": "/" + old})
		return &messages.Accepted{}
	})
}
