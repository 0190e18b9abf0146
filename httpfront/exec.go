package httpfront

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

func (s *Server) execCreate(ctx *fasthttp.RequestCtx) {
	var req container.ExecCreateRequest
	if err := decodeJSON(ctx, &req); err != nil {
		writeError(ctx, err)
		return
	}
	res, err := s.ask(s.sys.Containers, &messages.CreateExec{Ref: messages.Ref{ID: idParam(ctx)}, Config: req}, quickDeadline+behindStart)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, container.ExecCreateResponse{ID: res.(*messages.CreateExecReply).ID})
}

func (s *Server) execStart(ctx *fasthttp.RequestCtx) {
	var req container.ExecStartRequest
	if err := decodeJSON(ctx, &req); err != nil {
		writeError(ctx, err)
		return
	}
	msg := &messages.StartExec{Exec: messages.Exec{ExecID: idParam(ctx)}, Detach: req.Detach, Tty: req.Tty, ConsoleSize: req.ConsoleSize}
	if req.Detach {
		if _, err := s.ask(s.sys.Containers, msg, time.Minute+behindStart); err != nil {
			writeError(ctx, err)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusOK)
		return
	}
	// Errors known up front get a status; then the connection is upgraded
	// before the process starts, as dockerd does: SDKs that read the raw
	// socket after the upgrade would lose output sent along with it.
	check := *msg
	check.Check = true
	if _, err := s.ask(s.sys.Containers, &check, quickDeadline+behindStart); err != nil {
		writeError(ctx, err)
		return
	}
	// docker-py reads the upgraded stream from the raw socket under the
	// buffered reader that parsed the response headers: output that came
	// in the same read as the headers is lost. dockerd's exec takes tens
	// of milliseconds to start (runc), which hides this; a machine's agent
	// starts a process in a few, so for that client the start waits a
	// little after the upgrade.
	settle := strings.HasPrefix(string(ctx.UserAgent()), "docker-sdk-python")
	s.hijack(ctx, streamMediaType(ctx, req.Tty), func(c, raw net.Conn, bw *bufio.Writer) {
		defer raw.Close()
		if settle {
			time.Sleep(dockerPySettle)
		}
		res, err := s.ask(s.sys.Containers, msg, time.Minute+behindStart)
		var reply *messages.StartExecReply
		if err == nil {
			reply = res.(*messages.StartExecReply)
			if reply.StartError != "" {
				err = errors.New(reply.StartError)
			}
		}
		if err != nil {
			// Too late for a status: dockerd writes it into the stream.
			fw := &frameWriter{w: bw, raw: req.Tty}
			fw.write(1, []byte(err.Error()+"\r\n"), time.Time{})
			bw.Flush()
			return
		}
		pumpExec(c, raw, bw, reply)
	})
}

// dockerPySettle is how long an exec start waits after the upgrade for
// docker-py to have read the response headers.
const dockerPySettle = 100 * time.Millisecond

// pumpExec carries an attached exec's streams until its output ends and its
// exit code is recorded.
func pumpExec(c, raw net.Conn, bw *bufio.Writer, reply *messages.StartExecReply) {
	var in sync.WaitGroup
	if reply.Stdin != nil {
		copyStdin(&in, reply.Stdin, c, true, nil, nil)
	}
	// stdout and stderr are separate agent streams: frame both onto the
	// one connection.
	var mu sync.Mutex
	fw := &frameWriter{w: bw, raw: reply.Tty}
	pump := func(stream int, r io.Reader, wg *sync.WaitGroup) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				mu.Lock()
				werr := fw.write(stream, buf[:n], time.Time{})
				if werr == nil {
					werr = bw.Flush()
				}
				mu.Unlock()
				if werr != nil {
					io.Copy(io.Discard, r) // keep the process unblocked
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	var out sync.WaitGroup
	out.Add(1)
	go pump(1, reply.Stdout, &out)
	if reply.Stderr != nil {
		out.Add(1)
		go pump(2, reply.Stderr, &out)
	}
	out.Wait()
	// The exit code is recorded before the stream ends, so the client's
	// inspect right after sees it.
	select {
	case <-reply.Done:
	case <-time.After(5 * time.Second):
	}
	raw.Close()
	in.Wait()
}

func (s *Server) execInspect(ctx *fasthttp.RequestCtx) {
	res, err := s.ask(s.sys.Containers, &messages.InspectExec{Exec: messages.Exec{ExecID: idParam(ctx)}}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.InspectExecReply).Exec)
}

func (s *Server) execResize(ctx *fasthttp.RequestCtx) {
	h, errH := strconv.ParseUint(string(ctx.QueryArgs().Peek("h")), 10, 16)
	w, errW := strconv.ParseUint(string(ctx.QueryArgs().Peek("w")), 10, 16)
	if errH != nil || errW != nil {
		writeError(ctx, messages.InvalidParameter("invalid resize: h=%q w=%q", ctx.QueryArgs().Peek("h"), ctx.QueryArgs().Peek("w")))
		return
	}
	msg := &messages.ResizeExec{Exec: messages.Exec{ExecID: idParam(ctx)}, Height: uint16(h), Width: uint16(w)}
	if _, err := s.ask(s.sys.Containers, msg, quickDeadline); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
}
