package actors

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// volumesActor owns the local volumes: records, data directories, and the
// rules for removing them. Volumes have no running state of their own (a
// mount is the container's), so one actor serves them all rather than one
// actor per volume; whether a volume is in use is asked of the containers
// supervisor, which knows every container's mounts.
type volumesActor struct {
	env    *Env
	byName map[string]*persistence.VolumeRecord
	// making: block volumes whose image is being made.
	making map[string]bool
	// block: who holds each block volume (see blockvolume.go).
	block blockClaims
}

// blockVolumeMade finishes a create once the image is made (the reply
// of createBlock's goroutine).
type blockVolumeMade struct {
	rec *persistence.VolumeRecord
	err error
}

// ensureVolumes creates the volumes a new container needs (a named one on
// first use, its anonymous ones); it replies with an error or Accepted.
type ensureVolumes struct {
	named, anonymous []string
}

// volumeDrivers answers ensureVolumes: each volume's driver.
type volumeDrivers struct{ byName map[string]string }

// dropVolumes removes a removed container's anonymous volumes (rm -v,
// --rm), unless another container uses them.
type dropVolumes struct {
	names   []string
	without string // the container being removed
}

func newVolumesActor(env *Env) actor.Producer {
	return func() actor.Actor {
		return &volumesActor{env: env, byName: map[string]*persistence.VolumeRecord{}, making: map[string]bool{}, block: newBlockClaims()}
	}
}

func (a *volumesActor) Kind() string  { return "volumes" }
func (a *volumesActor) State() string { return fmt.Sprintf("%d volumes", len(a.byName)) }

func (a *volumesActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		recs, err := a.env.Store.Volumes()
		if err != nil {
			panic(fmt.Sprintf("load volumes: %v", err))
		}
		for _, r := range recs {
			a.byName[r.Name] = r
		}
	case *messages.CreateVolume:
		if m.Request.Driver == blockDriver {
			a.createBlock(ctx, m.Request)
			return
		}
		v, err := a.create(ctx, m.Request.Name, m.Request.Driver, m.Request.Labels, m.Request.DriverOpts, false)
		if err != nil {
			ctx.Respond(err)
			return
		}
		ctx.Respond(&messages.VolumeReply{Volume: a.view(v)})
	case *ensureVolumes:
		for _, n := range m.named {
			if _, err := a.create(ctx, n, "", nil, nil, false); err != nil {
				ctx.Respond(err)
				return
			}
		}
		for _, n := range m.anonymous {
			if _, err := a.create(ctx, n, "", nil, nil, true); err != nil {
				ctx.Respond(err)
				return
			}
		}
		drivers := map[string]string{}
		for _, n := range append(m.named, m.anonymous...) {
			drivers[n] = a.byName[n].Driver
		}
		ctx.Respond(&volumeDrivers{byName: drivers})
	case *claimBlockVolumes:
		sender := ctx.Sender()
		a.block.claim(m, func(r any) { ctx.Send(sender, r) })
	case *drainBlockVolumes:
		a.block.drain(m.container)
	case *releaseBlockVolumes:
		a.block.release(m.container)
	case *messages.InspectVolume:
		v := a.byName[m.Name]
		if v == nil {
			ctx.Respond(messages.NotFound("get %s: no such volume", m.Name))
			return
		}
		ctx.Respond(&messages.VolumeReply{Volume: a.view(v)})
	case *messages.ListVolumes:
		a.list(ctx, m)
	case *messages.RemoveVolume:
		a.remove(ctx, m)
	case *messages.PruneVolumes:
		a.prune(ctx, m)
	case *messages.VolumeDiskUsage:
		a.diskUsage(ctx)
	case *dropVolumes:
		a.withRefs(ctx, func(refs map[string][]string, err error) {
			if err != nil {
				return
			}
			for _, n := range m.names {
				if len(otherThan(refs[n], m.without)) == 0 {
					_ = a.drop(ctx, n)
				}
			}
		})
	}
}

