package actors

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/arcavm/arca/actors/security"
	"github.com/arcavm/arca/internal/portmap"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/containerlog"
)

// containersSupervisor owns the set of containers: names, ID resolution,
// and a snapshot of each container's record for listing. Each container is
// a child actor; a failing child is restarted alone.
type containersSupervisor struct {
	env   *Env
	byID  map[string]*containerEntry
	names map[string]string // name -> id; "" while a create reserves it
	execs map[string]string // exec id -> container id
}

type containerEntry struct {
	pid      *actor.PID
	snap     persistence.ContainerRecord
	health   *container.HealthSummary
	ports    []container.PortSummary
	networks map[string]*network.EndpointSettings
}

func newContainersSupervisor(env *Env) actor.Producer {
	return func() actor.Actor {
		return &containersSupervisor{env: env, byID: map[string]*containerEntry{}, names: map[string]string{}, execs: map[string]string{}}
	}
}

func (s *containersSupervisor) Kind() string  { return "supervisor" }
func (s *containersSupervisor) State() string { return fmt.Sprintf("%d containers", len(s.byID)) }

func (s *containersSupervisor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.restore(ctx)
	case *messages.CreateContainer:
		s.create(ctx, m)
	case *messages.ListContainers:
		s.list(ctx, m)
	case *messages.ImagesInUse:
		ctx.Respond(s.imagesInUse())
	case *messages.PruneContainers:
		s.prune(ctx, m)
	case *messages.ContainerCounts:
		ctx.Respond(s.counts())
	case *messages.VolumeRefs:
		refs := map[string][]string{}
		for id, e := range s.byID {
			for _, m := range e.snap.Mounts {
				if m.Type == "volume" {
					refs[m.Name] = append(refs[m.Name], id)
				}
			}
		}
		ctx.Respond(&messages.VolumeRefsReply{Refs: refs})
	case *containerSnapshot:
		if e := s.byID[m.rec.ID]; e != nil {
			e.snap = m.rec
			e.health = m.health
			e.ports, e.networks = m.ports, m.networks
			if m.rec.State.Status != container.StateRunning {
				e.health = nil
			}
		}
	case *containerRemoved:
		if e := s.byID[m.id]; e != nil {
			delete(s.names, e.snap.Name)
			delete(s.byID, m.id)
			ctx.Stop(e.pid)
		}
		for execID, cid := range s.execs {
			if cid == m.id {
				delete(s.execs, execID)
			}
		}
		if m.replyTo != nil {
			ctx.Send(m.replyTo, &messages.Accepted{})
		}
	case *messages.CreateExec:
		id, err := s.resolve(m.ContainerRef())
		if err != nil {
			ctx.Respond(err)
			return
		}
		execID, err := newContainerID()
		if err != nil {
			ctx.Respond(messages.Internal("exec id: %v", err))
			return
		}
		m.ExecID = execID
		s.execs[execID] = id
		s.forward(ctx, id)
	case *messages.RenameContainer:
		s.rename(ctx, m)
	case messages.ExecRef:
		id, ok := s.execs[m.ExecRef()]
		if !ok || s.byID[id] == nil {
			ctx.Respond(messages.NotFound("No such exec instance: %s", m.ExecRef()))
			return
		}
		s.forward(ctx, id)
	case messages.ContainerRef:
		id, err := s.resolve(m.ContainerRef())
		if err != nil {
			ctx.Respond(err)
			return
		}
		s.forward(ctx, id)
	case *actor.Terminated:
		s.onChildStopped(ctx, m.Who)
	}
}

// forward passes the request to the container's actor. A dead one (see
// onChildStopped) is answered here, as the lifecycle table's dead column
// says: inspected from its last snapshot, removed, the rest refused.
func (s *containersSupervisor) forward(ctx actor.Context, id string) {
	e := s.byID[id]
	if e.pid != nil {
		ctx.Forward(e.pid)
		return
	}
	k, ok := kindOf(ctx.Message())
	if !ok || requestTable[k][phaseDead].act != actHandle {
		ctx.Respond(errDead.words(who{id: id}))
		return
	}
	switch ctx.Message().(type) {
	case *messages.InspectContainer:
		ctx.Respond(&messages.InspectContainerReply{Container: s.inspectDead(&e.snap)})
	case *messages.RemoveContainer:
		ctx.Respond(s.removeDead(id))
	default:
		ctx.Respond(errDead.words(who{id: id}))
	}
}

