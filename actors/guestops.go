package actors

import (
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/arcavm/arca/guest/vm"
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

// fsBoot is the outcome of getting an agent for file access; ready is
// closed once client or err is set.
type fsBoot struct {
	ready  chan struct{}
	client *wire.Client
	err    error
}

// fsLease is one holder's access to a container's files through an agent.
// For a stopped container the actor boots a machine without a main
// process; copies that overlap share it, and the last release powers it
// off.
type fsLease struct {
	boot    *fsBoot
	release func() // nil for a running container's lease
	once    sync.Once
}

func (l *fsLease) Wait() (*wire.Client, error) {
	<-l.boot.ready
	return l.boot.client, l.boot.err
}

func (l *fsLease) Release() {
	l.once.Do(func() {
		if l.release != nil {
			l.release()
		}
	})
}

// fsMachine is the machine booted for file access to a stopped container.
type fsMachine struct {
	boot    *fsBoot
	machine vm.Machine
	refs    int
	off     chan struct{} // closed once this machine is powered off
}

type (
	fsMachineUp struct {
		machine vm.Machine
		client  *wire.Client
		err     error
	}
	fsRelease struct{}
)

func (a *containerActor) acquireFS(ctx actor.Context) {
	rt := a.rt
	reply := &messages.AcquireFilesystemReply{ID: rt.rec.ID, User: rt.rec.Config.User}
	if rt.client != nil {
		boot := &fsBoot{ready: make(chan struct{}), client: rt.client}
		close(boot.ready)
		reply.Lease = &fsLease{boot: boot}
		ctx.Respond(reply)
		return
	}
	self, sys := ctx.Self(), ctx.ActorSystem()
	if rt.fs == nil {
		rt.fs = &fsMachine{boot: &fsBoot{ready: make(chan struct{})}, off: make(chan struct{})}
		dir := a.env.containerDir(rt.rec.ID)
		spec := vm.MachineSpec{
			ID: rt.rec.ID, StateDir: filepath.Join(dir, "machine"), Layers: rt.layers,
			UpperDir: filepath.Join(dir, "upper"), WorkDir: filepath.Join(dir, "work"), Hostname: rt.rec.Config.Hostname,
		}
		setup := wire.SetupRequest{Hostname: rt.rec.Config.Hostname, Hosts: hostsFileFor(rt.rec.Config.Hostname, netip.Addr{}, rt.rec.HostConfig.ExtraHosts, netip.Addr{}), ResolvConf: resolvConf()}
		driver, down := a.env.Driver, rt.down
		goSafe(sys, self, func() any {
			afterDown(down)
			b, err := bootSequence(driver, spec, setup, nil, nil)
			if err != nil {
				return &fsMachineUp{err: err}
			}
			return &fsMachineUp{machine: b.machine, client: b.client}
		})
	}
	rt.fs.refs++
	reply.Lease = &fsLease{boot: rt.fs.boot, release: func() { sys.Root.Send(self, &fsRelease{}) }}
	ctx.Respond(reply)
}

func (a *containerActor) onFSMachineUp(ctx actor.Context, m *fsMachineUp) {
	fs := a.rt.fs
	if fs == nil {
		// Every holder released before it came up: power it off now.
		orphan := a.rt.fsOrphan
		a.rt.fsOrphan = nil
		goSafe(ctx.ActorSystem(), nil, func() any {
			if m.machine != nil {
				powerOff(m.machine, m.client)
			}
			if orphan != nil {
				close(orphan.off)
			}
			return nil
		})
		return
	}
	fs.machine = m.machine
	fs.boot.client, fs.boot.err = m.client, m.err
	close(fs.boot.ready)
	if m.err != nil {
		a.rt.fs = nil
		close(fs.off) // the failed boot left no machine
	}
}

func (a *containerActor) onFSRelease(ctx actor.Context) {
	fs := a.rt.fs
	if fs == nil {
		return
	}
	fs.refs--
	if fs.refs > 0 {
		return
	}
	a.rt.fs = nil
	a.rt.down = fs.off // the next boot waits for this machine to be off
	if fs.machine == nil {
		a.rt.fsOrphan = fs // still booting: onFSMachineUp powers it off
		return
	}
	goSafe(ctx.ActorSystem(), nil, func() any {
		powerOff(fs.machine, fs.boot.client)
		close(fs.off)
		return nil
	})
}
