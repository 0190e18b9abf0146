package httpfront

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

func (s *Server) containerPause(ctx *fasthttp.RequestCtx) {
	if _, err := s.ask(s.sys.Containers, &messages.PauseContainer{Ref: messages.Ref{ID: idParam(ctx)}}, time.Minute+behindStart); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) containerUnpause(ctx *fasthttp.RequestCtx) {
	if _, err := s.ask(s.sys.Containers, &messages.UnpauseContainer{Ref: messages.Ref{ID: idParam(ctx)}}, time.Minute+behindStart); err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) containerTop(ctx *fasthttp.RequestCtx) {
	res, err := s.ask(s.sys.Containers, &messages.TopContainer{Ref: messages.Ref{ID: idParam(ctx)}, PsArgs: string(ctx.QueryArgs().Peek("ps_args"))}, quickDeadline+behindStart)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.TopReply).Top)
}

// containerStats samples the guest once a second. Without streaming it
// takes two samples a second apart, so the CPU percentage has a base, as
// dockerd does; one-shot takes one.
func (s *Server) containerStats(ctx *fasthttp.RequestCtx) {
	stream := !ctx.QueryArgs().Has("stream") || boolParam(ctx, "stream")
	oneShot := boolParam(ctx, "one-shot")
	if oneShot && stream {
		writeError(ctx, messages.InvalidParameter("cannot have stream=true and one-shot=true"))
		return
	}
	msg := &messages.StatsContainer{Ref: messages.Ref{ID: idParam(ctx)}}
	sample := func() (*messages.StatsReply, error) {
		res, err := s.ask(s.sys.Containers, msg, quickDeadline+behindStart)
		if err != nil {
			return nil, err
		}
		return res.(*messages.StatsReply), nil
	}
	first, err := sample()
	if err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	streamNow(ctx)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		enc := json.NewEncoder(w)
		var prev *container.StatsResponse
		cur := first
		for i := 0; ; i++ {
			resp := statsResponse(cur, prev)
			if !stream && !oneShot && i == 0 {
				prev = &resp // the base for the one sample sent
			} else {
				if enc.Encode(resp) != nil || w.Flush() != nil {
					return
				}
				if !stream {
					return
				}
				prev = &resp
			}
			time.Sleep(time.Second)
			next, err := sample()
			if err != nil {
				return // the container is gone
			}
			cur = next
		}
	})
}

// statsResponse is Docker's stats JSON for a sample, with prev as the
// pre-sample.
func statsResponse(r *messages.StatsReply, prev *container.StatsResponse) container.StatsResponse {
	out := container.StatsResponse{ID: r.ID, Name: r.Name, OSType: "linux", Read: time.Now()}
	if prev != nil {
		out.PreRead = prev.Read
		out.PreCPUStats = prev.CPUStats
	}
	if !r.Running {
		return out
	}
	st := r.Stats
	out.Read = st.Read
	out.CPUStats = container.CPUStats{
		CPUUsage: container.CPUUsage{
			TotalUsage: st.CPUTotal, PercpuUsage: st.PerCPU,
			UsageInKernelmode: st.CPUSystem, UsageInUsermode: st.CPUUser,
		},
		SystemUsage: st.SystemCPU,
		OnlineCPUs:  st.OnlineCPUs,
	}
	out.MemoryStats = container.MemoryStats{Usage: st.MemoryUsage, Limit: st.MemoryLimit, Stats: st.MemoryStats}
	out.PidsStats = container.PidsStats{Current: st.PidsCurrent, Limit: st.PidsLimit}
	if len(st.Networks) > 0 {
		out.Networks = map[string]container.NetworkStats{}
		for name, n := range st.Networks {
			out.Networks[name] = container.NetworkStats{
				RxBytes: n.RxBytes, RxPackets: n.RxPackets, RxErrors: n.RxErrors, RxDropped: n.RxDropped,
				TxBytes: n.TxBytes, TxPackets: n.TxPackets, TxErrors: n.TxErrors, TxDropped: n.TxDropped,
			}
		}
	}
	for _, b := range st.Blkio {
		out.BlkioStats.IoServiceBytesRecursive = append(out.BlkioStats.IoServiceBytesRecursive,
			container.BlkioStatEntry{Major: b.Major, Minor: b.Minor, Op: b.Op, Value: b.Value})
	}
	return out
}

// filesDeadline bounds a file request's wait for its reply: a start it
// waits for, the boot of a machine for the files, and the agent's answer.
const filesDeadline = startDeadline + 5*time.Minute

// fileRequest is the common part of a file operation's message, and the
// function to call once its reply has been used (or the request given
// up): the container actor then lets the files go.
func fileRequest(id string) (messages.FileRequest, func()) {
	gone := make(chan struct{})
	var once sync.Once
	return messages.FileRequest{Ref: messages.Ref{ID: id}, Gone: gone}, func() { once.Do(func() { close(gone) }) }
}

// Linux's PATH_MAX and NAME_MAX: a longer path or name is a client error
// (ENAMETOOLONG), not one for the agent to meet.
const (
	pathMax = 4096
	nameMax = 255
)