// create makes a volume, or returns the one of that name.
func (a *volumesActor) create(ctx actor.Context, name, driver string, labels, opts map[string]string, anon bool) (*persistence.VolumeRecord, error) {
	if driver == "" {
		driver = "local"
	}
	if driver != "local" {
		return nil, messages.NotFound("plugin %q not found", driver)
	}
	for k := range opts {
		// The local driver's options mount other filesystems; that is
		// not offered.
		return nil, messages.InvalidParameter("invalid option key: %q", k)
	}
	if name == "" {
		id, err := newContainerID()
		if err != nil {
			return nil, messages.Internal("volume name: %v", err)
		}
		name, anon = id, true
	}
	if !validVolumeName.MatchString(name) {
		return nil, messages.InvalidParameter("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed", name, name)
	}
	if err := volumeNameLength(name); err != nil {
		return nil, err
	}
	if v := a.byName[name]; v != nil {
		return v, nil
	}
	if a.making[name] {
		return nil, messages.Conflict("volume %s is being created", name)
	}
	r := &persistence.VolumeRecord{Name: name, Driver: driver, Labels: labels, Options: opts, CreatedAt: time.Now().UTC(), Anonymous: anon}
	if err := os.MkdirAll(a.env.volumeData(name), 0o755); err != nil {
		return nil, messages.Internal("create volume %s: %v", name, err)
	}
	if err := a.env.Store.PutVolume(r); err != nil {
		os.RemoveAll(filepath.Dir(a.env.volumeData(name)))
		return nil, messages.Internal("create volume %s: %v", name, err)
	}
	a.byName[name] = r
	a.env.publish(ctx, messages.NewEvent(events.VolumeEventType, events.ActionCreate, name, map[string]string{"driver": driver}))
	return r, nil
}

// createBlock makes a block volume: its image is made off the mailbox,
// and blockMade records it.
func (a *volumesActor) createBlock(ctx actor.Context, req volume.CreateRequest) {
	size, err := blockSize(req.DriverOpts)
	if err != nil {
		ctx.Respond(err)
		return
	}
	name := req.Name
	if name == "" {
		if name, err = newContainerID(); err != nil {
			ctx.Respond(messages.Internal("volume name: %v", err))
			return
		}
	}
	if !validVolumeName.MatchString(name) {
		ctx.Respond(messages.InvalidParameter("create %s: %q includes invalid characters for a volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed", name, name))
		return
	}
	if err := volumeNameLength(name); err != nil {
		ctx.Respond(err)
		return
	}
	if v := a.byName[name]; v != nil {
		if v.Driver != blockDriver {
			ctx.Respond(messages.Conflict("create %s: volume name already in use with driver %q", name, v.Driver))
			return
		}
		ctx.Respond(&messages.VolumeReply{Volume: a.view(v)})
		return
	}
	if a.making[name] {
		ctx.Respond(messages.Conflict("volume %s is being created", name))
		return
	}
	a.making[name] = true
	rec := &persistence.VolumeRecord{Name: name, Driver: blockDriver, Labels: req.Labels, Options: req.DriverOpts, CreatedAt: time.Now().UTC()}
	image := a.env.blockImage(name)
	f := actor.NewFuture(ctx.ActorSystem(), 2*time.Minute)
	goSafe(ctx.ActorSystem(), f.PID(), func() any {
		mctx, cancel := deadline(time.Minute)
		defer cancel()
		err := makeBlockImage(mctx, image, size)
		if err != nil {
			os.Remove(filepath.Dir(image))
		}
		return &blockVolumeMade{rec: rec, err: err}
	})
	ctx.ReenterAfter(f, func(res any, err error) {
		m, _ := res.(*blockVolumeMade)
		if m == nil {
			m = &blockVolumeMade{rec: rec, err: fmt.Errorf("make image: %v", err)}
		}
		a.blockMade(ctx, m)
	})
}

func (a *volumesActor) blockMade(ctx actor.Context, m *blockVolumeMade) {
	name := m.rec.Name
	delete(a.making, name)
	if m.err != nil {
		ctx.Respond(messages.Internal("create block volume %s: %v", name, m.err))
		return
	}
	if err := a.env.Store.PutVolume(m.rec); err != nil {
		os.RemoveAll(filepath.Dir(a.env.blockImage(name)))
		ctx.Respond(messages.Internal("create volume %s: %v", name, err))
		return
	}
	a.byName[name] = m.rec
	a.env.publish(ctx, messages.NewEvent(events.VolumeEventType, events.ActionCreate, name, map[string]string{"driver": blockDriver}))
	ctx.Respond(&messages.VolumeReply{Volume: a.view(m.rec)})
}

