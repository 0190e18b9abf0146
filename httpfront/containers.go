package httpfront

import (
	"bufio"
	"encoding/json"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence/containerlog"
)

// Deadlines for asking actors: a little past what the actor itself allows.
// A request that waits for a start in progress (stop, kill, rm, exec, top,
// connect and the others the lifecycle table lets wait, as dockerd's
// container lock does) gets behindStart on top of its own: the start is
// bounded by startDeadline. A request whose asker has given up is not
// carried out later (the container actor drops it), so a timeout never
// means "done after all".
const (
	quickDeadline = 15 * time.Second
	startDeadline = 3 * time.Minute
	behindStart   = startDeadline
)

func idParam(ctx *fasthttp.RequestCtx) string {
	id, _ := ctx.UserValue("id").(string)
	return id
}

func (s *Server) containerCreate(ctx *fasthttp.RequestCtx) {
	var req container.CreateRequest
	if err := decodeJSON(ctx, &req); err != nil {
		writeError(ctx, err)
		return
	}
	if req.Config == nil {
		writeError(ctx, messages.InvalidParameter("config cannot be empty in order to create a container"))
		return
	}
	platform, err := platformParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Containers, &messages.CreateContainer{
		Name:             string(ctx.QueryArgs().Peek("name")),
		Platform:         platform,
		Config:           req.Config,
		HostConfig:       req.HostConfig,
		NetworkingConfig: req.NetworkingConfig,
	}, time.Minute)
	if err != nil {
		writeError(ctx, err)
		return
	}
	r := res.(*messages.CreateContainerReply)
	writeJSON(ctx, fasthttp.StatusCreated, container.CreateResponse{ID: r.ID, Warnings: r.Warnings})
}

func (s *Server) containerList(ctx *fasthttp.RequestCtx) {
	filters, err := filtersParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	limit, err := intParam(ctx, "limit", -1)
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Containers, &messages.ListContainers{
		All: boolParam(ctx, "all"), Limit: limit, Size: boolParam(ctx, "size"), Filters: filters,
	}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.ListContainersReply).Containers)
}

func (s *Server) containerInspect(ctx *fasthttp.RequestCtx) {
	res, err := s.ask(s.sys.Containers, &messages.InspectContainer{Ref: messages.Ref{ID: idParam(ctx)}, Size: boolParam(ctx, "size")}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.InspectContainerReply).Container)
}

