package actors

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/arcavm/arca/actors/security"
	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/containerlog"
)

// containerRuntime is the part of a container that must outlive a crash of
// its actor: the record as last persisted, the machine and agent session of
// the current run, and the streams. The actor's producer captures it, so a
// restarted actor carries on with the same machine.
type containerRuntime struct {
	lastStart *messages.StartTimings // nil until a start succeeds
	rec       *persistence.ContainerRecord
	layers    []string // unpacked layer dirs, base first

	hub   *outputHub
	stdin *stdinGate

	run     int // incremented per start; stale messages carry older values
	machine vm.Machine
	client  *wire.Client
	proc    *wire.Process
	net     *netRun  // this run's networking; nil without networks
	ports   *portRun // this run's published ports; nil without any

	phase         phase             // see lifecycle.go
	deferred      []deferredRequest // requests waiting for the phase to end
	startWaiters  []*actor.PID
	stopWaiters   []*actor.PID // docker stop: answered at the exit
	killWaiters   []*actor.PID // docker kill (SIGKILL): answered at the exit
	waiters       []waiter
	removeReplyTo *actor.PID // rm -f: answered once removed after the exit
	removeVolumes bool
	killTimer     *time.Timer

	execs    map[string]*execState
	fs       *fsMachine // a machine booted to reach a stopped container's files
	fsOrphan *fsMachine // released while still booting
	// down is closed once the last machine is powered off: the next boot
	// waits for it, as two machines must never share the container's disk.
	down chan struct{}

	health      *container.Health // nil without a health check
	healthTimer *time.Timer
	healthSeq   int

	restartDelay   time.Duration
	restartTimer   *time.Timer
	restartWaiters []*actor.PID // docker restart: start again after the exit
}

type waiter struct {
	cond container.WaitCondition
	ch   chan<- messages.WaitReply
}

// containerActor is one container: its lifecycle is a sequence of messages,
// and every slow step (boot, signal, shutdown) runs in a goroutine that
// reports back with a message.
type containerActor struct {
	env *Env
	rt  *containerRuntime
}

func (a *containerActor) Kind() string  { return "container" }
func (a *containerActor) State() string { return a.rt.phase.String() }

// LastStart is shown in the actor tree: where a start's time went.
func (a *containerActor) LastStart() *messages.StartTimings {
	if a.rt == nil || a.rt.lastStart == nil {
		return nil
	}
	t := *a.rt.lastStart
	return &t
}

// running says whether the main process of this run is up (whatever the
// phase: running, paused, stopping, or removing after rm -f).
func (a *containerActor) running() bool { return a.rt.proc != nil }

// Messages the actor sends itself.
type (
	machineUp struct {
		run     int
		machine vm.Machine
		client  *wire.Client
		proc    *wire.Process
		timings messages.StartTimings
		joins   map[string]*networkJoined // by network ID
		netcfg  *wire.NetworkConfig       // what the start gave the guest
		err     error
	}
	processExited struct {
		run    int
		status wire.ExitStatus
		err    error
	}
	stopTimeout struct{ run int }
	// containerSnapshot tells the supervisor the container's current record
	// (a copy: the supervisor may keep it).
	containerSnapshot struct {
		rec      persistence.ContainerRecord
		health   *container.HealthSummary
		ports    []container.PortSummary
		networks map[string]*network.EndpointSettings
	}
	// containerRemoved tells the supervisor to forget the container and to
	// answer replyTo.
	containerRemoved struct {
		id      string
		replyTo *actor.PID
	}
)

// Receive runs every message through receive; once the phase has changed
// (or a copy released the files), the requests kept for that are decided
// again.
func (a *containerActor) Receive(ctx actor.Context) {
	before, held := a.rt.phase, a.rt.fs != nil
	a.receive(ctx)
	if len(a.rt.deferred) > 0 && (a.rt.phase != before || held && a.rt.fs == nil) {
		a.replayDeferred(ctx)
	}
}

// receive: a request is first decided by the lifecycle table (admit);
// only what it lets through reaches a handler.
func (a *containerActor) receive(ctx actor.Context) {
	if !a.admit(ctx) {
		return
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.publish(ctx)
	case *messages.StartContainer:
		a.start(ctx)
	case *machineUp:
		a.onMachineUp(ctx, m)
	case *processExited:
		a.onExit(ctx, m)
	case *messages.StopContainer:
		a.stop(ctx, m, true)
	case *messages.RestartContainer:
		a.restart(ctx, m)
	case *restartNow:
		a.onRestartNow(ctx, m)
	case *healthProbe:
		a.onHealthProbe(ctx, m)
	case *healthResult:
		a.onHealthResult(ctx, m)
	case *messages.RenameContainer:
		a.rename(ctx, m)
	case *stopTimeout:
		if m.run == a.rt.run && a.running() {
			a.signal(ctx, syscall.SIGKILL, "stop")
		}
	case *messages.KillContainer:
		a.kill(ctx, m)
	case *messages.RemoveContainer:
		a.remove(ctx, m)
	case *messages.WaitContainerStream:
		a.wait(m.Condition, m.Result)
		ctx.Respond(&messages.Accepted{})
	case *messages.InspectContainer:
		if !m.Size {
			ctx.Respond(&messages.InspectContainerReply{Container: a.inspect()})
			break
		}
		sender := ctx.Sender()
		a.withSize(ctx, func(s *sizeMeasured) {
			in := a.inspect()
			in.SizeRw, in.SizeRootFs = &s.rw, &s.rootfs
			ctx.Send(sender, &messages.InspectContainerReply{Container: in})
		})
	case *measureSize:
		sender := ctx.Sender()
		a.withSize(ctx, func(s *sizeMeasured) { ctx.Send(sender, s) })
	case *sizeRecorded:
		a.recordSize(ctx, m)
	case *messages.AttachContainer:
		a.attach(ctx, m)
	case *messages.ContainerLogs:
		a.logs(ctx, m)
	case *messages.ResizeContainer:
		a.resize(ctx, m)
	case *messages.PauseContainer:
		a.pause(ctx, true)
	case *messages.UnpauseContainer:
		a.pause(ctx, false)
	case *pauseDone:
		a.onPauseDone(ctx, m)
	case *messages.TopContainer:
		a.top(ctx, m)
	case *messages.StatsContainer:
		a.stats(ctx)
	case *messages.StatPath:
		a.statPath(ctx, m)
	case *messages.GetArchive:
		a.getArchive(ctx, m)
	case *messages.PutArchive:
		a.putArchive(ctx, m)
	case *messages.ContainerChanges:
		a.changes(ctx, m)
	case *messages.ExportContainer:
		a.export(ctx, m)
	case *fsMachineUp:
		a.onFSMachineUp(ctx, m)
	case *fsRelease:
		a.onFSRelease(ctx)
	case *messages.CreateExec:
		a.createExec(ctx, m)
	case *messages.StartExec:
		a.startExec(ctx, m)
	case *execStarted:
		a.onExecStarted(ctx, m)
	case *execExited:
		a.onExecExited(ctx, m)
	case *messages.InspectExec:
		a.inspectExec(ctx, m)
	case *messages.ResizeExec:
		a.resizeExec(ctx, m)
	case *networkMembers:
		a.onNetworkMembers(m)
	case *messages.ConnectNetwork:
		a.connect(ctx, m)
	case *messages.DisconnectNetwork:
		a.disconnect(ctx, m)
	case *netJoinDone:
		a.onNetJoinDone(ctx, m)
	case *actor.Stopping:
		a.onStopping(ctx)
	case *goroutinePanic:
		panic(m.reason) // let the supervisor decide, as for any failure
	}
}

