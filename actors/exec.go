package actors

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/arcavm/arca/actors/security"
	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// execState is one exec instance of a container.
type execState struct {
	id       string
	cfg      container.ExecCreateRequest
	run      int // the container run it belongs to
	started  bool
	running  bool
	pid      int
	exitCode *int
	done     chan struct{} // closed when the exit code is recorded
}

type (
	execStarted struct {
		id   string
		proc *wire.Process
		err  error
		// replyTo gets the StartExecReply (attached) or Accepted
		// (detached) once the process runs.
		replyTo *actor.PID
		detach  bool
		tty     bool
	}
	execExited struct {
		id     string
		status wire.ExitStatus
		err    error
	}
)

func (a *containerActor) createExec(ctx actor.Context, m *messages.CreateExec) {
	rt := a.rt
	if err := a.execAllowed(a.whoOf(m)); err != nil {
		ctx.Respond(err)
		return
	}
	if len(m.Config.Cmd) == 0 {
		ctx.Respond(messages.InvalidParameter("No exec command specified"))
		return
	}
	if rt.execs == nil {
		rt.execs = map[string]*execState{}
	}
	rt.execs[m.ExecID] = &execState{id: m.ExecID, cfg: m.Config, run: rt.run, done: make(chan struct{})}
	a.event(ctx, events.ActionExecCreate, map[string]string{"execID": m.ExecID})
	ctx.Respond(&messages.CreateExecReply{ID: m.ExecID})
}

// execAllowed: past the table (which refuses an exec in a paused
// container, or one that does not run), a container that a pause froze
// while it was stopping refuses it too.
func (a *containerActor) execAllowed(w who) error {
	rt := a.rt
	switch {
	case rt.client == nil:
		return errNotRunning.words(w)
	case rt.rec.State.Status == container.StatePaused:
		return errExecPaused.words(w)
	}
	return nil
}

func (a *containerActor) startExec(ctx actor.Context, m *messages.StartExec) {
	rt := a.rt
	ex := rt.execs[m.ExecID]
	if ex == nil {
		ctx.Respond(messages.NotFound("No such exec instance: %s", m.ExecID))
		return
	}
	if ex.started {
		ctx.Respond(messages.Conflict("exec %s has already been started", m.ExecID))
		return
	}
	if err := a.execAllowed(who{id: rt.rec.ID, ref: rt.rec.ID}); err != nil {
		ctx.Respond(err)
		return
	}
	if ex.run != rt.run {
		ctx.Respond(messages.Conflict("container %s has been restarted since exec %s was created", rt.rec.ID, m.ExecID))
		return
	}
	if m.Check {
		ctx.Respond(&messages.Accepted{})
		return
	}
	cfg := ex.cfg
	tty := cfg.Tty || m.Tty
	spec, err := execProcessSpec(ex.id, cfg, rt.rec, tty, cfg.AttachStdin && !m.Detach, a.sharesHostKernel())
	if err != nil {
		ctx.Respond(messages.InvalidParameter("%v", err))
		return
	}
	ex.started = true
	size := m.ConsoleSize
	if size == nil {
		size = cfg.ConsoleSize
	}
	if size != nil {
		spec.ConsoleSize = wire.WindowSize{Height: uint16(size[0]), Width: uint16(size[1])}
	}
	c, replyTo, id := rt.client, ctx.Sender(), ex.id
	goSafe(ctx.ActorSystem(), ctx.Self(), func() any {
		sctx, cancel := deadline(time.Minute)
		defer cancel()
		p, err := c.Start(sctx, spec)
		return &execStarted{id: id, proc: p, err: err, replyTo: replyTo, detach: m.Detach, tty: tty}
	})
}

// execProcessSpec is an exec as the agent runs it.
func execProcessSpec(id string, cfg container.ExecCreateRequest, rec *persistence.ContainerRecord, tty, stdin, sandbox bool) (wire.ProcessSpec, error) {
	spec := wire.ProcessSpec{
		ID:           id,
		Args:         cfg.Cmd,
		Env:          mergeEnv(processEnv(rec.Config), cfg.Env),
		Cwd:          firstNonEmpty(cfg.WorkingDir, rec.Config.WorkingDir, "/"),
		User:         firstNonEmpty(cfg.User, rec.Config.User),
		Tty:          tty,
		Stdin:        stdin,
		Capabilities: capabilities(rec.HostConfig),
		Rlimits:      hostRlimits(rec.HostConfig),
	}
	if cfg.Privileged {
		spec.Capabilities = []string{"ALL"}
	}
	// The container's filter, for the container's capabilities even when
	// the exec is --privileged: runc exec keeps the container's seccomp.
	err := security.Apply(&spec, rec.HostConfig, capabilities(rec.HostConfig), sandbox)
	return spec, err
}