// procMagic matches /proc/<pid>/{root,cwd,exe,fd,map_files}: magic links
// into other processes' views, which the agent never follows.
var procMagic = regexp.MustCompile(`^/proc/[^/]+/(root|cwd|exe|fd|map_files)(/|$)`)

// pathParam is the archive path, refused early when no filesystem could
// hold it.
func pathParam(ctx *fasthttp.RequestCtx) (string, error) {
	p := string(ctx.QueryArgs().Peek("path"))
	if p == "" {
		return "", messages.InvalidParameter("path is required")
	}
	return p, checkArchivePath(p)
}

func checkArchivePath(p string) error {
	if strings.IndexByte(p, 0) >= 0 {
		return messages.InvalidParameter("invalid path %q: it contains a NUL byte", p)
	}
	if len(p) >= pathMax {
		return messages.InvalidParameter("invalid path: file name too long (%d bytes, at most %d)", len(p), pathMax-1)
	}
	for _, name := range strings.Split(p, "/") {
		if len(name) > nameMax {
			return messages.InvalidParameter("invalid path: file name too long (a name of %d bytes, at most %d)", len(name), nameMax)
		}
	}
	if procMagic.MatchString(path.Clean("/" + p)) {
		return messages.InvalidParameter("invalid path %q: /proc/<pid>/root, cwd, exe, fd and map_files are not followed", p)
	}
	return nil
}

// setPathStat sets the header docker cp reads.
func setPathStat(ctx *fasthttp.RequestCtx, st container.PathStat) {
	b, _ := json.Marshal(st)
	ctx.Response.Header.Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
}

func (s *Server) archiveHead(ctx *fasthttp.RequestCtx) {
	path, err := pathParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	req, done := fileRequest(idParam(ctx))
	defer done()
	res, err := s.ask(s.sys.Containers, &messages.StatPath{FileRequest: req, Path: path}, filesDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	setPathStat(ctx, res.(*messages.StatPathReply).Stat)
	ctx.SetStatusCode(fasthttp.StatusOK)
}

func (s *Server) archiveGet(ctx *fasthttp.RequestCtx) {
	path, err := pathParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	req, done := fileRequest(idParam(ctx))
	res, err := s.ask(s.sys.Containers, &messages.GetArchive{FileRequest: req, Path: path}, filesDeadline)
	if err != nil {
		done()
		writeError(ctx, err)
		return
	}
	reply := res.(*messages.GetArchiveReply)
	setPathStat(ctx, reply.Stat)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/x-tar")
	s.streamArchive(ctx, reply.Archive, done, "")
}

// streamArchive sends a tar from the container actor as the response
// body. A client that hangs up fails a write: the archive is closed
// then too, which ends the agent call and lets the files go. A failure
// is logged as what, unless what is empty.
func (s *Server) streamArchive(ctx *fasthttp.RequestCtx, tr io.ReadCloser, done func(), what string) {
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer done()
		defer tr.Close()
		if _, err := io.Copy(w, tr); err != nil {
			if what != "" {
				s.log.Warn(what, "err", err)
			}
			return
		}
		w.Flush()
	})
}

// archivePut extracts the request body into a directory of the container.
// The body stream is only valid while this handler runs: the container
// actor reads it through a lentBody, which this handler takes back.
func (s *Server) archivePut(ctx *fasthttp.RequestCtx) {
	path, err := pathParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var body io.Reader = &stickyEOF{r: ctx.RequestBodyStream()}
	if ctx.RequestBodyStream() == nil {
		body = bytesReader(ctx.PostBody())
	}
	lent := &lentBody{r: body}
	req, done := fileRequest(idParam(ctx))
	_, err = s.ask(s.sys.Containers, &messages.PutArchive{
		FileRequest: req, Path: path, Body: lent,
		NoOverwriteDirNonDir: boolParam(ctx, "noOverwriteDirNonDir"),
		CopyUIDGID:           boolParam(ctx, "copyUIDGID"),
	}, imageBuildDeadline+filesDeadline)
	done()
	lent.takeBack()
	io.Copy(io.Discard, body) // a client must not block on an unread body
	if err != nil {
		writeError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
}

// lentBody lends a request body to another goroutine until the handler
// takes it back: reads after that fail, and takeBack waits for a read
// under way.
type lentBody struct {
	mu   sync.Mutex
	r    io.Reader
	back bool
}

var errBodyTakenBack = errors.New("the request is over")

func (b *lentBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.back {
		return 0, errBodyTakenBack
	}
	return b.r.Read(p)
}

func (b *lentBody) takeBack() {
	b.mu.Lock()
	b.back = true
	b.mu.Unlock()
}

// containerChanges is docker diff: the agent compares the writable layer
// with the image's, for a stopped container in a machine booted for it.
func (s *Server) containerChanges(ctx *fasthttp.RequestCtx) {
	req, done := fileRequest(idParam(ctx))
	defer done()
	res, err := s.ask(s.sys.Containers, &messages.ContainerChanges{FileRequest: req}, filesDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.ContainerChangesReply).Changes)
}