// thawForSignal: a paused container is unpaused before a signal, as
// dockerd does for stop and kill, or a caught signal would wait for the
// thaw forever. It returns the step for the signalling goroutine; if the
// thawed state cannot be recorded, the requester has heard why and ok is
// false.
func (a *containerActor) thawForSignal(ctx actor.Context, what string) (thaw func(context.Context, *wire.Client), ok bool) {
	rt := a.rt
	if rt.rec.State.Status != container.StatePaused {
		return func(context.Context, *wire.Client) {}, true
	}
	rt.rec.State.Status = container.StateRunning
	if to := ctx.Sender(); to == nil {
		a.persistUnasked(ctx) // a stop's timeout: the SIGKILL goes anyway
	} else if !a.persistOrFail(ctx, to, what, func() { rt.rec.State.Status = container.StatePaused }) {
		return nil, false
	}
	if rt.phase == phasePaused {
		a.to(phaseRunning)
	}
	a.event(ctx, events.ActionUnPause, nil)
	return func(sctx context.Context, c *wire.Client) { _ = c.Resume(sctx) }, true
}

// onStopping runs when the tree is stopped (daemon shutdown): a machine
// does not outlive its actor, and the record says so. Requests kept for
// a later phase will not see it.
func (a *containerActor) onStopping(ctx actor.Context) {
	rt := a.rt
	shutdown := messages.Unavailable("the daemon is shutting down")
	a.answerDeferred(ctx, func(any) error { return shutdown })
	for _, w := range append(append(rt.startWaiters, rt.restartWaiters...), rt.removeReplyTo) {
		if w != nil {
			ctx.Send(w, shutdown)
		}
	}
	rt.startWaiters, rt.restartWaiters, rt.removeReplyTo = nil, nil, nil
	if rt.machine == nil {
		return
	}
	a.to(phaseExited)
	rt.machine.Kill()
	if rt.client != nil {
		rt.client.Close()
	}
	rt.machine, rt.client, rt.proc = nil, nil, nil
	rt.rec.State.Status = container.StateExited
	rt.rec.State.Pid = 0
	rt.rec.State.ExitCode = 137
	rt.rec.State.FinishedAt = time.Now().UTC()
	var stopped any = &messages.Accepted{}
	if err := a.env.Store.PutContainer(rt.rec); err != nil {
		a.env.Log.Error("persist container at shutdown", "id", rt.rec.ID, "err", err)
		stopped = messages.Internal("stop %s: %v", shortID(rt.rec.ID), err)
	}
	// It did stop: those waiting for that hear so, and streams end.
	for _, w := range append(rt.stopWaiters, rt.killWaiters...) {
		ctx.Send(w, stopped)
	}
	rt.stopWaiters, rt.killWaiters = nil, nil
	rt.hub.endRun()
	rt.stdin.shut()
	a.notifyWaiters(container.WaitConditionNextExit)
	a.notifyWaiters(container.WaitConditionNotRunning)
}

func (a *containerActor) resize(ctx actor.Context, m *messages.ResizeContainer) {
	c, proc := a.rt.client, a.rt.proc
	if c == nil || proc == nil {
		ctx.Respond(errNotRunning.words(a.whoOf(m)))
		return
	}
	respondLater(ctx, func() any {
		sctx, cancel := deadline(5 * time.Second)
		defer cancel()
		if err := c.Resize(sctx, proc.ID, m.Height, m.Width); err != nil {
			return messages.Internal("resize: %v", err)
		}
		return &messages.Accepted{}
	})
}

// event publishes a container event with Docker's attributes: the
// container's labels, its image and name, and extra.
func (a *containerActor) event(ctx actor.Context, action events.Action, extra map[string]string) {
	rec := a.rt.rec
	attrs := make(map[string]string, len(rec.Config.Labels)+len(extra)+2)
	for k, v := range rec.Config.Labels {
		attrs[k] = v
	}
	attrs["image"] = rec.Image
	attrs["name"] = rec.Name
	for k, v := range extra {
		attrs[k] = v
	}
	a.env.publish(ctx, messages.NewEvent(events.ContainerEventType, action, rec.ID, attrs))
}

// publish persists nothing; it tells the supervisor the current record so
// that lists are answered without asking every container.
func (a *containerActor) publish(ctx actor.Context) {
	rec := *a.rt.rec
	if a.rt.phase == phaseStarting && rec.State.Status != container.StateRunning {
		rec.State.Status = container.StateCreated
	}
	snap := &containerSnapshot{rec: rec, ports: portSummaries(a.portMap()), networks: a.networkSettings()}
	if h := a.rt.health; h != nil {
		snap.health = &container.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
	}
	ctx.Send(ctx.Parent(), snap)
}

// Durable before acknowledged: a change to the record is written (sync)
// before anyone hears it is done. persistThenReply (or, where the answer
// comes later, persistOrFail) is the one path for a change a requester
// is waiting on; persistUnasked for one nobody is (a policy's restart
// count, a measure); persist itself only where one outcome answers many
// (an exit answers every stop and kill waiting on it).

// persist writes the record and tells the supervisor.
func (a *containerActor) persist(ctx actor.Context) error {
	if err := a.env.Store.PutContainer(a.rt.rec); err != nil {
		a.env.Log.Error("persist container", "id", a.rt.rec.ID, "err", err)
		return err
	}
	a.publish(ctx)
	return nil
}