// removeDead removes a dead container's record and files.
func (s *containersSupervisor) removeDead(id string) any {
	e := s.byID[id]
	if err := s.env.Store.DeleteContainer(id); err != nil {
		return messages.Internal("remove %s: %v", id, err)
	}
	if err := os.RemoveAll(s.env.containerDir(id)); err != nil {
		s.env.Log.Warn("remove container files", "id", id, "err", err)
	}
	delete(s.names, e.snap.Name)
	delete(s.byID, id)
	return &messages.Accepted{}
}

// onChildStopped: a container actor that stopped without being removed
// failed more often than its supervision allows. The container stays
// listed, as dead, instead of leaving a PID whose requests time out.
func (s *containersSupervisor) onChildStopped(ctx actor.Context, who *actor.PID) {
	for id, e := range s.byID {
		if e.pid != nil && e.pid.Equal(who) {
			e.pid = nil
			e.snap.State.Status = container.StateDead
			e.snap.State.Pid = 0
			e.snap.State.Error = "the container's actor failed repeatedly"
			e.health = nil
			s.env.Log.Error("container actor stopped after repeated failures: the container is dead", "id", id)
			return
		}
	}
}

// restore rebuilds the children from the store. Machines do not survive
// the daemon, so containers that were running are now exited.
func (s *containersSupervisor) restore(ctx actor.Context) {
	recs, err := s.env.Store.Containers()
	if err != nil {
		s.env.Log.Error("load containers", "err", err)
		return
	}
	imgs, err := s.env.Store.Images()
	if err != nil {
		s.env.Log.Error("load images", "err", err)
	}
	layersOf := map[string][]string{}
	for _, img := range imgs {
		layersOf[img.ID.String()] = s.layerDirs(img)
	}
	s.sweepOrphans(ctx, recs)
	for _, rec := range recs {
		wasRunning := false
		switch rec.State.Status {
		case container.StateRunning, container.StatePaused, container.StateRestarting, "removing":
			wasRunning = true
			rec.State.Status = container.StateExited
			rec.State.Pid = 0
			rec.State.ExitCode = 255
			rec.State.FinishedAt = time.Now().UTC()
			if err := s.env.Store.PutContainer(rec); err != nil {
				s.env.Log.Error("mark container exited", "id", rec.ID, "err", err)
			}
		}
		if err := s.spawn(ctx, rec, layersOf[rec.ImageID.String()]); err != nil {
			s.env.Log.Error("restore container", "id", rec.ID, "err", err)
			continue
		}
		if restartOnDaemonStart(rec, wasRunning) {
			ctx.Send(s.byID[rec.ID].pid, &messages.StartContainer{Ref: messages.Ref{ID: rec.ID}})
		}
	}
}

// sweepOrphans removes the directories of containers without a record: a
// create killed between making the directory and writing the record, or
// a removal killed between deleting the record and the files (they go
// after the answer), leaves one that nothing else would remove. Off the
// mailbox, as a writable layer can be large; a new container's ID never
// matches an orphan's.
func (s *containersSupervisor) sweepOrphans(ctx actor.Context, recs []*persistence.ContainerRecord) {
	known := make(map[string]bool, len(recs))
	for _, rec := range recs {
		known[rec.ID] = true
	}
	base := filepath.Join(s.env.Root, "containers")
	ents, err := os.ReadDir(base)
	if err != nil {
		return // no containers yet
	}
	var orphans []string
	for _, e := range ents {
		if !known[e.Name()] {
			orphans = append(orphans, filepath.Join(base, e.Name()))
		}
	}
	if len(orphans) == 0 {
		return
	}
	log := s.env.Log
	goSafe(ctx.ActorSystem(), nil, func() any {
		for _, dir := range orphans {
			if err := os.RemoveAll(dir); err != nil {
				log.Warn("remove files of a container without a record", "dir", dir, "err", err)
				continue
			}
			log.Info("removed files of a container without a record", "dir", dir)
		}
		return nil
	})
}