func (s *Server) containerStart(ctx *fasthttp.RequestCtx) {
	if _, err := s.ask(s.sys.Containers, &messages.StartContainer{Ref: messages.Ref{ID: idParam(ctx)}}, startDeadline+behindStart); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) containerStop(ctx *fasthttp.RequestCtx) {
	timeout, wait, err := stopTimeout(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	msg := &messages.StopContainer{Ref: messages.Ref{ID: idParam(ctx)}, Signal: string(ctx.QueryArgs().Peek("signal")), Timeout: timeout}
	if _, err := s.ask(s.sys.Containers, msg, wait+behindStart); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// stopTimeout reads t (seconds; -1 waits forever) and gives the deadline
// to wait for the actor.
func stopTimeout(ctx *fasthttp.RequestCtx) (*time.Duration, time.Duration, error) {
	if !ctx.QueryArgs().Has("t") {
		return nil, 10*time.Second + quickDeadline, nil
	}
	t, err := intParam(ctx, "t", 10)
	if err != nil {
		return nil, 0, err
	}
	d := time.Duration(t) * time.Second
	if t < 0 {
		return &d, 24 * time.Hour, nil
	}
	return &d, d + quickDeadline, nil
}

func (s *Server) containerRestart(ctx *fasthttp.RequestCtx) {
	timeout, wait, err := stopTimeout(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	msg := &messages.RestartContainer{Ref: messages.Ref{ID: idParam(ctx)}, Signal: string(ctx.QueryArgs().Peek("signal")), Timeout: timeout}
	if _, err := s.ask(s.sys.Containers, msg, wait+startDeadline+behindStart); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) containerRename(ctx *fasthttp.RequestCtx) {
	msg := &messages.RenameContainer{Ref: messages.Ref{ID: idParam(ctx)}, Name: string(ctx.QueryArgs().Peek("name"))}
	if _, err := s.ask(s.sys.Containers, msg, quickDeadline); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) containerKill(ctx *fasthttp.RequestCtx) {
	msg := &messages.KillContainer{Ref: messages.Ref{ID: idParam(ctx)}, Signal: string(ctx.QueryArgs().Peek("signal"))}
	if _, err := s.ask(s.sys.Containers, msg, quickDeadline+behindStart); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) containerRemove(ctx *fasthttp.RequestCtx) {
	msg := &messages.RemoveContainer{Ref: messages.Ref{ID: idParam(ctx)}, Force: boolParam(ctx, "force"), RemoveVolumes: boolParam(ctx, "v")}
	if _, err := s.ask(s.sys.Containers, msg, time.Minute+behindStart); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

var waitConditions = map[string]container.WaitCondition{
	"":            container.WaitConditionNotRunning,
	"not-running": container.WaitConditionNotRunning,
	"next-exit":   container.WaitConditionNextExit,
	"removed":     container.WaitConditionRemoved,
}

// containerWait sends the headers at once and the result when it comes, as
// dockerd does: clients issue the wait before start and block on headers.
func (s *Server) containerWait(ctx *fasthttp.RequestCtx) {
	cond, ok := waitConditions[string(ctx.QueryArgs().Peek("condition"))]
	if !ok {
		writeError(ctx, messages.InvalidParameter("invalid condition: %q", ctx.QueryArgs().Peek("condition")))
		return
	}
	result := make(chan messages.WaitReply, 1)
	if _, err := s.ask(s.sys.Containers, &messages.WaitContainerStream{Ref: messages.Ref{ID: idParam(ctx)}, Condition: cond, Result: result}, quickDeadline+behindStart); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	streamNow(ctx)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		if err := w.Flush(); err != nil {
			return
		}
		r := <-result
		resp := container.WaitResponse{StatusCode: r.ExitCode}
		if r.Error != "" {
			resp.Error = &container.WaitExitError{Message: r.Error}
		}
		b, _ := json.Marshal(resp)
		w.Write(append(b, '\n'))
		w.Flush()
	})
}

func (s *Server) containerResize(ctx *fasthttp.RequestCtx) {
	h, errH := strconv.ParseUint(string(ctx.QueryArgs().Peek("h")), 10, 16)
	w, errW := strconv.ParseUint(string(ctx.QueryArgs().Peek("w")), 10, 16)
	if errH != nil || errW != nil {
		writeError(ctx, messages.InvalidParameter("invalid resize: h=%q w=%q", ctx.QueryArgs().Peek("h"), ctx.QueryArgs().Peek("w")))
		return
	}
	msg := &messages.ResizeContainer{Ref: messages.Ref{ID: idParam(ctx)}, Height: uint16(h), Width: uint16(w)}
	if _, err := s.ask(s.sys.Containers, msg, quickDeadline+behindStart); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
}

func (s *Server) containerAttach(ctx *fasthttp.RequestCtx) {
	msg := &messages.AttachContainer{
		Ref:        messages.Ref{ID: idParam(ctx)},
		Stdin:      boolParam(ctx, "stdin"),
		Stdout:     boolParam(ctx, "stdout"),
		Stderr:     boolParam(ctx, "stderr"),
		Logs:       boolParam(ctx, "logs"),
		Stream:     boolParam(ctx, "stream"),
		DetachKeys: string(ctx.QueryArgs().Peek("detachKeys")),
	}
	res, err := s.ask(s.sys.Containers, msg, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.hijackAttach(ctx, res.(*messages.AttachReply))
}

func (s *Server) containerLogs(ctx *fasthttp.RequestCtx) {
	q := ctx.QueryArgs()
	msg := &messages.ContainerLogs{
		Ref:        messages.Ref{ID: idParam(ctx)},
		Follow:     boolParam(ctx, "follow"),
		Stdout:     boolParam(ctx, "stdout"),
		Stderr:     boolParam(ctx, "stderr"),
		Timestamps: boolParam(ctx, "timestamps"),
		Tail:       -1,
	}
	if !msg.Stdout && !msg.Stderr {
		writeError(ctx, messages.InvalidParameter("Bad parameters: you must choose at least one stream"))
		return
	}
	if t := string(q.Peek("tail")); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			writeError(ctx, messages.InvalidParameter("invalid value for tail: %q", t))
			return
		}
		msg.Tail = n
	}
	var err error
	if msg.Since, err = parseTimestamp(string(q.Peek("since"))); err != nil {
		writeError(ctx, err)
		return
	}
	if msg.Until, err = parseTimestamp(string(q.Peek("until"))); err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Containers, msg, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	reply := res.(*messages.LogsReply)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(streamMediaType(ctx, reply.Tty))
	filter := containerlog.Filter{Stdout: msg.Stdout, Stderr: msg.Stderr, Since: msg.Since, Until: msg.Until, Tail: msg.Tail}
	streamNow(ctx)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		fw := &frameWriter{w: w, raw: reply.Tty, timestamps: msg.Timestamps}
		err := reply.Log.Read(filter, func(e containerlog.Entry) error {
			return fw.write(containerlog.StreamNumber(e.Stream), []byte(e.Log), e.Time)
		})
		reply.Log.Close()
		if err == nil {
			err = w.Flush()
		}
		if reply.Live == nil {
			return
		}
		defer reply.Live.Close()
		if err != nil {
			return
		}
		for {
			f, ok := reply.Live.Next()
			if !ok {
				return
			}
			if (f.Stream == 1 && !msg.Stdout) || (f.Stream == 2 && !msg.Stderr) {
				continue
			}
			if !msg.Until.IsZero() && f.Time.After(msg.Until) {
				return
			}
			if fw.write(f.Stream, f.Data, f.Time) != nil || w.Flush() != nil {
				return
			}
		}
	})
}

// parseTimestamp accepts Docker's since/until forms: Unix seconds with an
// optional fraction, or RFC 3339.
func parseTimestamp(v string) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, messages.InvalidParameter("invalid timestamp: %q", v)
}

func (s *Server) containerPrune(ctx *fasthttp.RequestCtx) {
	filters, err := filtersParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Containers, &messages.PruneContainers{Filters: filters}, 5*time.Minute)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, container.PruneReport{ContainersDeleted: res.(*messages.PruneContainersReply).Deleted})
}
