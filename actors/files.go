package actors

import (
	"context"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
)

// The container's files for cp, diff, export and commit. Each request is
// one agent call made off the mailbox, with the running machine's agent
// or, for a container that is not running, with a machine booted without
// a main process. The agent session stays here: a requester gets the
// call's result, or a stream whose Close ends the call.

// fsBoot is the outcome of getting an agent for file access; ready is
// closed once client or err is set.
type fsBoot struct {
	ready  chan struct{}
	client *wire.Client
	err    error
}

// fsMachine is the machine booted for file access to a container that is
// not running. Requests that overlap share it; the last one done powers
// it off.
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

// filesHold is one request's hold on an agent that reaches the files.
type filesHold struct {
	boot    *fsBoot
	release func() // lets a booted machine go; once, from any goroutine
}

// holdFiles gets the running agent, or a ref on the machine for the
// files (booting it if none is up or booting).
func (a *containerActor) holdFiles(ctx actor.Context) filesHold {
	rt := a.rt
	if rt.client != nil {
		boot := &fsBoot{ready: make(chan struct{}), client: rt.client}
		close(boot.ready)
		return filesHold{boot: boot, release: func() {}}
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
	var once sync.Once
	return filesHold{boot: rt.fs.boot, release: func() { once.Do(func() { sys.Root.Send(self, &fsRelease{}) }) }}
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

// fileCall is one file operation under way off the mailbox.
type fileCall struct {
	c *wire.Client
	// life ends when the requester is gone or the call is done: the
	// agent call's contexts derive from it.
	life     context.Context
	done     func() // ends life and releases the hold; once
	streamed bool
}

// stream hands rc to the requester: its Close, or the requester going,
// ends the call and releases the hold.
func (fc *fileCall) stream(rc io.ReadCloser) io.ReadCloser {
	fc.streamed = true
	s := &fileStream{rc: rc, done: fc.done}
	context.AfterFunc(fc.life, func() { s.Close() })
	return s
}

type fileStream struct {
	rc   io.ReadCloser
	done func()
	once sync.Once
	err  error
}

func (s *fileStream) Read(p []byte) (int, error) { return s.rc.Read(p) }

func (s *fileStream) Close() error {
	s.once.Do(func() {
		s.err = s.rc.Close()
		s.done()
	})
	return s.err
}

// untilGone is a context that ends when gone is closed (never for nil)
// or when it is cancelled.
func untilGone(gone <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	if gone != nil {
		go func() {
			select {
			case <-gone:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

var errRequesterGone = messages.Unavailable("the requester of the files is gone")

// files runs op with an agent that reaches the container's files, off
// the mailbox, and answers the requester with its reply or its error in
// dockerd's words (path names the file a missing one is).
func (a *containerActor) files(ctx actor.Context, req messages.FileRequest, path string, op func(fc *fileCall) (any, error)) {
	if isClosed(req.Gone) {
		// Given up while the request waited: no machine for no one.
		ctx.Respond(errRequesterGone)
		return
	}
	h := a.holdFiles(ctx)
	ref := req.ContainerRef()
	respondLater(ctx, func() any {
		life, end := untilGone(req.Gone)
		var once sync.Once
		fc := &fileCall{life: life, done: func() { once.Do(func() { end(); h.release() }) }}
		handed := false // to the requester, with a stream
		defer func() {
			if !handed {
				fc.done() // a panic too must not keep the files
			}
		}()
		select {
		case <-h.boot.ready:
		case <-life.Done():
			return errRequesterGone
		}
		if h.boot.err != nil {
			return messages.Internal("reach the container's files: %v", h.boot.err)
		}
		fc.c = h.boot.client
		res, err := op(fc)
		if err != nil {
			return fileError(err, path, ref)
		}
		handed = fc.streamed
		return res
	})
}

// fileError words a failed file operation as dockerd does: a missing
// path is "Could not find the file", the rest by the agent's kind.
func fileError(err error, path, ref string) error {
	if path != "" && wire.KindOf(err) == wire.KindNotFound {
		return messages.NotFound("Could not find the file %s in container %s", path, ref)
	}
	return guestError(err)
}

func pathStat(st wire.PathStat) container.PathStat {
	return container.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: st.Mtime, LinkTarget: st.LinkTarget}
}

func (a *containerActor) statPath(ctx actor.Context, m *messages.StatPath) {
	a.files(ctx, m.FileRequest, m.Path, func(fc *fileCall) (any, error) {
		sctx, cancel := context.WithTimeout(fc.life, 30*time.Second)
		defer cancel()
		st, err := fc.c.ArchiveStat(sctx, m.Path)
		if err != nil {
			return nil, err
		}
		return &messages.StatPathReply{Stat: pathStat(st)}, nil
	})
}

func (a *containerActor) getArchive(ctx actor.Context, m *messages.GetArchive) {
	a.files(ctx, m.FileRequest, m.Path, func(fc *fileCall) (any, error) {
		sctx, cancel := context.WithTimeout(fc.life, time.Hour) // bounds the start only
		defer cancel()
		tr, st, err := fc.c.ArchiveGet(sctx, m.Path)
		if err != nil {
			return nil, err
		}
		return &messages.GetArchiveReply{Stat: pathStat(st), Archive: fc.stream(tr)}, nil
	})
}

func (a *containerActor) putArchive(ctx actor.Context, m *messages.PutArchive) {
	opts := wire.ArchivePutOptions{NoOverwriteDirNonDir: m.NoOverwriteDirNonDir, CopyUIDGID: m.CopyUIDGID, User: a.rt.rec.Config.User}
	a.files(ctx, m.FileRequest, m.Path, func(fc *fileCall) (any, error) {
		sctx, cancel := context.WithTimeout(fc.life, time.Hour)
		defer cancel()
		if err := fc.c.ArchivePut(sctx, m.Path, m.Body, opts); err != nil {
			return nil, err
		}
		return &messages.Accepted{}, nil
	})
}

// changes is docker diff: the agent compares the writable layer with the
// image's.
func (a *containerActor) changes(ctx actor.Context, m *messages.ContainerChanges) {
	a.files(ctx, m.FileRequest, "", func(fc *fileCall) (any, error) {
		sctx, cancel := context.WithTimeout(fc.life, 5*time.Minute)
		defer cancel()
		changes, err := fc.c.Changes(sctx)
		if err != nil {
			return nil, err
		}
		out := make([]container.FilesystemChange, len(changes))
		for i, ch := range changes {
			out[i] = container.FilesystemChange{Path: ch.Path, Kind: container.ChangeType(ch.Kind)}
		}
		slices.SortFunc(out, func(a, b container.FilesystemChange) int { return strings.Compare(a.Path, b.Path) })
		return &messages.ContainerChangesReply{Changes: out}, nil
	})
}

func (a *containerActor) export(ctx actor.Context, m *messages.ExportContainer) {
	what := wire.ExportRootfs
	if m.Kind == messages.ExportLayer {
		what = wire.ExportLayer
	}
	a.files(ctx, m.FileRequest, "", func(fc *fileCall) (any, error) {
		sctx, cancel := context.WithTimeout(fc.life, time.Hour) // bounds the start only
		defer cancel()
		tr, err := fc.c.Export(sctx, what)
		if err != nil {
			return nil, err
		}
		return &messages.ExportContainerReply{Archive: fc.stream(tr)}, nil
	})
}