func (s *containersSupervisor) layerDirs(img *persistence.ImageRecord) []string {
	dirs := make([]string, len(img.Layers))
	for i, l := range img.Layers {
		dirs[i] = s.env.Layers.Dir(l.ChainID)
	}
	return dirs
}

func (s *containersSupervisor) spawn(ctx actor.Context, rec *persistence.ContainerRecord, layers []string) error {
	// A container whose directory went missing still has its record: it
	// gets a fresh directory rather than vanishing from the list.
	if err := os.MkdirAll(s.env.containerDir(rec.ID), 0o700); err != nil {
		return fmt.Errorf("container dir: %w", err)
	}
	logw, err := openContainerLog(s.env.containerDir(rec.ID), rec, s.env.Log)
	if err != nil {
		return err
	}
	rt := &containerRuntime{rec: rec, phase: phaseOf(rec.State.Status), layers: layers, hub: newOutputHub(logw), stdin: newStdinGate()}
	env := s.env
	props := env.props(func() actor.Actor { return &containerActor{env: env, rt: rt} })
	pid, err := ctx.SpawnNamed(props, rec.ID)
	if err != nil {
		logw.Close()
		return fmt.Errorf("spawn container actor: %w", err)
	}
	s.byID[rec.ID] = &containerEntry{pid: pid, snap: *rec}
	s.names[rec.Name] = rec.ID
	return nil
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// maxNameLen bounds a container name. dockerd has no bound of its own
// (the request line has one); here a name is a store key and appears in
// events and DNS answers, so it is held to a file name's 255 bytes.
const maxNameLen = 255

// checkName checks a name given to create or rename, as dockerd does, and
// its length.
func checkName(name string) error {
	if !validName.MatchString(name) {
		return messages.InvalidParameter("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if n := len(strings.TrimPrefix(name, "/")); n > maxNameLen {
		return messages.InvalidParameter("Invalid container name: %d bytes long, at most %d are allowed", n, maxNameLen)
	}
	return nil
}

func (s *containersSupervisor) create(ctx actor.Context, m *messages.CreateContainer) {
	if m.Config == nil {
		ctx.Respond(messages.InvalidParameter("config cannot be empty in order to create a container"))
		return
	}
	if m.Config.Image == "" {
		ctx.Respond(messages.InvalidParameter("no image specified"))
		return
	}
	if m.HostConfig == nil {
		m.HostConfig = &container.HostConfig{}
	}
	if err := mergeLogConfig(&m.HostConfig.LogConfig, s.env.LogOpts); err != nil {
		ctx.Respond(err)
		return
	}
	if m.HostConfig != nil {
		if err := validateRestartPolicy(m.HostConfig); err != nil {
			ctx.Respond(err)
			return
		}
		if err := security.Check(m.HostConfig); err != nil {
			ctx.Respond(messages.InvalidParameter("%v", err))
			return
		}
	}
	if err := validateSettings(m.Config, m.HostConfig, false); err != nil {
		ctx.Respond(err)
		return
	}
	if m.Platform != "" && !strings.HasPrefix(m.Platform, "linux") {
		ctx.Respond(messages.InvalidParameter("platform %q is not supported: containers run linux guests", m.Platform))
		return
	}
	name := strings.TrimPrefix(m.Name, "/")
	if m.Name != "" {
		if err := checkName(m.Name); err != nil {
			ctx.Respond(err)
			return
		}
	}
	if name == "" {
		name = s.generateName()
	}
	if id, taken := s.names[name]; taken {
		ctx.Respond(messages.Conflict("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", "/"+name, id))
		return
	}
	s.names[name] = "" // reserved while the image is resolved
	ask(ctx, s.env.images, &messages.ResolveImage{Name: m.Config.Image}, 30*time.Second, func(res any, err error) {
		if err != nil {
			delete(s.names, name)
			if messages.KindOf(err) == messages.KindNotFound {
				err = messages.NotFound("No such image: %s", m.Config.Image)
			}
			ctx.Respond(err)
			return
		}
		img := res.(*messages.ResolveImageReply)
		rec, err := newContainerRecord(name, m, img)
		if err == nil {
			rec.Networks, err = containerEndpoints(rec.HostConfig, m.NetworkingConfig, s.env.netIndex.Load())
		}
		if err == nil {
			_, err = parseExtraHosts(rec.HostConfig.ExtraHosts)
		}
		if err == nil {
			if _, perr := portmap.Bindings(rec.Config, rec.HostConfig); perr != nil {
				err = messages.InvalidParameter("%v", perr)
			}
		}
		if err == nil {
			rec.Mounts, err = resolveMounts(rec.Config, rec.HostConfig, func() string { id, _ := newContainerID(); return id })
		}
		if err != nil {
			delete(s.names, name)
			ctx.Respond(err)
			return
		}
		named, anon := volumeNames(rec.Mounts)
		if len(named)+len(anon) == 0 {
			s.finishCreate(ctx, name, rec, img)
			return
		}
		ask(ctx, s.env.volumes, &ensureVolumes{named: named, anonymous: anon}, 30*time.Second, func(res any, err error) {
			if err != nil {
				delete(s.names, name)
				ctx.Respond(err)
				return
			}
			drivers := res.(*volumeDrivers).byName
			for i := range rec.Mounts {
				if m := &rec.Mounts[i]; m.Type == "volume" && drivers[m.Name] != "local" {
					m.Driver = drivers[m.Name]
				}
			}
			s.finishCreate(ctx, name, rec, img)
		})
	})
}

// finishCreate persists a checked record and spawns its actor.
func (s *containersSupervisor) finishCreate(ctx actor.Context, name string, rec *persistence.ContainerRecord, img *messages.ResolveImageReply) {
	if err := os.MkdirAll(s.env.containerDir(rec.ID), 0o700); err != nil {
		delete(s.names, name)
		ctx.Respond(messages.Internal("create container dir: %v", err))
		return
	}
	if err := s.env.Store.PutContainer(rec); err != nil {
		delete(s.names, name)
		os.RemoveAll(s.env.containerDir(rec.ID))
		ctx.Respond(messages.Internal("persist container: %v", err))
		return
	}
	if err := s.spawn(ctx, rec, s.layerDirs(img.Image)); err != nil {
		delete(s.names, name)
		_ = s.env.Store.DeleteContainer(rec.ID)
		os.RemoveAll(s.env.containerDir(rec.ID))
		ctx.Respond(messages.Internal("create container: %v", err))
		return
	}
	attrs := map[string]string{"image": rec.Image, "name": rec.Name}
	for k, v := range rec.Config.Labels {
		attrs[k] = v
	}
	s.env.publish(ctx, messages.NewEvent(events.ContainerEventType, events.ActionCreate, rec.ID, attrs))
	warnings := []string{}
	if hostNetworking(rec.HostConfig) && len(rec.HostConfig.PortBindings) > 0 {
		warnings = append(warnings, "Published ports are discarded when using host network mode")
	}
	ctx.Respond(&messages.CreateContainerReply{ID: rec.ID, Warnings: warnings})
}

// newContainerRecord merges the image's config into the container's, as
// dockerd does at create, so inspect shows what will run.
func newContainerRecord(name string, m *messages.CreateContainer, img *messages.ResolveImageReply) (*persistence.ContainerRecord, error) {
	cfg := *m.Config
	hc := m.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	var ic dockerspec.DockerOCIImageConfig
	if img.Config != nil {
		ic = img.Config.Config
	}
	if cfg.User == "" {
		cfg.User = ic.User
	}
	cfg.Env = mergeEnv(ic.Env, cfg.Env)
	entrypointSet := cfg.Entrypoint != nil
	if entrypointSet && len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		cfg.Entrypoint = nil // --entrypoint "": none, and not the image's
	} else if !entrypointSet {
		cfg.Entrypoint = ic.Entrypoint
	}
	if len(cfg.Cmd) == 0 && !entrypointSet {
		cfg.Cmd = ic.Cmd
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ic.WorkingDir
	}
	if len(ic.Volumes) > 0 {
		vols := map[string]struct{}{}
		for v := range ic.Volumes {
			vols[v] = struct{}{}
		}
		for v := range cfg.Volumes {
			vols[v] = struct{}{}
		}
		cfg.Volumes = vols
	}
	if len(ic.ExposedPorts) > 0 {
		exposed := network.PortSet{}
		for p := range ic.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				exposed[port] = struct{}{}
			}
		}
		for p := range cfg.ExposedPorts {
			exposed[p] = struct{}{}
		}
		cfg.ExposedPorts = exposed
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ic.StopSignal
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	if cfg.Healthcheck == nil && ic.Healthcheck != nil {
		h := ic.Healthcheck
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	argv := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(argv) == 0 {
		return nil, messages.InvalidParameter("no command specified")
	}
	id, err := newContainerID()
	if err != nil {
		return nil, messages.Internal("container id: %v", err)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = id[:12]
		if hostNetworking(hc) {
			// The host's name, as dockerd gives host networking.
			if h, err := os.Hostname(); err == nil {
				cfg.Hostname = h
			}
		}
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "bridge"
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = containerlog.DriverName
	}
	return &persistence.ContainerRecord{
		ID:         id,
		Name:       name,
		Created:    time.Now().UTC(),
		Image:      m.Config.Image,
		ImageID:    img.Image.ID,
		Path:       argv[0],
		Args:       argv[1:],
		Config:     &cfg,
		HostConfig: hc,
		State:      persistence.ContainerState{Status: container.StateCreated},
	}, nil
}

// mergeEnv overlays the container's variables on the image's, by key.
func mergeEnv(image, ctr []string) []string {
	out := append([]string{}, image...)
	index := map[string]int{}
	for i, e := range out {
		index[envKey(e)] = i
	}
	for _, e := range ctr {
		if i, ok := index[envKey(e)]; ok {
			out[i] = e
			continue
		}
		index[envKey(e)] = len(out)
		out = append(out, e)
	}
	return out
}

func envKey(e string) string {
	if i := strings.IndexByte(e, '='); i >= 0 {
		return e[:i]
	}
	return e
}

func newContainerID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// resolve finds a container by full ID, name or unique ID prefix, in that
// order, as dockerd does.
func (s *containersSupervisor) resolve(ref string) (string, error) {
	if ref == "" {
		return "", messages.NotFound("No such container: %s", ref)
	}
	if _, ok := s.byID[ref]; ok {
		return ref, nil
	}
	if id := s.names[strings.TrimPrefix(ref, "/")]; id != "" {
		return id, nil
	}
	var found string
	for id := range s.byID {
		if strings.HasPrefix(id, ref) {
			if found != "" {
				return "", messages.InvalidParameter("multiple IDs found with provided prefix: %s", ref)
			}
			found = id
		}
	}
	if found == "" {
		return "", messages.NotFound("No such container: %s", ref)
	}
	return found, nil
}

func (s *containersSupervisor) imagesInUse() *messages.ImagesInUseReply {
	r := &messages.ImagesInUseReply{Running: map[string][]string{}, Stopped: map[string][]string{}}
	for id, e := range s.byID {
		img := e.snap.ImageID.String()
		if e.snap.State.Status == container.StateRunning || e.snap.State.Status == container.StatePaused {
			r.Running[img] = append(r.Running[img], id)
		} else {
			r.Stopped[img] = append(r.Stopped[img], id)
		}
	}
	for _, ids := range r.Running {
		slices.Sort(ids)
	}
	for _, ids := range r.Stopped {
		slices.Sort(ids)
	}
	return r
}

func (s *containersSupervisor) counts() *messages.ContainerCountsReply {
	r := &messages.ContainerCountsReply{Total: len(s.byID)}
	for _, e := range s.byID {
		switch e.snap.State.Status {
		case container.StateRunning:
			r.Running++
		case container.StatePaused:
			r.Paused++
		default:
			r.Stopped++
		}
	}
	return r
}

func (s *containersSupervisor) list(ctx actor.Context, m *messages.ListContainers) {
	f, err := newContainerFilter(m.Filters, s)
	if err != nil {
		ctx.Respond(err)
		return
	}
	entries := make([]*containerEntry, 0, len(s.byID))
	for _, e := range s.byID {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].snap.Created.After(entries[j].snap.Created) })
	out := make([]container.Summary, 0, len(entries))
	var pids []*actor.PID
	for _, e := range entries {
		r := &e.snap
		running := r.State.Status == container.StateRunning || r.State.Status == container.StatePaused
		if !m.All && !running && m.Limit <= 0 && !f.wantsStopped() {
			continue
		}
		if !f.match(r, e.health) {
			continue
		}
		s := summary(r, e.health)
		if e.ports != nil {
			s.Ports = e.ports
		}
		s.NetworkSettings.Networks = e.networks
		out = append(out, s)
		pids = append(pids, e.pid)
		if m.Limit > 0 && len(out) >= m.Limit {
			break
		}
	}
	if !m.Size {
		ctx.Respond(&messages.ListContainersReply{Containers: out})
		return
	}
	// Sizes come from the containers (a running one's agent measures):
	// gathered off the supervisor, which goes on serving meanwhile.
	sys := ctx.ActorSystem()
	respondLater(ctx, func() any {
		var wg sync.WaitGroup
		for i, pid := range pids {
			if pid == nil {
				continue // dead: no one to measure
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := sys.Root.RequestFuture(pid, &measureSize{}, measureTimeout+15*time.Second).Result()
				if sm, ok := res.(*sizeMeasured); ok && err == nil {
					out[i].SizeRw, out[i].SizeRootFs = sm.rw, sm.rootfs
				}
			}()
		}
		wg.Wait()
		return &messages.ListContainersReply{Containers: out}
	})
}