// persistOrFail writes the record. If the store fails, undo (if set) puts
// the record back as it was, to (if set) hears the error, and it returns
// false: the caller must then neither act on the change nor acknowledge
// it. On true, the caller answers.
func (a *containerActor) persistOrFail(ctx actor.Context, to *actor.PID, what string, undo func()) bool {
	err := a.persist(ctx)
	if err == nil {
		return true
	}
	if undo != nil {
		undo()
	}
	if to != nil {
		ctx.Send(to, messages.Internal("%s %s: %v", what, shortID(a.rt.rec.ID), err))
	}
	return false
}

// persistThenReply writes the record and then answers to with what done
// returns (done runs only once the write succeeded: the events and
// effects of the change); if the write fails, undo puts the record back
// and to hears the error instead.
func (a *containerActor) persistThenReply(ctx actor.Context, to *actor.PID, what string, undo func(), done func() any) {
	if !a.persistOrFail(ctx, to, what, undo) {
		return
	}
	reply := done()
	if to != nil {
		ctx.Send(to, reply)
	}
}

// persistUnasked writes a change no requester waits on; a failure is
// logged (by persist) and the actor goes on with what it knows.
func (a *containerActor) persistUnasked(ctx actor.Context) {
	if err := a.persist(ctx); err != nil {
		a.env.Log.Warn("container record not written; no request waited on it", "id", a.rt.rec.ID)
	}
}

// start is docker start of a created or exited container (the table
// answers the others), or a restart policy's at daemon start (no sender).
func (a *containerActor) start(ctx actor.Context) {
	rt := a.rt
	waiter := ctx.Sender()
	if waiter != nil {
		// A start by the user begins a new count of policy restarts.
		a.cancelRestart()
		rt.rec.RestartCount = 0
		rt.restartDelay = 0
	}
	a.beginStart(ctx, waiter)
}

// beginStart boots the machine; waiter (nil for a policy restart) hears
// how it went.
func (a *containerActor) beginStart(ctx actor.Context, waiter *actor.PID) {
	rt := a.rt
	a.to(phaseStarting)
	rt.run++
	if waiter != nil {
		rt.startWaiters = append(rt.startWaiters, waiter)
	}
	rec := rt.rec
	dir := a.env.containerDir(rec.ID)
	spec := vm.MachineSpec{
		ID:       rec.ID,
		StateDir: filepath.Join(dir, "machine"),
		Layers:   rt.layers,
		UpperDir: filepath.Join(dir, "upper"),
		WorkDir:  filepath.Join(dir, "work"),
		Hostname: rec.Config.Hostname,
	}
	if rec.HostConfig != nil {
		spec.MemoryBytes = rec.HostConfig.Memory
		spec.NanoCPUs = rec.HostConfig.NanoCPUs
		if pl := rec.HostConfig.PidsLimit; pl != nil && *pl > 0 {
			spec.PidsLimit = *pl
		}
	}
	setup := wire.SetupRequest{
		Hostname:   rec.Config.Hostname,
		Hosts:      hostsFileFor(rec.Config.Hostname, netip.Addr{}, rec.HostConfig.ExtraHosts, netip.Addr{}),
		ResolvConf: resolvConf(),
		Mounts:     a.env.wireMounts(rec.Mounts),
		Privileged: rec.HostConfig.Privileged,
	}
	hostLimits(&setup, rec.HostConfig)
	if len(setup.Mounts) > 0 && !hostPathMounts(a.env.Driver) {
		ctx.Send(ctx.Self(), &machineUp{run: rt.run, err: messages.NotImplemented("volumes, binds and tmpfs mounts are not supported by the %s driver yet", a.env.Driver.Name())})
		a.publish(ctx)
		return
	}
	proc, err := mainProcessSpec(rec, a.sharesHostKernel())
	if err != nil {
		ctx.Send(ctx.Self(), &machineUp{run: rt.run, err: messages.InvalidParameter("%v", err)})
		a.publish(ctx)
		return
	}
	run, down := rt.run, rt.down
	if rt.fs != nil {
		// A copy holds the files through a machine of its own: this one
		// boots once that is off, as two must never share the disk.
		down = rt.fs.off
	}
	driver := a.env.Driver
	sys, env, self := ctx.ActorSystem(), a.env, ctx.Self()
	ports, err := a.publishPorts()
	if err != nil {
		ctx.Send(self, &machineUp{run: run, err: err})
		a.publish(ctx)
		return
	}
	rt.ports = ports
	nets, err := a.planNetworks()
	if err != nil {
		ctx.Send(self, &machineUp{run: run, err: fmt.Errorf("plan networks: %w", err)})
		a.publish(ctx)
		return
	}
	rt.net = nets
	plan := nets.clone() // the goroutine's own copy: the actor keeps changing rt.net
	recCopy := *rec
	hostNet := hostNetworking(rec.HostConfig)
	if hostNet {
		// Until the uplink's gateway is known (or with no underlay).
		setup.Hosts = hostNetHosts(hostFile("/etc/hosts"), rec.HostConfig.ExtraHosts, netip.Addr{})
		setup.ResolvConf = hostNetResolvConf(resolvConf(), rec.HostConfig, netip.Addr{})
	}
	if plan != nil {
		spec.UnderlayMAC = plan.mac
		if !hostNet {
			setup.ResolvConf = embeddedResolvConf()
		}
	}
	var blockNames []string
	spec.Disks, blockNames = a.env.machineDisks(rec.Mounts)
	spec.Shares = sharesFor(setup.Mounts, spec.Disks)
	goSafe(sys, self, func() any {
		afterDown(down)
		if len(blockNames) > 0 {
			// A block volume's filesystem must be mounted by one
			// machine only: the volumes actor hands each to one
			// container at a time, until its machine is off.
			res, err := sys.Root.RequestFuture(env.volumes, &claimBlockVolumes{container: recCopy.ID, names: blockNames}, time.Minute).Result()
			if err == nil {
				err, _ = res.(error)
			}
			if err != nil {
				return &machineUp{run: run, err: err}
			}
		}
		releaseBlock := func() {
			if len(blockNames) > 0 {
				sys.Root.Send(env.volumes, &releaseBlockVolumes{container: recCopy.ID})
			}
		}
		joins, err := joinAll(sys, env, self, &recCopy, plan)
		if err != nil {
			releaseBlock()
			return &machineUp{run: run, err: err}
		}
		var netcfg *wire.NetworkConfig
		if plan != nil {
			plan.applyJoins(joins)
			cfg := plan.config(recCopy.ID)
			netcfg = &cfg
			if plan.uplink {
				setup.Hosts = hostNetHosts(hostFile("/etc/hosts"), recCopy.HostConfig.ExtraHosts, plan.hostGateway())
				setup.ResolvConf = hostNetResolvConf(resolvConf(), recCopy.HostConfig, plan.hostGateway())
			} else {
				setup.Hosts = hostsFileFor(recCopy.Config.Hostname, plan.primaryAddress(joins), recCopy.HostConfig.ExtraHosts, plan.hostGateway())
			}
		}
		b, err := bootAndStart(driver, spec, setup, netcfg, proc)
		if err != nil {
			leaveAll(sys, env, recCopy.ID, plan)
			releaseBlock() // Boot leaves nothing behind on error
			return &machineUp{run: run, joins: joins, err: err}
		}
		return &machineUp{run: run, machine: b.machine, client: b.client, proc: b.proc, timings: b.timings, joins: joins, netcfg: netcfg}
	})
	a.publish(ctx)
}

