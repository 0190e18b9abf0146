package httpfront

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/guest/wire"
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

// withFiles runs f with an agent that reaches the container's files, and
// words a missing path as dockerd does.
func (s *Server) withFiles(ctx *fasthttp.RequestCtx, f func(c *wire.Client, reply *messages.AcquireFilesystemReply) error) {
	res, err := s.ask(s.sys.Containers, &messages.AcquireFilesystem{Ref: messages.Ref{ID: idParam(ctx)}}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	reply := res.(*messages.AcquireFilesystemReply)
	c, err := reply.Lease.Wait()
	if err != nil {
		reply.Lease.Release()
		writeError(ctx, messages.Internal("reach the container's files: %v", err))
		return
	}
	if err := f(c, reply); err != nil {
		reply.Lease.Release()
		if wire.KindOf(err) == wire.KindNotFound {
			err = messages.NotFound("Could not find the file %s in container %s", ctx.QueryArgs().Peek("path"), idParam(ctx))
		} else {
			err = archiveError(err)
		}
		writeError(ctx, err)
		return
	}
}

func archiveError(err error) error {
	switch wire.KindOf(err) {
	case wire.KindInvalid:
		return messages.InvalidParameter("%v", err)
	case wire.KindPermission:
		return messages.Forbidden("%v", err)
	case wire.KindConflict:
		return messages.Conflict("%v", err)
	}
	return messages.Internal("%v", err)
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
func setPathStat(ctx *fasthttp.RequestCtx, st wire.PathStat) {
	b, _ := json.Marshal(container.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: st.Mtime, LinkTarget: st.LinkTarget})
	ctx.Response.Header.Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
}

func (s *Server) archiveHead(ctx *fasthttp.RequestCtx) {
	path, err := pathParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.withFiles(ctx, func(c *wire.Client, reply *messages.AcquireFilesystemReply) error {
		defer reply.Lease.Release()
		cctx, cancel := contextDeadline(30 * time.Second)
		defer cancel()
		st, err := c.ArchiveStat(cctx, path)
		if err != nil {
			return err
		}
		setPathStat(ctx, st)
		ctx.SetStatusCode(fasthttp.StatusOK)
		return nil
	})
}

func (s *Server) archiveGet(ctx *fasthttp.RequestCtx) {
	path, err := pathParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.withFiles(ctx, func(c *wire.Client, reply *messages.AcquireFilesystemReply) error {
		cctx, cancel := contextDeadline(time.Hour)
		tr, st, err := c.ArchiveGet(cctx, path)
		if err != nil {
			cancel()
			return err
		}
		setPathStat(ctx, st)
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/x-tar")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			defer reply.Lease.Release()
			defer cancel()
			defer tr.Close()
			if _, err := io.Copy(w, tr); err == nil {
				w.Flush()
			}
		})
		return nil
	})
}

// archivePut extracts the request body into a directory of the container.
// The body stream is only valid while this handler runs, so it waits.
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
	s.withFiles(ctx, func(c *wire.Client, reply *messages.AcquireFilesystemReply) error {
		defer reply.Lease.Release()
		cctx, cancel := contextDeadline(time.Hour)
		defer cancel()
		opts := wire.ArchivePutOptions{
			NoOverwriteDirNonDir: boolParam(ctx, "noOverwriteDirNonDir"),
			CopyUIDGID:           boolParam(ctx, "copyUIDGID"),
			User:                 reply.User,
		}
		if err := c.ArchivePut(cctx, path, body, opts); err != nil {
			io.Copy(io.Discard, body)
			return err
		}
		ctx.SetStatusCode(fasthttp.StatusOK)
		return nil
	})
}

// containerChanges is docker diff: the agent compares the writable layer
// with the image's, for a stopped container in a machine booted for it.
// Sorted by path, as dockerd sends them.
func (s *Server) containerChanges(ctx *fasthttp.RequestCtx) {
	s.withFiles(ctx, func(c *wire.Client, reply *messages.AcquireFilesystemReply) error {
		defer reply.Lease.Release()
		cctx, cancel := contextDeadline(5 * time.Minute)
		defer cancel()
		changes, err := c.Changes(cctx)
		if err != nil {
			return err
		}
		out := make([]container.FilesystemChange, len(changes))
		for i, ch := range changes {
			out[i] = container.FilesystemChange{Path: ch.Path, Kind: container.ChangeType(ch.Kind)}
		}
		slices.SortFunc(out, func(a, b container.FilesystemChange) int { return strings.Compare(a.Path, b.Path) })
		writeJSON(ctx, fasthttp.StatusOK, out)
		return nil
	})
}