func summary(r *persistence.ContainerRecord, health *container.HealthSummary) container.Summary {
	cmd := r.Path
	if len(r.Args) > 0 {
		cmd += " " + strings.Join(r.Args, " ")
	}
	s := container.Summary{
		ID:      r.ID,
		Names:   []string{"/" + r.Name},
		Image:   r.Image,
		ImageID: r.ImageID.String(),
		Command: cmd,
		Created: r.Created.Unix(),
		Ports:   []container.PortSummary{},
		Labels:  r.Config.Labels,
		State:   r.State.Status,
		Status:  statusText(r, health),
		Health:  health,
		Mounts:  []container.MountPoint{},
	}
	if r.HostConfig != nil {
		s.HostConfig.NetworkMode = string(r.HostConfig.NetworkMode)
	}
	s.NetworkSettings = &container.NetworkSettingsSummary{}
	return s
}

// statusText is docker ps's STATUS column: "Up 2 minutes", "Exited (0) 3
// seconds ago", "Created".
func statusText(r *persistence.ContainerRecord, health *container.HealthSummary) string {
	st := r.State
	switch st.Status {
	case container.StateRunning:
		up := "Up " + humanDuration(time.Since(st.StartedAt))
		if health != nil {
			if health.Status == container.Starting {
				return up + " (health: starting)"
			}
			return up + " (" + string(health.Status) + ")"
		}
		return up
	case container.StatePaused:
		return "Up " + humanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case container.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
	case container.StateExited:
		if st.FinishedAt.IsZero() {
			return "Created"
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
	case "removing":
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	}
	return "Created"
}

// humanDuration words a duration as docker does ("Less than a second",
// "About a minute", "3 hours").
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Round(time.Hour).Hours()); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", h/24/365)
	}
}

