package actors

import (
	"fmt"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/messages"
)

// A container's lifecycle, in one place: its phases, the transitions
// between them, and for every request in every phase what the container
// actor does with it: handle it now, keep it until the phase ends (in
// order, with its sender), or refuse it with dockerd's words and status.
// Receive consults requestTable before any handler runs, so a handler
// never checks the phase itself to refuse a request. docs/architecture.md
// shows these tables as lifecycleMarkdown renders them (a test keeps the
// two equal: go test ./actors -run TestLifecycleDoc -update-doc rewrites
// the doc's copy).

// phase is where a container is in its lifecycle. The record's
// State.Status is what clients see and what is persisted; the phase is
// what the actor decides by. They differ in the transitional phases:
// starting (the record keeps its status until the process runs),
// stopping (running until the exit) and removing (running until the exit
// after rm -f).
type phase uint8

const (
	phaseCreated    phase = iota // never ran, or its first start failed
	phaseStarting                // a machine is booting for the main process
	phaseRunning                 // the main process runs
	phasePaused                  // the main process is frozen
	phaseRestarting              // between runs, a policy restart is due
	phaseStopping                // stop (or SIGKILL) sent, the exit is awaited
	phaseRemoving                // rm: the exit is awaited or the record is going
	phaseExited                  // ran and ended
	phaseDead                    // the actor failed past its supervision: only the supervisor answers
	numPhases
)

var phaseNames = [numPhases]string{"created", "starting", "running", "paused", "restarting", "stopping", "removing", "exited", "dead"}