func (a *volumesActor) view(r *persistence.VolumeRecord) volume.Volume {
	mp := a.env.volumeData(r.Name)
	if r.Driver == blockDriver {
		mp = a.env.blockImage(r.Name) // mounted only inside the machine using it
	}
	v := volume.Volume{
		Name: r.Name, Driver: r.Driver, Mountpoint: mp, Scope: "local",
		CreatedAt: r.CreatedAt.Format(time.RFC3339), Labels: r.Labels, Options: r.Options,
	}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if v.Options == nil {
		v.Options = map[string]string{}
	}
	return v
}

// withRefs asks the containers supervisor who uses which volume and
// continues on the actor.
func (a *volumesActor) withRefs(ctx actor.Context, cont func(map[string][]string, error)) {
	ask(ctx, a.env.containers, &messages.VolumeRefs{}, 10*time.Second, func(res any, err error) {
		if err != nil {
			cont(nil, err)
			return
		}
		cont(res.(*messages.VolumeRefsReply).Refs, nil)
	})
}

func (a *volumesActor) remove(ctx actor.Context, m *messages.RemoveVolume) {
	if a.byName[m.Name] == nil {
		if m.Force {
			ctx.Respond(&messages.Accepted{})
			return
		}
		ctx.Respond(messages.NotFound("get %s: no such volume", m.Name))
		return
	}
	a.withRefs(ctx, func(refs map[string][]string, err error) {
		if err != nil {
			ctx.Respond(messages.Internal("remove %s: %v", m.Name, err))
			return
		}
		if users := refs[m.Name]; len(users) > 0 {
			ctx.Respond(messages.Conflict("remove %s: volume is in use - [%s]", m.Name, strings.Join(users, ", ")))
			return
		}
		// A block volume whose last container is gone but whose machine
		// is still powering off is removed once it is off.
		sender := ctx.Sender()
		a.block.whenFree(m.Name, func() {
			if err := a.drop(ctx, m.Name); err != nil {
				ctx.Send(sender, err)
				return
			}
			ctx.Send(sender, &messages.Accepted{})
		})
	})
}

// drop deletes a volume and its data.
func (a *volumesActor) drop(ctx actor.Context, name string) error {
	r := a.byName[name]
	if r == nil {
		return nil
	}
	if h := a.block.holder(name); h != "" {
		return messages.Conflict("remove %s: volume is in use - [%s]", name, h)
	}
	if r.Driver == blockDriver {
		// Its filesystem's mount point, which must not be mounted: the
		// removal below would go into it.
		mnt := filepath.Join(filepath.Dir(a.env.blockImage(name)), blockMountDir)
		if err := os.Remove(mnt); err != nil && !os.IsNotExist(err) {
			return messages.Conflict("remove %s: its filesystem is still mounted: %v", name, err)
		}
	}
	if err := a.env.Store.DeleteVolume(name); err != nil {
		return messages.Internal("remove %s: %v", name, err)
	}
	delete(a.byName, name)
	if err := os.RemoveAll(filepath.Dir(a.env.volumeData(name))); err != nil {
		a.env.Log.Warn("remove volume data", "volume", name, "err", err)
	}
	a.env.publish(ctx, messages.NewEvent(events.VolumeEventType, events.ActionDestroy, name, map[string]string{"driver": r.Driver}))
	return nil
}

var volumeFilterKeys = map[string]bool{"dangling": true, "name": true, "label": true, "driver": true}

func (a *volumesActor) list(ctx actor.Context, m *messages.ListVolumes) {
	for k, vals := range m.Filters {
		if !volumeFilterKeys[k] {
			ctx.Respond(messages.InvalidParameter("invalid filter '%s'", k))
			return
		}
		if k == "dangling" {
			for _, v := range vals {
				if v != "true" && v != "false" && v != "1" && v != "0" {
					ctx.Respond(messages.InvalidParameter("invalid filter 'dangling=%s'", v))
					return
				}
			}
		}
	}
	a.withRefs(ctx, func(refs map[string][]string, err error) {
		if err != nil {
			ctx.Respond(messages.Internal("list volumes: %v", err))
			return
		}
		out := []volume.Volume{}
		for _, r := range a.sorted() {
			if a.listed(r, m.Filters, refs) {
				out = append(out, a.view(r))
			}
		}
		ctx.Respond(&messages.ListVolumesReply{Volumes: out})
	})
}