// generateName makes a free "adjective_noun" name, as dockerd does.
func (s *containersSupervisor) generateName() string {
	for i := 0; ; i++ {
		a, _ := rand.Int(rand.Reader, big.NewInt(int64(len(nameAdjectives))))
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(nameNouns))))
		name := nameAdjectives[a.Int64()] + "_" + nameNouns[n.Int64()]
		if i > 10 {
			name += fmt.Sprint(i)
		}
		if _, taken := s.names[name]; !taken {
			return name
		}
	}
}

var nameAdjectives = strings.Fields(`agile amber bold brave bright calm clever cosmic crisp daring
eager fair fast fond gentle glad golden happy hardy keen kind lively lucid
merry mellow nimble noble patient plucky proud quick quiet rapid ready
serene sharp shiny silent sleek smooth snappy solid spry steady stoic
sturdy sunny swift tidy upbeat valiant vivid warm wise witty zesty`)

var nameNouns = strings.Fields(`albatross badger beacon bison canyon cedar comet condor
coyote delta dolphin falcon fjord glacier harbor heron ibex jaguar kestrel
lagoon lynx magpie meadow meteor nebula orca osprey otter panda pelican
pine plover quasar raven reef sequoia sparrow summit tundra walrus willow
wolf yak zephyr`)