func (p phase) String() string {
	if p < numPhases {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// phaseOf is the phase a container restored from its record is in:
// machines do not outlive the daemon, so it is created or exited.
func phaseOf(status container.ContainerState) phase {
	if status == container.StateCreated || status == "" {
		return phaseCreated
	}
	return phaseExited
}

// transitions are the phase changes the actor makes; any other is a bug
// (logged). Every phase may also end in dead, which the supervisor
// decides when the actor fails more often than its supervision allows.
var transitions = [numPhases][]phase{
	phaseCreated: {phaseStarting, phaseRemoving},
	// A failed start goes back to created (first start) or exited; a
	// start whose record cannot be written is killed (stopping).
	phaseStarting: {phaseRunning, phaseCreated, phaseExited, phaseStopping},
	phaseRunning:  {phasePaused, phaseStopping, phaseRemoving, phaseExited},
	phasePaused:   {phaseRunning, phaseStopping, phaseRemoving, phaseExited},
	// The timer, restart or start begins a run; stop or kill ends the
	// restarts; rm -f removes.
	phaseRestarting: {phaseStarting, phaseExited, phaseRemoving},
	// At the exit: exited (and from there, for docker restart, starting);
	// rm -f meanwhile kills and removes.
	phaseStopping: {phaseExited, phaseRemoving},
	// A removal whose record cannot be deleted goes back (the daemon's
	// shutdown too, with the machine off).
	phaseRemoving: {phaseExited, phaseCreated},
	// After an exit: a restart policy waits to start again; docker
	// restart starts at once; --rm removes.
	phaseExited: {phaseStarting, phaseRemoving, phaseRestarting},
	phaseDead:   {},
}

func allowed(from, to phase) bool {
	if to == phaseDead {
		return true
	}
	for _, p := range transitions[from] {
		if p == to {
			return true
		}
	}
	return false
}

// reqKind is a kind of request addressed to one container.
type reqKind uint8

const (
	reqStart reqKind = iota
	reqStop
	reqRestart
	reqKill
	reqRemove      // rm
	reqRemoveForce // rm -f
	reqWait
	reqInspect // inspect, and ps -s / system df's measure
	reqAttach
	reqLogs
	reqResize
	reqPause
	reqUnpause
	reqTop
	reqStats
	reqFiles // cp, diff, export, commit: the container's files through an agent (files.go)
	reqExecCreate
	reqExecStart
	reqExecOther // exec inspect and resize
	reqConnect
	reqDisconnect
	reqRename
	numReqKinds
)

var reqNames = [numReqKinds]string{
	"start", "stop", "restart", "kill", "rm", "rm -f", "wait", "inspect", "attach", "logs", "resize",
	"pause", "unpause", "top", "stats", "cp, diff, export", "exec", "exec start", "exec inspect, resize",
	"network connect", "network disconnect", "rename",
}

func (k reqKind) String() string { return reqNames[k] }

// kindOf says which request m is; ok is false for what is not a request
// (the actor's own messages, events).
func kindOf(m any) (reqKind, bool) {
	switch m := m.(type) {
	case *messages.StartContainer:
		return reqStart, true
	case *messages.StopContainer:
		return reqStop, true
	case *messages.RestartContainer:
		return reqRestart, true
	case *messages.KillContainer:
		return reqKill, true
	case *messages.RemoveContainer:
		if m.Force {
			return reqRemoveForce, true
		}
		return reqRemove, true
	case *messages.WaitContainerStream:
		return reqWait, true
	case *messages.InspectContainer, *measureSize:
		return reqInspect, true
	case *messages.AttachContainer:
		return reqAttach, true
	case *messages.ContainerLogs:
		return reqLogs, true
	case *messages.ResizeContainer:
		return reqResize, true
	case *messages.PauseContainer:
		return reqPause, true
	case *messages.UnpauseContainer:
		return reqUnpause, true
	case *messages.TopContainer:
		return reqTop, true
	case *messages.StatsContainer:
		return reqStats, true
	case *messages.StatPath, *messages.GetArchive, *messages.PutArchive, *messages.ContainerChanges, *messages.ExportContainer:
		return reqFiles, true
	case *messages.CreateExec:
		return reqExecCreate, true
	case *messages.StartExec:
		return reqExecStart, true
	case *messages.InspectExec, *messages.ResizeExec:
		return reqExecOther, true
	case *messages.ConnectNetwork:
		return reqConnect, true
	case *messages.DisconnectNetwork:
		return reqDisconnect, true
	case *messages.RenameContainer:
		return reqRename, true
	}
	return 0, false
}

// act is what the actor does with a request.
type act uint8

const (
	actUnset  act = iota // a hole in the table (the table test finds none)
	actHandle            // its handler runs now
	actWait              // kept until the phase changes, then decided again, in order
	actRefuse            // answered at once with the rule's error
)

// who names the container in a refusal: its full ID, and the reference
// the client used (dockerd words some errors with one, some with the
// other).
type who struct{ id, ref string }

// rule is one cell of the table.
type rule struct {
	act    act
	note   string   // what handling does here, for the doc
	refuse *refusal // actRefuse
}

func handle(note string) rule { return rule{act: actHandle, note: note} }

var waits = rule{act: actWait, note: "waits"}

func refuse(r *refusal) rule { return rule{act: actRefuse, refuse: r} }

// refusal is an answer in dockerd's words, with the errdefs class it
// gives them (none: 500); key names it in the doc's table.
type refusal struct {
	key string
	err func(w who) error
}

func (r *refusal) words(w who) error { return r.err(w) }

// dockerd's refusals, word for word (moby daemon/*.go).
var (
	errAlreadyRunning = &refusal{"already running", func(who) error { return messages.NotModified("container is already running") }}
	errAlreadyStopped = &refusal{"already stopped", func(who) error { return messages.NotModified("container is already stopped") }}
	errStartPaused    = &refusal{"start paused", func(who) error {
		return messages.Conflict("cannot start a paused container, try unpause instead")
	}}
	errMarkedForRemoval = &refusal{"marked for removal", func(who) error {
		return messages.Conflict("container is marked for removal and cannot be started")
	}}
	errRestartRemoving = &refusal{"restart marked for removal", func(w who) error {
		return messages.Internal("Cannot restart container %s: container is marked for removal and cannot be started", w.ref)
	}}
	errNotRunning     = &refusal{"not running", func(w who) error { return messages.Conflict("container %s is not running", w.id) }}
	errKillNotRunning = &refusal{"kill not running", func(w who) error {
		return messages.Conflict("cannot kill container: %s: container %s is not running", w.ref, w.id)
	}}
	errIsRestarting = &refusal{"restarting", func(w who) error {
		return messages.Conflict("Container %s is restarting, wait until the container is running", w.id)
	}}
	errExecPaused = &refusal{"exec paused", func(w who) error {
		return messages.Conflict("Container %s is paused, unpause the container before exec", w.ref)
	}}
	errExecStartPaused = &refusal{"exec start paused", func(w who) error {
		return messages.Conflict("Container %s is paused, unpause the container before exec", w.id)
	}}
	errAttachPaused = &refusal{"attach paused", func(w who) error {
		return messages.Conflict("container %s is paused, unpause the container before attach", w.ref)
	}}
	errAttachRestarting = &refusal{"attach restarting", func(w who) error {
		return messages.Conflict("container %s is restarting, wait until the container is running", w.ref)
	}}
	errAlreadyPaused = &refusal{"already paused", func(w who) error { return messages.Conflict("container %s is already paused", w.id) }}
	errNotPaused     = &refusal{"not paused", func(w who) error { return messages.Internal("Container %s is not paused", w.id) }}
	errRemoveRunning = &refusal{"rm running", func(w who) error {
		return messages.Conflict("cannot remove container %q: container is running: stop the container before removing or force remove", w.ref)
	}}
	errRemoveRestarting = &refusal{"rm restarting", func(w who) error {
		return messages.Conflict("cannot remove container %q: container is restarting: stop the container before removing or force remove", w.ref)
	}}
	errRemovePaused = &refusal{"rm paused", func(w who) error {
		return messages.Conflict("cannot remove container %q: container is paused and must be unpaused first", w.ref)
	}}
	errRemovalInProgress = &refusal{"rm in progress", func(w who) error {
		return messages.Conflict("removal of container %s is already in progress", w.ref)
	}}
	// Arca's own: a removal takes the files from under a copy.
	errFilesRemoving = &refusal{"files removing", func(w who) error {
		return messages.Conflict("container %s is being removed", w.id)
	}}
	// Arca's own: dockerd's dead is a removal that failed; this is an
	// actor that did.
	errDead = &refusal{"dead", func(w who) error {
		return messages.Internal("container %s is dead: its actor failed repeatedly (see the daemon's log); remove it with docker rm", shortID(w.id))
	}}
	refusals = []*refusal{
		errAlreadyRunning, errAlreadyStopped, errStartPaused, errMarkedForRemoval, errRestartRemoving,
		errNotRunning, errKillNotRunning, errIsRestarting, errExecPaused, errExecStartPaused,
		errAttachPaused, errAttachRestarting, errAlreadyPaused, errNotPaused, errRemoveRunning,
		errRemoveRestarting, errRemovePaused, errRemovalInProgress, errFilesRemoving, errDead,
	}
)

// row is one request kind in every phase.
type row [numPhases]rule

// requestTable is the lifecycle's requests: requestTable[kind][phase].
// Starting and removing are the phases in which dockerd holds the
// container, so what it lets wait for its lock waits here; stopping is a
// running container to dockerd, so requests there are answered as in
// running. Dead is answered by the supervisor, from its last snapshot.
var requestTable = [numReqKinds]row{
	reqStart: {
		phaseCreated:    handle("starts"),
		phaseStarting:   waits,
		phaseRunning:    refuse(errAlreadyRunning),
		phasePaused:     refuse(errStartPaused),
		phaseRestarting: refuse(errAlreadyRunning),
		phaseStopping:   refuse(errAlreadyRunning),
		phaseRemoving:   refuse(errMarkedForRemoval),
		phaseExited:     handle("starts"),
		phaseDead:       refuse(errDead),
	},
	reqStop: {
		phaseCreated:    refuse(errAlreadyStopped),
		phaseStarting:   waits,
		phaseRunning:    handle("stop signal, SIGKILL at the timeout; answered at the exit"),
		phasePaused:     handle("thaws, then as running"),
		phaseRestarting: handle("ends the restarts (durable, then answered)"),
		phaseStopping:   handle("answered at the exit"),
		phaseRemoving:   handle("answered at the exit"),
		phaseExited:     refuse(errAlreadyStopped),
		phaseDead:       refuse(errDead),
	},
	reqRestart: {
		phaseCreated:    handle("starts"),
		phaseStarting:   waits,
		phaseRunning:    handle("stops, starts at the exit"),
		phasePaused:     handle("thaws, stops, starts at the exit"),
		phaseRestarting: handle("starts now (the policy's wait ends)"),
		phaseStopping:   handle("starts at the exit"),
		phaseRemoving:   refuse(errRestartRemoving),
		phaseExited:     handle("starts"),
		phaseDead:       refuse(errDead),
	},
	reqKill: {
		phaseCreated:    refuse(errKillNotRunning),
		phaseStarting:   waits,
		phaseRunning:    handle("signal; SIGKILL is answered at the exit"),
		phasePaused:     handle("thaws, then as running"),
		phaseRestarting: handle("SIGKILL or the stop signal ends the restarts (durable, then answered)"),
		phaseStopping:   handle("signal; SIGKILL is answered at the exit"),
		phaseRemoving:   handle("signal; SIGKILL is answered at the exit"),
		phaseExited:     refuse(errKillNotRunning),
		phaseDead:       refuse(errDead),
	},
	reqRemove: {
		phaseCreated:    handle("removes"),
		phaseStarting:   waits,
		phaseRunning:    refuse(errRemoveRunning),
		phasePaused:     refuse(errRemovePaused),
		phaseRestarting: refuse(errRemoveRestarting),
		phaseStopping:   refuse(errRemoveRunning),
		phaseRemoving:   refuse(errRemovalInProgress),
		phaseExited:     handle("removes"),
		phaseDead:       handle("removes the record"),
	},
	reqRemoveForce: {
		phaseCreated:    handle("removes"),
		phaseStarting:   waits,
		phaseRunning:    handle("kills; removed and answered at the exit"),
		phasePaused:     handle("kills; removed and answered at the exit"),
		phaseRestarting: handle("removes (the restarts end)"),
		phaseStopping:   handle("kills; removed and answered at the exit"),
		phaseRemoving:   refuse(errRemovalInProgress),
		phaseExited:     handle("removes"),
		phaseDead:       handle("removes the record"),
	},
	reqWait: {
		phaseCreated:    handle("not-running answers now"),
		phaseStarting:   waits,
		phaseRunning:    handle("answered at the exit"),
		phasePaused:     handle("answered at the exit"),
		phaseRestarting: handle("not-running: answered when the restarts end"),
		phaseStopping:   handle("answered at the exit"),
		phaseRemoving:   handle("answered at the exit or removal"),
		phaseExited:     handle("not-running answers now"),
		phaseDead:       refuse(errDead),
	},
	reqInspect: {
		phaseCreated:    handle(""),
		phaseStarting:   handle("status as before the start"),
		phaseRunning:    handle(""),
		phasePaused:     handle(""),
		phaseRestarting: handle(""),
		phaseStopping:   handle("running until the exit"),
		phaseRemoving:   handle(""),
		phaseExited:     handle(""),
		phaseDead:       handle("the last snapshot"),
	},
	reqAttach: {
		phaseCreated:    handle("streams from the start"),
		phaseStarting:   handle("streams this run"),
		phaseRunning:    handle(""),
		phasePaused:     refuse(errAttachPaused),
		phaseRestarting: refuse(errAttachRestarting),
		phaseStopping:   handle(""),
		phaseRemoving:   handle(""),
		phaseExited:     handle("streams from the next start"),
		phaseDead:       refuse(errDead),
	},
	reqLogs: {
		phaseCreated:    handle(""),
		phaseStarting:   handle("follows this run"),
		phaseRunning:    handle(""),
		phasePaused:     handle(""),
		phaseRestarting: handle(""),
		phaseStopping:   handle(""),
		phaseRemoving:   handle(""),
		phaseExited:     handle(""),
		phaseDead:       refuse(errDead),
	},
	reqResize: {
		phaseCreated:    refuse(errNotRunning),
		phaseStarting:   waits,
		phaseRunning:    handle(""),
		phasePaused:     handle(""),
		phaseRestarting: refuse(errNotRunning),
		phaseStopping:   handle(""),
		phaseRemoving:   refuse(errNotRunning),
		phaseExited:     refuse(errNotRunning),
		phaseDead:       refuse(errDead),
	},
	reqPause: {
		phaseCreated:    refuse(errNotRunning),
		phaseStarting:   waits,
		phaseRunning:    handle("freezes"),
		phasePaused:     refuse(errAlreadyPaused),
		phaseRestarting: refuse(errIsRestarting),
		phaseStopping:   handle("freezes (refused if frozen already)"),
		phaseRemoving:   refuse(errNotRunning),
		phaseExited:     refuse(errNotRunning),
		phaseDead:       refuse(errDead),
	},
	reqUnpause: {
		phaseCreated:    refuse(errNotPaused),
		phaseStarting:   waits,
		phaseRunning:    refuse(errNotPaused),
		phasePaused:     handle("thaws"),
		phaseRestarting: refuse(errNotPaused),
		phaseStopping:   handle("thaws (refused if not frozen)"),
		phaseRemoving:   refuse(errNotPaused),
		phaseExited:     refuse(errNotPaused),
		phaseDead:       refuse(errDead),
	},
	reqTop: {
		phaseCreated:    refuse(errNotRunning),
		phaseStarting:   waits,
		phaseRunning:    handle(""),
		phasePaused:     handle(""),
		phaseRestarting: refuse(errIsRestarting),
		phaseStopping:   handle(""),
		phaseRemoving:   refuse(errNotRunning),
		phaseExited:     refuse(errNotRunning),
		phaseDead:       refuse(errDead),
	},
	reqStats: {
		phaseCreated:    handle("an empty sample"),
		phaseStarting:   waits,
		phaseRunning:    handle("a sample from the agent"),
		phasePaused:     handle("a sample from the agent"),
		phaseRestarting: handle("an empty sample"),
		phaseStopping:   handle("a sample from the agent"),
		phaseRemoving:   handle("an empty sample"),
		phaseExited:     handle("an empty sample"),
		phaseDead:       refuse(errDead),
	},
	reqFiles: {
		phaseCreated:    handle("boots a machine for the files"),
		phaseStarting:   waits,
		phaseRunning:    handle("the running agent"),
		phasePaused:     handle("the running agent"),
		phaseRestarting: handle("boots a machine for the files"),
		phaseStopping:   handle("the running agent"),
		phaseRemoving:   refuse(errFilesRemoving),
		phaseExited:     handle("boots a machine for the files"),
		phaseDead:       refuse(errDead),
	},
	reqExecCreate: {
		phaseCreated:    refuse(errNotRunning),
		phaseStarting:   waits,
		phaseRunning:    handle(""),
		phasePaused:     refuse(errExecPaused),
		phaseRestarting: refuse(errIsRestarting),
		phaseStopping:   handle(""),
		phaseRemoving:   refuse(errNotRunning),
		phaseExited:     refuse(errNotRunning),
		phaseDead:       refuse(errDead),
	},
	reqExecStart: {
		phaseCreated:    refuse(errNotRunning),
		phaseStarting:   waits,
		phaseRunning:    handle(""),
		phasePaused:     refuse(errExecStartPaused),
		phaseRestarting: refuse(errIsRestarting),
		phaseStopping:   handle(""),
		phaseRemoving:   refuse(errNotRunning),
		phaseExited:     refuse(errNotRunning),
		phaseDead:       refuse(errDead),
	},
	reqExecOther: {
		phaseCreated:    handle(""),
		phaseStarting:   handle(""),
		phaseRunning:    handle(""),
		phasePaused:     handle(""),
		phaseRestarting: handle(""),
		phaseStopping:   handle(""),
		phaseRemoving:   handle(""),
		phaseExited:     handle(""),
		phaseDead:       refuse(errDead),
	},
	reqConnect: {
		phaseCreated:    handle("recorded for the next start"),
		phaseStarting:   waits,
		phaseRunning:    handle("answered once the guest has it"),
		phasePaused:     handle("answered once the guest has it"),
		phaseRestarting: handle("recorded for the next start"),
		phaseStopping:   handle("answered once the guest has it"),
		phaseRemoving:   handle("recorded"),
		phaseExited:     handle("recorded for the next start"),
		phaseDead:       refuse(errDead),
	},
	reqDisconnect: {
		phaseCreated:    handle("recorded"),
		phaseStarting:   waits,
		phaseRunning:    handle("answered once the guest is without it"),
		phasePaused:     handle("answered once the guest is without it"),
		phaseRestarting: handle("recorded"),
		phaseStopping:   handle("answered once the guest is without it"),
		phaseRemoving:   handle("recorded"),
		phaseExited:     handle("recorded"),
		phaseDead:       refuse(errDead),
	},
	reqRename: {
		phaseCreated:    handle(""),
		phaseStarting:   handle(""),
		phaseRunning:    handle(""),
		phasePaused:     handle(""),
		phaseRestarting: handle(""),
		phaseStopping:   handle(""),
		phaseRemoving:   handle(""),
		phaseExited:     handle(""),
		phaseDead:       refuse(errDead),
	},
}

// filesHeldWaits are the requests that wait while a copy holds a stopped
// container's files through a machine of its own: the removal would pull
// the files from under it. (A start boots once that machine is off.)
var filesHeldWaits = [numReqKinds]bool{reqRemove: true, reqRemoveForce: true}

// ruleFor is the table's cell for m in the actor's current phase.
func (a *containerActor) ruleFor(k reqKind) rule {
	r := requestTable[k][a.rt.phase]
	if r.act == actHandle && a.rt.fs != nil && filesHeldWaits[k] {
		return waits
	}
	return r
}

// whoOf names the container for a refusal of m.
func (a *containerActor) whoOf(m any) who {
	w := who{id: a.rt.rec.ID, ref: a.rt.rec.Name}
	if r, ok := m.(messages.ContainerRef); ok && r.ContainerRef() != "" {
		w.ref = r.ContainerRef()
	}
	return w
}

// admit consults the table for the current request: true means its
// handler runs now; otherwise the request has been kept for later or
// answered.
func (a *containerActor) admit(ctx actor.Context) bool {
	k, ok := kindOf(ctx.Message())
	if !ok {
		return true
	}
	switch r := a.ruleFor(k); r.act {
	case actWait:
		a.rt.deferred = append(a.rt.deferred, deferredRequest{ctx.Message(), ctx.Sender()})
		return false
	case actRefuse:
		ctx.Respond(r.refuse.words(a.whoOf(ctx.Message())))
		return false
	}
	return true
}

// deferredRequest is a request kept until the phase it arrived in ends.
type deferredRequest struct {
	msg    any
	sender *actor.PID
}

// replayDeferred decides again, in their order, the requests kept while
// the phase was another: each that may be handled now is, as if it had
// just arrived from its sender; at the first that must still wait, the
// rest wait behind it.
func (a *containerActor) replayDeferred(ctx actor.Context) {
	for len(a.rt.deferred) > 0 {
		d := a.rt.deferred[0]
		if k, ok := kindOf(d.msg); ok && a.ruleFor(k).act == actWait {
			return
		}
		a.rt.deferred = a.rt.deferred[1:]
		if askerGone(ctx.ActorSystem(), d.sender) {
			// Its asker was told it timed out: carrying it out now
			// would make that answer a lie.
			a.env.Log.Info("dropped a request whose asker gave up while it waited", "container", a.rt.rec.ID, "request", fmt.Sprintf("%T", d.msg))
			continue
		}
		a.receive(replayed{Context: ctx, msg: d.msg, sender: d.sender})
	}
	a.rt.deferred = nil
}

// askerGone says whether nobody waits for the answer any more: a future
// leaves the registry when its deadline passes. A request sent without
// asking (no sender) is always carried out.
func askerGone(sys *actor.ActorSystem, sender *actor.PID) bool {
	if sender == nil {
		return false
	}
	_, ok := sys.ProcessRegistry.Get(sender)
	return !ok
}

// answerDeferred answers every kept request with errFor(its message): the
// container is gone (removed) or the daemon is stopping.
func (a *containerActor) answerDeferred(ctx actor.Context, errFor func(msg any) error) {
	for _, d := range a.rt.deferred {
		if d.sender != nil {
			ctx.Send(d.sender, errFor(d.msg))
		}
	}
	a.rt.deferred = nil
}

// replayed is the actor's context for a kept request: its message and
// sender are the request's.
type replayed struct {
	actor.Context
	msg    any
	sender *actor.PID
}

func (r replayed) Message() any       { return r.msg }
func (r replayed) Sender() *actor.PID { return r.sender }
func (r replayed) Respond(res any) {
	if r.sender != nil {
		r.Context.Send(r.sender, res)
	}
}

// to moves the container to phase p. A change the transitions table does
// not have is logged as the bug it is, and made anyway: the actor must go
// on.
func (a *containerActor) to(p phase) {
	from := a.rt.phase
	if from == p {
		return
	}
	if !allowed(from, p) {
		a.env.Log.Error("container lifecycle: transition not in the table", "id", a.rt.rec.ID, "from", from.String(), "to", p.String())
	}
	a.rt.phase = p
}

// lifecycleMarkdown renders the tables for docs/architecture.md.
func lifecycleMarkdown() string {
	var b strings.Builder
	b.WriteString("Transitions (any phase becomes *dead* when the actor fails more often than its supervision allows):\n\n| from | to |\n|---|---|\n")
	for p := phase(0); p < numPhases; p++ {
		var to []string
		for _, q := range transitions[p] {
			to = append(to, q.String())
		}
		if len(to) == 0 {
			to = []string{"— (`docker rm` removes it)"}
		}
		fmt.Fprintf(&b, "| %s | %s |\n", p, strings.Join(to, ", "))
	}
	b.WriteString("\nRequests per phase: *waits* is kept until the phase ends, then decided again, in order of arrival (one whose asker gave up meanwhile, its deadline passed, is dropped, not carried out late); a status and a key is a refusal, in the words below; anything else is handled now, as it says.\n\n| request |")
	for p := phase(0); p < numPhases; p++ {
		fmt.Fprintf(&b, " %s |", p)
	}
	b.WriteString("\n|---|")
	for p := phase(0); p < numPhases; p++ {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	w := who{id: "<id>", ref: "c"}
	for k := reqKind(0); k < numReqKinds; k++ {
		fmt.Fprintf(&b, "| %s |", k)
		for p := phase(0); p < numPhases; p++ {
			r := requestTable[k][p]
			var cell string
			switch r.act {
			case actHandle:
				cell = r.note
				if cell == "" {
					cell = "✓"
				}
			case actWait:
				cell = "*waits*"
			case actRefuse:
				cell = fmt.Sprintf("%d *%s*", statusOf(r.refuse.words(w)), r.refuse.key)
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nThe refusals, for a container `c` (as the request named it) of ID `<id>`:\n\n| key | status | words |\n|---|---|---|\n")
	for _, r := range refusals {
		err := r.words(w)
		fmt.Fprintf(&b, "| *%s* | %d | %s |\n", r.key, statusOf(err), "`"+err.Error()+"`")
	}
	return b.String()
}

// statusOf is the HTTP status the front end gives err (for the doc).
func statusOf(err error) int {
	switch messages.KindOf(err) {
	case messages.KindNotModified:
		return 304
	case messages.KindConflict:
		return 409
	case messages.KindInvalidParameter:
		return 400
	case messages.KindNotFound:
		return 404
	}
	return 500
}