// bootAndStart is the start sequence, in order: boot the machine, open the
// agent session, mount the rootfs, start the main process. Any failure
// tears down what was made.
func bootAndStart(driver vm.Driver, spec vm.MachineSpec, setup wire.SetupRequest, netcfg *wire.NetworkConfig, proc wire.ProcessSpec) (*booted, error) {
	return bootSequence(driver, spec, setup, netcfg, &proc)
}

// booted is what a start sequence made, and how long each step took.
type booted struct {
	machine vm.Machine
	client  *wire.Client
	proc    *wire.Process
	timings messages.StartTimings
}

// bootSequence runs the start sequence up to proc; nil proc stops after the
// rootfs is mounted (a machine for file access only). A non-nil netcfg
// configures the guest's networks and DNS before the process starts. The
// steps are named and timed, in order: boot (the driver has the machine
// running), agent (the agent answers on its stream), setup (rootfs and
// mounts), network, process.
func bootSequence(driver vm.Driver, spec vm.MachineSpec, setup wire.SetupRequest, netcfg *wire.NetworkConfig, proc *wire.ProcessSpec) (*booted, error) {
	ctx, cancel := deadline(2 * time.Minute)
	defer cancel()
	// The upper dir's root is the container's "/": its mode is what every
	// user in the container traverses, so it must be 0755 like an image's.
	for d, mode := range map[string]os.FileMode{spec.StateDir: 0o700, spec.UpperDir: 0o755, spec.WorkDir: 0o700} {
		if d == "" {
			continue // a machine over a RootDir has no writable layer
		}
		if err := os.MkdirAll(d, mode); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", d, err)
		}
		if err := os.Chmod(d, mode); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", d, err)
		}
	}
	b := &booted{}
	t0 := time.Now()
	last := t0
	step := func(d *float64) {
		now := time.Now()
		*d = ms(now.Sub(last))
		last = now
	}
	m, err := driver.Boot(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("boot: %w", err)
	}
	b.machine = m
	step(&b.timings.BootMs)
	fail := func(err error) (*booted, error) {
		if b.client != nil {
			b.client.Close()
		}
		m.Kill()
		return nil, err
	}
	if b.client, err = wire.NewClient(m.Conn()); err != nil {
		return fail(fmt.Errorf("agent session: %w", err))
	}
	if err := b.client.Ping(ctx); err != nil {
		return fail(err)
	}
	step(&b.timings.AgentMs)
	setup.Rootfs = m.Rootfs()
	if setup.Mounts, err = guestMountSources(m, setup.Mounts, spec.Disks); err != nil {
		return fail(err)
	}
	if err := b.client.Setup(ctx, setup); err != nil {
		return fail(fmt.Errorf("setup: %w", err))
	}
	step(&b.timings.SetupMs)
	if netcfg != nil {
		if err := b.client.ConfigureNetwork(ctx, *netcfg); err != nil {
			return fail(fmt.Errorf("configure network: %w", err))
		}
	}
	step(&b.timings.NetworkMs)
	if proc != nil {
		if b.proc, err = b.client.Start(ctx, *proc); err != nil {
			return fail(err)
		}
	}
	step(&b.timings.ProcessMs)
	b.timings.TotalMs = ms(time.Since(t0))
	return b, nil
}

// ms is d in milliseconds, to a tenth.
func ms(d time.Duration) float64 { return float64(d/(100*time.Microsecond)) / 10 }

// onMachineUp ends a start: the requests kept while it ran are decided
// again once it has (Receive).
func (a *containerActor) onMachineUp(ctx actor.Context, m *machineUp) {
	rt := a.rt
	if m.run != rt.run || rt.phase != phaseStarting {
		return
	}
	waiters := rt.startWaiters
	rt.startWaiters = nil
	if m.err != nil {
		a.releaseNetworks(ctx)
		a.closePorts()
		rt.rec.State.Error = m.err.Error()
		rt.rec.State.ExitCode = exitCodeForStartError(m.err)
		rt.rec.State.FinishedAt = time.Now().UTC()
		if rt.rec.State.Status == container.StateCreated || rt.rec.State.Status == "" {
			rt.rec.State.Status = container.StateCreated
			a.to(phaseCreated)
		} else {
			rt.rec.State.Status = container.StateExited
			a.to(phaseExited)
		}
		// The waiters hear of the failed start whether or not its record
		// could be written.
		a.persistUnasked(ctx)
		rt.hub.endRun()
		rt.stdin.shut()
		rt.stdin = newStdinGate()
		err := startError(m.err)
		for _, w := range waiters {
			ctx.Send(w, err)
		}
		// A failed start is an exit for those who wait on one.
		a.notifyWaiters(container.WaitConditionNextExit)
		a.notifyWaiters(container.WaitConditionNotRunning)
		switch {
		case len(waiters) == 0 && a.wantsRestart(rt.rec.State.ExitCode):
			// A policy restart that failed to start is retried, later.
			a.scheduleRestart(ctx)
		case rt.rec.HostConfig != nil && rt.rec.HostConfig.AutoRemove:
			a.finishRemove(ctx, nil)
		}
		return
	}
	rt.machine, rt.client, rt.proc = m.machine, m.client, m.proc
	timings := m.timings
	rt.lastStart = &timings
	a.startNetworkPusher(m.client, m.joins, m.netcfg)
	if rt.ports != nil {
		rt.ports.target.Store(m.client)
	}
	now := time.Now().UTC()
	rt.rec.State = persistence.ContainerState{
		Status:    container.StateRunning,
		Pid:       m.proc.Pid,
		StartedAt: now,
	}
	rt.rec.StoppedByUser = false
	a.to(phaseRunning)
	// The exit comes back as a message from here on, whatever follows.
	run, hub, proc := rt.run, rt.hub, m.proc
	goSafe(ctx.ActorSystem(), ctx.Self(), func() any {
		pumpOutput(hub, proc.Stdout, proc.Stderr)
		st, err := proc.Wait()
		return &processExited{run: run, status: st, err: err}
	})
	if err := a.persist(ctx); err != nil {
		// Not acknowledged, so not left running either.
		for _, w := range waiters {
			ctx.Send(w, messages.Internal("start %s: %v", rt.rec.ID, err))
		}
		rt.rec.StoppedByUser = true
		a.to(phaseStopping)
		a.signal(ctx, syscall.SIGKILL, "start")
		return
	}
	a.attachEvents(ctx, true)
	rt.stdin.connect(m.proc.Stdin)
	a.event(ctx, events.ActionStart, nil)
	a.startHealth(ctx)
	for _, w := range waiters {
		ctx.Send(w, &messages.Accepted{})
	}
}