// rename reserves the new name in the supervisor's index, lets the
// container record it, and moves the name in the index only once the
// record is durable; a failed rename gives the reservation back.
func (s *containersSupervisor) rename(ctx actor.Context, m *messages.RenameContainer) {
	id, err := s.resolve(m.ContainerRef())
	if err != nil {
		ctx.Respond(err)
		return
	}
	name := strings.TrimPrefix(m.Name, "/")
	if err := checkName(m.Name); err != nil {
		ctx.Respond(err)
		return
	}
	e := s.byID[id]
	if e.pid == nil {
		ctx.Respond(errDead.words(who{id: id}))
		return
	}
	if e.snap.Name == name {
		ctx.Respond(messages.InvalidParameter("Renaming a container with the same name as its current name"))
		return
	}
	if other, taken := s.names[name]; taken {
		ctx.Respond(messages.Conflict("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", "/"+name, other))
		return
	}
	s.names[name] = id
	old, sender := e.snap.Name, ctx.Sender()
	renamed := *m
	renamed.Name = name
	ask(ctx, e.pid, &renamed, 10*time.Second, func(res any, err error) {
		if err != nil {
			if s.names[name] == id {
				delete(s.names, name)
			}
			ctx.Send(sender, err)
			return
		}
		if s.names[old] == id {
			delete(s.names, old)
		}
		if cur := s.byID[id]; cur != nil {
			cur.snap.Name = name
		}
		ctx.Send(sender, res)
	})
}