func (a *volumesActor) listed(r *persistence.VolumeRecord, f map[string][]string, refs map[string][]string) bool {
	anyOf := func(key string, match func(string) bool) bool { return anyValue(f, key, match) }
	return anyOf("name", func(v string) bool { return strings.Contains(r.Name, v) }) &&
		anyOf("driver", func(v string) bool { return r.Driver == v }) &&
		anyOf("dangling", func(v string) bool { return (len(refs[r.Name]) == 0) == (v == "true" || v == "1") }) &&
		labelsMatch(r.Labels, map[string][]string{"label": f["label"]})
}

func (a *volumesActor) prune(ctx actor.Context, m *messages.PruneVolumes) {
	for k := range m.Filters {
		if k != "label" && k != "label!" && k != "all" {
			ctx.Respond(messages.InvalidParameter("invalid filter '%s'", k))
			return
		}
	}
	all := false
	for _, v := range m.Filters["all"] {
		all = v == "true" || v == "1"
	}
	a.withRefs(ctx, func(refs map[string][]string, err error) {
		if err != nil {
			ctx.Respond(messages.Internal("prune volumes: %v", err))
			return
		}
		rep := volume.PruneReport{VolumesDeleted: []string{}}
		for _, r := range a.sorted() {
			if len(refs[r.Name]) > 0 || (!all && !r.Anonymous) || !labelsMatch(r.Labels, m.Filters) {
				continue
			}
			size := dirSize(filepath.Dir(a.env.volumeData(r.Name)))
			if a.drop(ctx, r.Name) == nil {
				rep.VolumesDeleted = append(rep.VolumesDeleted, r.Name)
				rep.SpaceReclaimed += uint64(size)
			}
		}
		a.env.publish(ctx, messages.NewEvent(events.VolumeEventType, events.ActionPrune, "", nil))
		ctx.Respond(&messages.PruneVolumesReply{Report: rep})
	})
}

// diskUsage answers with every volume and its UsageData. The sizes are
// measured off the mailbox: a volume's data is host storage (its _data
// directory, or a block volume's image), so the host may walk it.
func (a *volumesActor) diskUsage(ctx actor.Context) {
	a.withRefs(ctx, func(refs map[string][]string, err error) {
		if err != nil {
			ctx.Respond(messages.Internal("volume usage: %v", err))
			return
		}
		type item struct {
			v    volume.Volume
			path string
		}
		var items []item
		for _, r := range a.sorted() {
			v := a.view(r)
			v.UsageData = &volume.UsageData{RefCount: int64(len(refs[r.Name]))}
			items = append(items, item{v: v, path: filepath.Dir(a.env.volumeData(r.Name))})
		}
		respondLater(ctx, func() any {
			out := make([]volume.Volume, 0, len(items))
			for _, it := range items {
				it.v.UsageData.Size = dirSize(it.path)
				out = append(out, it.v)
			}
			return &messages.VolumeDiskUsageReply{Volumes: out}
		})
	})
}

func (a *volumesActor) sorted() []*persistence.VolumeRecord {
	out := make([]*persistence.VolumeRecord, 0, len(a.byName))
	for _, r := range a.byName {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// dirSize is the space a volume's directory takes: regular files by their
// length, as dockerd's du counts a local volume, but a sparse file (a
// block volume's image) only by the blocks it has.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += fileSpace(info)
			}
		}
		return nil
	})
	return n
}

func fileSpace(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Blocks*512 < info.Size() {
		return st.Blocks * 512
	}
	return info.Size()
}

func otherThan(ids []string, id string) []string {
	var out []string
	for _, v := range ids {
		if v != id {
			out = append(out, v)
		}
	}
	return out
}

// volumeNameLength: a volume is a directory named after it, so its name
// is held to NAME_MAX (255 bytes); longer, mkdir would fail with a 500.
func volumeNameLength(name string) error {
	if len(name) > 255 {
		return messages.InvalidParameter("create %.32s...: volume name is too long (%d bytes, at most 255)", name, len(name))
	}
	return nil
}