// exitCodeForStartError follows docker run's convention: 127 for a
// command that is not there, 126 for one that cannot run.
func exitCodeForStartError(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 128
}

// startError words a failed start the way dockerd does, so that docker run
// picks the same exit code (it matches on these words).
func startError(err error) error {
	var me *messages.Error
	if errors.As(err, &me) {
		return me // already in Docker's words (a taken port, say)
	}
	msg := "failed to create task for container: " + err.Error()
	switch exitCodeForStartError(err) {
	case 127:
		return messages.InvalidParameter("%s: unknown", msg)
	case 126:
		return messages.Forbidden("%s: unknown", msg)
	}
	if wire.KindOf(err) == wire.KindInvalid {
		// The container's own settings (an unknown user, say): the
		// client's to fix, not the daemon's.
		return messages.InvalidParameter("%s", msg)
	}
	return messages.Internal("%s", msg)
}

func (a *containerActor) onExit(ctx actor.Context, m *processExited) {
	rt := a.rt
	if m.run != rt.run || rt.proc == nil {
		return
	}
	if rt.killTimer != nil {
		rt.killTimer.Stop()
		rt.killTimer = nil
	}
	removing := rt.phase == phaseRemoving
	if !removing {
		a.to(phaseExited)
	}
	st := &rt.rec.State
	st.Status = container.StateExited
	st.Pid = 0
	st.FinishedAt = time.Now().UTC()
	st.ExitCode = m.status.Code
	st.OOMKilled = m.status.OOMKilled
	if m.err != nil {
		// The agent went away before reporting: the machine died.
		st.ExitCode = 137
		st.Error = fmt.Sprintf("machine stopped: %v", m.err)
	}
	persisted := a.persist(ctx)
	rt.hub.endRun()
	rt.stdin.shut()
	rt.stdin = newStdinGate()
	a.endExecs()
	a.stopHealth()
	a.teardown(ctx)
	a.event(ctx, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(st.ExitCode)})
	if st.OOMKilled {
		a.event(ctx, events.ActionOOM, nil)
	}
	if len(rt.stopWaiters) > 0 {
		a.event(ctx, events.ActionStop, nil)
	}
	// A stop or kill is done when the stopped state is durable, not
	// before.
	var stopReply any = &messages.Accepted{}
	if persisted != nil {
		stopReply = messages.Internal("stop %s: %v", shortID(rt.rec.ID), persisted)
	}
	for _, w := range append(rt.stopWaiters, rt.killWaiters...) {
		ctx.Send(w, stopReply)
	}
	rt.stopWaiters, rt.killWaiters = nil, nil
	a.notifyWaiters(container.WaitConditionNextExit)
	a.notifyWaiters(container.WaitConditionNotRunning)
	if removing {
		// A docker restart that was waiting for this exit would now find
		// the container marked for removal, as on dockerd.
		for _, w := range rt.restartWaiters {
			ctx.Send(w, errRestartRemoving.words(who{id: rt.rec.ID, ref: rt.rec.Name}))
		}
		rt.restartWaiters = nil
		a.finishRemove(ctx, rt.removeReplyTo)
		return
	}
	if len(rt.restartWaiters) > 0 {
		waiters := rt.restartWaiters
		rt.restartWaiters = nil
		rt.rec.StoppedByUser = false
		a.beginStart(ctx, nil)
		rt.startWaiters = append(rt.startWaiters, waiters...)
		return
	}
	if a.wantsRestart(st.ExitCode) {
		a.scheduleRestart(ctx)
		return
	}
	if rt.rec.HostConfig != nil && rt.rec.HostConfig.AutoRemove {
		a.finishRemove(ctx, nil)
	}
}

// teardown powers the machine off in the background: the agent is asked to
// shut down, then the machine is killed whatever the agent did.
func (a *containerActor) teardown(ctx actor.Context) {
	rt := a.rt
	m, c := rt.machine, rt.client
	rt.machine, rt.client, rt.proc = nil, nil, nil
	a.releaseNetworks(ctx)
	a.closePorts()
	if m == nil {
		return
	}
	a.attachEvents(ctx, false)
	var release func()
	if _, names := a.env.machineDisks(rt.rec.Mounts); len(names) > 0 {
		sys, volumes, id := ctx.ActorSystem(), a.env.volumes, rt.rec.ID
		ctx.Send(volumes, &drainBlockVolumes{container: id})
		release = func() { sys.Root.Send(volumes, &releaseBlockVolumes{container: id}) }
	}
	rt.down = poweringOff(ctx, m, c, release)
}

// poweringOff powers a machine off in the background; the channel closes
// when it is down.
// The writable layer is measured first (for docker ps -s once the
// container has stopped) and the result sent to the actor.
// release, if set, runs once the machine is off (before the next boot
// may begin).
func poweringOff(ctx actor.Context, m vm.Machine, c *wire.Client, release func()) chan struct{} {
	down := make(chan struct{})
	sys, self := ctx.ActorSystem(), ctx.Self()
	goSafe(sys, nil, func() any {
		defer close(down)
		if c != nil {
			mctx, cancel := deadline(measureTimeout)
			if u, err := c.Usage(mctx); err == nil {
				sys.Root.Send(self, &sizeRecorded{bytes: u.WritableBytes})
			}
			cancel()
		}
		powerOff(m, c)
		if release != nil {
			release()
		}
		return nil
	})
	return down
}

// afterDown waits, in a boot goroutine, for the previous machine to be off.
func afterDown(down chan struct{}) {
	if down != nil {
		<-down
	}
}