// restartOnDaemonStart: always comes back; unless-stopped unless the user
// stopped it; on-failure if the daemon's end cut its run short. A
// container that never started stays created whatever its policy, as on
// dockerd (HasBeenStartedBefore): a create is not a start.
func restartOnDaemonStart(rec *persistence.ContainerRecord, wasRunning bool) bool {
	if rec.HostConfig == nil || rec.State.StartedAt.IsZero() {
		return false
	}
	p := rec.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways:
		return true
	case container.RestartPolicyUnlessStopped:
		return !rec.StoppedByUser
	case container.RestartPolicyOnFailure:
		return wasRunning && (p.MaximumRetryCount == 0 || rec.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// inspectDead is inspect's answer for a dead container, from what the
// supervisor kept of its record.
func (s *containersSupervisor) inspectDead(rec *persistence.ContainerRecord) container.InspectResponse {
	dir := s.env.containerDir(rec.ID)
	return container.InspectResponse{
		ID:   rec.ID,
		Name: "/" + rec.Name, Created: rec.Created.Format(time.RFC3339Nano),
		Path: rec.Path, Args: nonNil(rec.Args),
		State: &container.State{
			Status: container.StateDead, Dead: true, ExitCode: rec.State.ExitCode, Error: rec.State.Error,
			StartedAt: dockerTime(rec.State.StartedAt), FinishedAt: dockerTime(rec.State.FinishedAt),
		},
		Image:        rec.ImageID.String(),
		LogPath:      filepath.Join(dir, containerlog.FileName(rec.ID)),
		RestartCount: rec.RestartCount, Driver: "overlayfs", Platform: "linux",
		HostConfig: rec.HostConfig, Config: rec.Config,
		Mounts:          s.env.mountPoints(rec.Mounts),
		NetworkSettings: &container.NetworkSettings{},
	}
}