func (a *containerActor) onExecStarted(ctx actor.Context, m *execStarted) {
	ex := a.rt.execs[m.id]
	if ex == nil {
		return
	}
	if m.err != nil {
		// dockerd records 126 for an exec that could not start.
		code := 126
		ex.exitCode = &code
		close(ex.done)
		if m.detach {
			ctx.Send(m.replyTo, startError(m.err))
			return
		}
		ctx.Send(m.replyTo, &messages.StartExecReply{StartError: startError(m.err).Error(), Tty: m.tty, Done: ex.done})
		return
	}
	ex.running, ex.pid = true, m.proc.Pid
	a.event(ctx, events.Action(string(events.ActionExecStart)+": "+strings.Join(ex.cfg.Cmd, " ")), map[string]string{"execID": ex.id})
	proc, id := m.proc, m.id
	if m.detach {
		// Nobody reads its output: drain it so the process never blocks.
		goSafe(ctx.ActorSystem(), ctx.Self(), func() any {
			go io.Copy(io.Discard, proc.Stdout)
			if proc.Stderr != nil {
				go io.Copy(io.Discard, proc.Stderr)
			}
			st, err := proc.Wait()
			return &execExited{id: id, status: st, err: err}
		})
		ctx.Send(m.replyTo, &messages.Accepted{})
		return
	}
	goSafe(ctx.ActorSystem(), ctx.Self(), func() any {
		st, err := proc.Wait()
		return &execExited{id: id, status: st, err: err}
	})
	reply := &messages.StartExecReply{Tty: m.tty, Stdout: proc.Stdout, Stderr: proc.Stderr, Done: ex.done}
	if ex.cfg.AttachStdin && proc.Stdin != nil {
		reply.Stdin = proc.Stdin
	}
	ctx.Send(m.replyTo, reply)
}

func (a *containerActor) onExecExited(ctx actor.Context, m *execExited) {
	ex := a.rt.execs[m.id]
	if ex == nil || ex.exitCode != nil {
		return
	}
	code := m.status.Code
	if m.err != nil {
		code = 137
	}
	ex.running, ex.exitCode = false, &code
	close(ex.done)
	a.event(ctx, events.ActionExecDie, map[string]string{"execID": ex.id, "exitCode": strconv.Itoa(code)})
}

// endExecs marks every exec of the finished run as exited: the machine
// that ran them is gone.
func (a *containerActor) endExecs() {
	for _, ex := range a.rt.execs {
		if ex.exitCode == nil && ex.started {
			code := 137
			ex.running, ex.exitCode = false, &code
			close(ex.done)
		}
	}
}

func (a *containerActor) inspectExec(ctx actor.Context, m *messages.InspectExec) {
	ex := a.rt.execs[m.ExecID]
	if ex == nil {
		ctx.Respond(messages.NotFound("No such exec instance: %s", m.ExecID))
		return
	}
	var entry string
	var args []string
	if len(ex.cfg.Cmd) > 0 {
		entry, args = ex.cfg.Cmd[0], ex.cfg.Cmd[1:]
	}
	priv := ex.cfg.Privileged
	ctx.Respond(&messages.InspectExecReply{Exec: container.ExecInspectResponse{
		ID:          ex.id,
		Running:     ex.running,
		ExitCode:    ex.exitCode,
		OpenStdin:   ex.cfg.AttachStdin,
		OpenStdout:  ex.cfg.AttachStdout,
		OpenStderr:  ex.cfg.AttachStderr,
		ContainerID: a.rt.rec.ID,
		Pid:         ex.pid,
		ProcessConfig: &container.ExecProcessConfig{
			Tty: ex.cfg.Tty, Entrypoint: entry, Arguments: nonNil(args), Privileged: &priv, User: ex.cfg.User,
		},
	}})
}

func (a *containerActor) resizeExec(ctx actor.Context, m *messages.ResizeExec) {
	ex := a.rt.execs[m.ExecID]
	if ex == nil {
		ctx.Respond(messages.NotFound("No such exec instance: %s", m.ExecID))
		return
	}
	c := a.rt.client
	if c == nil || !ex.running {
		ctx.Respond(messages.Conflict("exec %s is not running", m.ExecID))
		return
	}
	respondLater(ctx, func() any {
		sctx, cancel := deadline(5 * time.Second)
		defer cancel()
		if err := c.Resize(sctx, m.ExecID, m.Height, m.Width); err != nil {
			return messages.Internal("resize exec: %v", err)
		}
		return &messages.Accepted{}
	})
}