// powerOff asks the agent to shut down and gives the machine a moment to
// stop by itself (a VM flushes its disks on the way), then kills it
// whatever it did.
func powerOff(m vm.Machine, c *wire.Client) {
	if c != nil {
		sctx, cancel := deadline(5 * time.Second)
		_ = c.Shutdown(sctx)
		cancel()
		select {
		case <-m.Done():
		case <-time.After(10 * time.Second):
		}
		c.Close()
	}
	m.Kill()
}

// signal sends sig to the main process from a goroutine; a SIGKILL that
// cannot reach the agent stops the machine itself (the exit comes back
// through the waiting goroutine). False: the requester has heard why not.
func (a *containerActor) signal(ctx actor.Context, sig syscall.Signal, what string) bool {
	c, proc, m := a.rt.client, a.rt.proc, a.rt.machine
	if c == nil || proc == nil {
		return true
	}
	thaw, ok := a.thawForSignal(ctx, what)
	if !ok {
		return false
	}
	goSafe(ctx.ActorSystem(), nil, func() any {
		sctx, cancel := deadline(5 * time.Second)
		defer cancel()
		thaw(sctx, c)
		if err := c.Signal(sctx, proc.ID, sig); err != nil && sig == syscall.SIGKILL {
			m.Kill()
		}
		return nil
	})
	return true
}

