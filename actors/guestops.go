package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
)

type pauseDone struct {
	run     int
	pause   bool
	err     error
	replyTo *actor.PID
}

// pause freezes (or thaws) the main process: in running or paused as the
// table lets through, and in stopping, where the freezer is the record's
// status (a stop thaws; a pause may freeze again until the exit).
func (a *containerActor) pause(ctx actor.Context, pause bool) {
	rt := a.rt
	w := a.whoOf(ctx.Message())
	paused := rt.rec.State.Status == container.StatePaused
	switch {
	case rt.client == nil:
		ctx.Respond(errNotRunning.words(w))
		return
	case pause && paused:
		ctx.Respond(errAlreadyPaused.words(w))
		return
	case !pause && !paused:
		ctx.Respond(errNotPaused.words(w))
		return
	}
	c, run, replyTo := rt.client, rt.run, ctx.Sender()
	goSafe(ctx.ActorSystem(), ctx.Self(), func() any {
		sctx, cancel := deadline(30 * time.Second)
		defer cancel()
		var err error
		if pause {
			err = c.Pause(sctx)
		} else {
			err = c.Resume(sctx)
		}
		return &pauseDone{run: run, pause: pause, err: err, replyTo: replyTo}
	})
}

func (a *containerActor) onPauseDone(ctx actor.Context, m *pauseDone) {
	rt := a.rt
	if m.err != nil {
		ctx.Send(m.replyTo, messages.Internal("%s: %v", map[bool]string{true: "pause", false: "unpause"}[m.pause], m.err))
		return
	}
	if m.run != rt.run || rt.proc == nil {
		ctx.Send(m.replyTo, errNotRunning.words(who{id: rt.rec.ID}))
		return
	}
	action, what := events.ActionUnPause, "unpause"
	rt.rec.State.Status = container.StateRunning
	if m.pause {
		action, what = events.ActionPause, "pause"
		rt.rec.State.Status = container.StatePaused
	}
	switch {
	case rt.phase == phaseRunning && m.pause:
		a.to(phasePaused)
	case rt.phase == phasePaused && !m.pause:
		a.to(phaseRunning)
	}
	// The guest is as asked whether or not the record says so; the
	// requester hears if it does not.
	a.persistThenReply(ctx, m.replyTo, what, nil, func() any {
		a.event(ctx, action, nil)
		return &messages.Accepted{}
	})
}

func (a *containerActor) top(ctx actor.Context, m *messages.TopContainer) {
	rt := a.rt
	if rt.client == nil {
		ctx.Respond(errNotRunning.words(a.whoOf(m)))
		return
	}
	c := rt.client
	respondLater(ctx, func() any {
		sctx, cancel := deadline(10 * time.Second)
		defer cancel()
		res, err := c.Top(sctx, m.PsArgs)
		if err != nil {
			return guestError(err)
		}
		return &messages.TopReply{Top: container.TopResponse{Titles: res.Titles, Processes: res.Processes}}
	})
}

func (a *containerActor) stats(ctx actor.Context) {
	rt := a.rt
	reply := &messages.StatsReply{ID: rt.rec.ID, Name: "/" + rt.rec.Name}
	if rt.client == nil {
		ctx.Respond(reply)
		return
	}
	c := rt.client
	respondLater(ctx, func() any {
		sctx, cancel := deadline(10 * time.Second)
		defer cancel()
		st, err := c.Stats(sctx)
		if err != nil {
			return guestError(err)
		}
		reply.Running, reply.Stats = true, st
		return reply
	})
}

// guestError maps the agent's error kinds onto the API's.
func guestError(err error) error {
	switch wire.KindOf(err) {
	case wire.KindNotFound:
		return messages.NotFound("%v", err)
	case wire.KindInvalid:
		return messages.InvalidParameter("%v", err)
	case wire.KindConflict:
		return messages.Conflict("%v", err)
	case wire.KindPermission:
		return messages.Forbidden("%v", err)
	}
	return messages.Internal("%v", err)
}