// stop is docker stop (reply) or the stop of docker restart: in running,
// paused or stopping, the stop signal now and SIGKILL at the timeout, the
// answer at the exit; in restarting, the end of the restarts; in
// removing, the answer at the exit. False: the stop is not under way and
// the requester has heard why.
func (a *containerActor) stop(ctx actor.Context, m *messages.StopContainer, reply bool) bool {
	rt := a.rt
	switch rt.phase {
	case phaseRestarting:
		a.endRestarts(ctx, "stop")
		return false
	case phaseRemoving:
		if reply {
			rt.stopWaiters = append(rt.stopWaiters, ctx.Sender())
		}
		return true
	}
	sig := syscall.SIGTERM
	if s := firstNonEmpty(m.Signal, rt.rec.Config.StopSignal); s != "" {
		parsed, err := parseSignal(s)
		if err != nil {
			ctx.Respond(err)
			return false
		}
		sig = parsed
	}
	timeout := 10 * time.Second
	if rt.rec.Config.StopTimeout != nil {
		timeout = time.Duration(*rt.rec.Config.StopTimeout) * time.Second
	}
	if m.Timeout != nil {
		timeout = *m.Timeout
	}
	stoppedBy := rt.rec.StoppedByUser
	rt.rec.StoppedByUser = true
	if !a.signal(ctx, sig, "stop") {
		rt.rec.StoppedByUser = stoppedBy
		return false
	}
	a.to(phaseStopping)
	if reply {
		rt.stopWaiters = append(rt.stopWaiters, ctx.Sender())
	}
	a.event(ctx, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	if timeout >= 0 && rt.killTimer == nil {
		self, run, sys := ctx.Self(), rt.run, ctx.ActorSystem()
		rt.killTimer = time.AfterFunc(timeout, func() { sys.Root.Send(self, &stopTimeout{run: run}) })
	}
	return true
}

// endRestarts is stop (or kill) of a container between policy restarts:
// the restarts end, and the requester hears so once that is durable
// (a lost StoppedByUser would bring an unless-stopped container back
// after a crash).
func (a *containerActor) endRestarts(ctx actor.Context, what string) {
	rt := a.rt
	before := *rt.rec
	rt.rec.State.Status = container.StateExited
	rt.rec.StoppedByUser = true
	a.persistThenReply(ctx, ctx.Sender(), what, func() { *rt.rec = before }, func() any {
		a.cancelRestart()
		a.to(phaseExited)
		a.notifyWaiters(container.WaitConditionNotRunning)
		return &messages.Accepted{}
	})
}

// endsRun says whether a signal sent by docker kill ends the run for the
// restart policy, as dockerd's ExitOnNext: SIGKILL, the container's stop
// signal, or any signal when it has none of its own.
func (a *containerActor) endsRun(sig syscall.Signal) bool {
	if sig == syscall.SIGKILL || a.rt.rec.Config.StopSignal == "" {
		return true
	}
	own, err := parseSignal(a.rt.rec.Config.StopSignal)
	return err == nil && own == sig
}

// kill is docker kill. SIGKILL is answered at the exit, as dockerd waits
// for it; another signal once the agent has delivered it. Between policy
// restarts there is nothing to signal: a signal that ends the run ends
// the restarts.
func (a *containerActor) kill(ctx actor.Context, m *messages.KillContainer) {
	rt := a.rt
	sig := syscall.SIGKILL
	if m.Signal != "" {
		parsed, err := parseSignal(m.Signal)
		if err != nil {
			ctx.Respond(err)
			return
		}
		sig = parsed
	}
	if rt.phase == phaseRestarting {
		if a.endsRun(sig) {
			a.endRestarts(ctx, "kill")
			return
		}
		ctx.Respond(&messages.Accepted{})
		return
	}
	if sig == syscall.SIGKILL && rt.phase == phaseRemoving {
		rt.killWaiters = append(rt.killWaiters, ctx.Sender()) // being killed already
		return
	}
	stoppedBy := rt.rec.StoppedByUser
	if a.endsRun(sig) {
		rt.rec.StoppedByUser = true
	}
	if sig == syscall.SIGKILL {
		if !a.signal(ctx, sig, "kill") {
			rt.rec.StoppedByUser = stoppedBy
			return
		}
		if rt.phase != phaseRemoving {
			a.to(phaseStopping)
		}
		rt.killWaiters = append(rt.killWaiters, ctx.Sender())
		a.event(ctx, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
		return
	}
	c, proc := rt.client, rt.proc
	thaw, ok := a.thawForSignal(ctx, "kill")
	if !ok {
		rt.rec.StoppedByUser = stoppedBy
		return
	}
	a.event(ctx, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	respondLater(ctx, func() any {
		sctx, cancel := deadline(5 * time.Second)
		defer cancel()
		thaw(sctx, c)
		if err := c.Signal(sctx, proc.ID, sig); err != nil && !errors.Is(err, wire.ErrSessionClosed) {
			return messages.Internal("kill %s: %v", shortID(rt.rec.ID), err)
		}
		// A session closed under the signal: the process ended at it
		// and its machine went before the agent's answer came.
		return &messages.Accepted{}
	})
}

// remove is docker rm: a container that is not running goes now; with
// force, a running one is killed and goes at its exit, and one between
// policy restarts goes now.
func (a *containerActor) remove(ctx actor.Context, m *messages.RemoveContainer) {
	rt := a.rt
	rt.removeVolumes = m.RemoveVolumes
	switch rt.phase {
	case phaseRunning, phasePaused, phaseStopping:
		rt.removeReplyTo = ctx.Sender()
		a.to(phaseRemoving)
		a.forceKill(ctx)
	default:
		a.finishRemove(ctx, ctx.Sender())
	}
}

// forceKill stops the machine outright, as rm -f does; the exit comes back
// as a processExited from the waiting goroutine.
func (a *containerActor) forceKill(ctx actor.Context) {
	m := a.rt.machine
	if m == nil {
		return
	}
	goSafe(ctx.ActorSystem(), nil, func() any {
		m.Kill()
		return nil
	})
}

// finishRemove deletes the container's record and files and hands over to
// the supervisor, which stops this actor and answers replyTo.
func (a *containerActor) finishRemove(ctx actor.Context, replyTo *actor.PID) {
	rt := a.rt
	a.cancelRestart()
	prior := rt.rec.State.Status
	rt.rec.State.Status = container.StateRemoving
	rt.removeReplyTo = nil
	a.to(phaseRemoving)
	if err := a.env.Store.DeleteContainer(rt.rec.ID); err != nil {
		if replyTo != nil {
			ctx.Send(replyTo, messages.Internal("remove %s: %v", rt.rec.ID, err))
		}
		if prior != container.StateCreated {
			prior = container.StateExited // a restarting one's restarts are over
		}
		rt.rec.State.Status = prior
		a.to(phaseOf(prior))
		return
	}
	rt.hub.close()
	rt.stdin.shut()
	a.event(ctx, events.ActionDestroy, nil)
	a.notifyWaiters(container.WaitConditionRemoved)
	a.notifyWaiters(container.WaitConditionNotRunning)
	a.notifyWaiters(container.WaitConditionNextExit)
	// What waited for a later phase finds the container gone, as it
	// would have on dockerd once its removal let go of the container.
	a.answerDeferred(ctx, func(m any) error { return messages.NotFound("No such container: %s", a.whoOf(m).ref) })
	dir := a.env.containerDir(rt.rec.ID)
	goSafe(ctx.ActorSystem(), nil, func() any {
		if err := os.RemoveAll(dir); err != nil {
			a.env.Log.Warn("remove container files", "dir", dir, "err", err)
		}
		return nil
	})
	ctx.Send(ctx.Parent(), &containerRemoved{id: rt.rec.ID, replyTo: replyTo})
	// rm -v and --rm take the anonymous volumes along, as dockerd does.
	autoRemove := rt.rec.HostConfig != nil && rt.rec.HostConfig.AutoRemove
	if _, anon := volumeNames(rt.rec.Mounts); len(anon) > 0 && (rt.removeVolumes || autoRemove) {
		ctx.Send(a.env.volumes, &dropVolumes{names: anon, without: rt.rec.ID})
	}
}

func (a *containerActor) wait(cond container.WaitCondition, ch chan<- messages.WaitReply) {
	if cond == "" {
		cond = container.WaitConditionNotRunning
	}
	if cond == container.WaitConditionNotRunning && (a.rt.phase == phaseCreated || a.rt.phase == phaseExited) {
		ch <- a.waitReply()
		return
	}
	a.rt.waiters = append(a.rt.waiters, waiter{cond: cond, ch: ch})
}

func (a *containerActor) waitReply() messages.WaitReply {
	return messages.WaitReply{ExitCode: int64(a.rt.rec.State.ExitCode), Error: a.rt.rec.State.Error}
}

// notifyWaiters answers every waiter on cond (channels are buffered).
func (a *containerActor) notifyWaiters(cond container.WaitCondition) {
	kept := a.rt.waiters[:0]
	for _, w := range a.rt.waiters {
		if w.cond == cond {
			w.ch <- a.waitReply()
			continue
		}
		kept = append(kept, w)
	}
	a.rt.waiters = kept
}

func (a *containerActor) attach(ctx actor.Context, m *messages.AttachContainer) {
	rt := a.rt
	reply := &messages.AttachReply{Tty: rt.rec.Config.Tty, StdinOnce: rt.rec.Config.StdinOnce, DetachKeys: m.DetachKeys, Stdout: m.Stdout, Stderr: m.Stderr}
	// logs=1 replays the log first and stream=1 goes on live from where it
	// ends; stream=0 is the log alone, after which the attach ends, as on
	// dockerd.
	out := m.Stdout || m.Stderr
	var sub *subscription
	var err error
	switch {
	case out && m.Logs && m.Stream:
		sub, reply.Log, err = rt.hub.subscribeAfterLog()
	case out && m.Logs:
		reply.Log, err = rt.hub.snapshot()
	case out && m.Stream:
		sub = rt.hub.subscribe()
	}
	if err != nil {
		ctx.Respond(messages.Internal("attach %s: %v", rt.rec.ID, err))
		return
	}
	if sub != nil {
		reply.Output = filteredSubscription{sub: sub, stdout: m.Stdout, stderr: m.Stderr}
	}
	if m.Stdin && m.Stream && rt.rec.Config.OpenStdin {
		reply.Stdin = rt.stdin
	}
	ctx.Respond(reply)
}

func (a *containerActor) logs(ctx actor.Context, m *messages.ContainerLogs) {
	rt := a.rt
	reply := &messages.LogsReply{Tty: rt.rec.Config.Tty}
	var err error
	if m.Follow && (a.running() || rt.phase == phaseStarting) {
		var sub *subscription
		sub, reply.Log, err = rt.hub.subscribeAfterLog()
		if sub != nil {
			reply.Live = sub
		}
	} else {
		reply.Log, err = rt.hub.snapshot()
	}
	if err != nil {
		ctx.Respond(messages.Internal("logs %s: %v", rt.rec.ID, err))
		return
	}
	ctx.Respond(reply)
}

// filteredSubscription drops the streams an attach did not ask for.
type filteredSubscription struct {
	sub            messages.OutputSubscription
	stdout, stderr bool
}

func (f filteredSubscription) Next() (messages.Frame, bool) {
	for {
		fr, ok := f.sub.Next()
		if !ok || (fr.Stream == 1 && f.stdout) || (fr.Stream == 2 && f.stderr) {
			return fr, ok
		}
	}
}

func (f filteredSubscription) Close() { f.sub.Close() }

// processSpec is the main process as the agent runs it.
func processSpec(rec *persistence.ContainerRecord) wire.ProcessSpec {
	cfg := rec.Config
	args := append([]string{rec.Path}, rec.Args...)
	return wire.ProcessSpec{
		ID:           "main",
		Args:         args,
		Env:          processEnv(cfg),
		Cwd:          firstNonEmpty(cfg.WorkingDir, "/"),
		User:         cfg.User,
		Tty:          cfg.Tty,
		Stdin:        cfg.OpenStdin,
		Main:         true,
		Capabilities: capabilities(rec.HostConfig),
		Rlimits:      hostRlimits(rec.HostConfig),
	}
}

// mainProcessSpec is processSpec under the container's security options.
func mainProcessSpec(rec *persistence.ContainerRecord, sandbox bool) (wire.ProcessSpec, error) {
	p := processSpec(rec)
	err := security.Apply(&p, rec.HostConfig, p.Capabilities, sandbox)
	return p, err
}

// sharesHostKernel is true on the sandbox driver, where a container's
// processes are host processes: they get the boundary seccomp filter.
func (a *containerActor) sharesHostKernel() bool {
	return a.env.Driver != nil && a.env.Driver.Name() == "sandbox"
}

// hostLimits puts what the agent enforces at setup into its request:
// --read-only, --shm-size and --pids-limit (≤ 0 is none, as dockerd reads
// it).
func hostLimits(setup *wire.SetupRequest, hc *container.HostConfig) {
	if hc == nil {
		return
	}
	setup.ReadonlyRootfs = hc.ReadonlyRootfs
	setup.ShmSize = hc.ShmSize
	if hc.PidsLimit != nil && *hc.PidsLimit > 0 {
		setup.PidsLimit = *hc.PidsLimit
	}
}

// hostRlimits is --ulimit as the agent sets it; the values were checked
// at create.
func hostRlimits(hc *container.HostConfig) []wire.Rlimit {
	if hc == nil {
		return nil
	}
	rl, _ := rlimits(hc.Ulimits)
	return rl
}

// capabilities folds --privileged, --cap-add and --cap-drop into the set
// the agent bounds processes with; nil means Docker's default.
func capabilities(hc *container.HostConfig) []string {
	if hc == nil {
		return nil
	}
	if hc.Privileged {
		return []string{"ALL"}
	}
	if len(hc.CapAdd) == 0 && len(hc.CapDrop) == 0 {
		return nil
	}
	norm := func(c string) string { return strings.TrimPrefix(strings.ToUpper(c), "CAP_") }
	set := map[string]bool{}
	for _, c := range wire.DefaultCapabilities {
		set[c] = true
	}
	for _, c := range hc.CapDrop {
		if norm(c) == "ALL" {
			set = map[string]bool{}
			continue
		}
		delete(set, norm(c))
	}
	for _, c := range hc.CapAdd {
		if norm(c) == "ALL" {
			return []string{"ALL"}
		}
		set[norm(c)] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// processEnv is what a process in the container sees: PATH (unless set),
// HOSTNAME, then the container's Env, TERM for a TTY.
func processEnv(cfg *container.Config) []string {
	env := make([]string, 0, len(cfg.Env)+3)
	has := func(key string) bool {
		for _, e := range cfg.Env {
			if strings.HasPrefix(e, key+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		env = append(env, defaultPath)
	}
	env = append(env, "HOSTNAME="+cfg.Hostname)
	env = append(env, cfg.Env...)
	if cfg.Tty && !has("TERM") {
		env = append(env, "TERM=xterm")
	}
	return env
}

// resolvConf is the host's resolver configuration, as Docker gives
// containers without an embedded DNS server.
func resolvConf() []byte { return hostFile("/etc/resolv.conf") }

// hostFile is one of the host's /etc files, nil when unreadable.
func hostFile(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return b
}

func (a *containerActor) inspect() container.InspectResponse {
	rec := a.rt.rec
	st := rec.State
	status := st.Status
	if a.rt.phase == phaseStarting {
		status = container.StateCreated
	}
	state := &container.State{
		Status:     status,
		Running:    st.Status == container.StateRunning || st.Status == container.StatePaused || st.Status == container.StateRestarting,
		Paused:     st.Status == container.StatePaused,
		Restarting: st.Status == container.StateRestarting,
		OOMKilled:  st.OOMKilled,
		Dead:       st.Status == container.StateDead,
		Pid:        st.Pid,
		ExitCode:   st.ExitCode,
		Error:      st.Error,
		StartedAt:  dockerTime(st.StartedAt),
		FinishedAt: dockerTime(st.FinishedAt),
		Health:     copyHealth(a.rt.health),
	}
	dir := a.env.containerDir(rec.ID)
	return container.InspectResponse{
		ID:             rec.ID,
		Created:        rec.Created.Format(time.RFC3339Nano),
		Path:           rec.Path,
		Args:           nonNil(rec.Args),
		State:          state,
		Image:          rec.ImageID.String(),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
		HostnamePath:   filepath.Join(dir, "hostname"),
		HostsPath:      filepath.Join(dir, "hosts"),
		LogPath:        filepath.Join(dir, containerlog.FileName(rec.ID)),
		Name:           "/" + rec.Name,
		RestartCount:   rec.RestartCount,
		Driver:         "overlayfs",
		Platform:       "linux",
		HostConfig:     rec.HostConfig,
		Mounts:         a.env.mountPoints(rec.Mounts),
		Config:         rec.Config,
		NetworkSettings: &container.NetworkSettings{
			Networks: a.networkSettings(),
			Ports:    a.portMap(),
		},
	}
}

// dockerTime formats like dockerd: RFC 3339 with nanoseconds, and Go's
// zero time for "never".
func dockerTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// parseSignal accepts "SIGTERM", "TERM", "15".
func parseSignal(s string) (syscall.Signal, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n <= 0 || n > 64 {
			return 0, messages.InvalidParameter("invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "SIG"))
	if sig, ok := signalNames[name]; ok {
		return sig, nil
	}
	return 0, messages.InvalidParameter("invalid signal: %s", s)
}

// signalNames are Linux's numbers, written out: the signal goes to a
// process in a Linux guest whatever the host is (macOS numbers differ).
var signalNames = map[string]syscall.Signal{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
	"KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
	"CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23,
	"XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "PWR": 30, "SYS": 31,
}

// copyHealth detaches inspect's answer from the actor's state, which the
// next probe result changes while the HTTP layer encodes the reply.
func copyHealth(h *container.Health) *container.Health {
	if h == nil {
		return nil
	}
	c := *h
	c.Log = make([]*container.HealthcheckResult, len(h.Log))
	for i, r := range h.Log {
		rc := *r
		c.Log[i] = &rc
	}
	return &c
}
