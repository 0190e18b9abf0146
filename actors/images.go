package actors

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/imagearchive"
)

// imagesActor owns the image index: records, tags and digests. Pulls run
// in child actors, one per reference, shared by concurrent requesters.
type imagesActor struct {
	env     *Env
	byID    map[digest.Digest]*imageEntry
	tags    map[string]digest.Digest // "docker.io/library/busybox:latest" -> ID
	digests map[string]digest.Digest // "127.0.0.1:5000/busybox@sha256:.." -> ID
	pulls   map[string]*actor.PID
}

type imageEntry struct {
	rec    *persistence.ImageRecord
	config *dockerspec.DockerOCIImage
}

func newImagesActor(env *Env) actor.Producer {
	return func() actor.Actor {
		return &imagesActor{env: env}
	}
}

func (a *imagesActor) Kind() string  { return "images" }
func (a *imagesActor) State() string { return fmt.Sprintf("%d images", len(a.byID)) }

func (a *imagesActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.load()
	case *messages.ResolveImage:
		e, err := a.resolve(m.Name)
		if err != nil {
			ctx.Respond(err)
			return
		}
		ctx.Respond(&messages.ResolveImageReply{Image: e.rec, Config: e.config})
	case *messages.PullImage:
		a.pull(ctx, m)
	case *pullFinished:
		a.pullFinished(ctx, m)
	case *messages.PushImage:
		a.push(ctx, m)
	case *messages.PushedImage:
		a.pushed(ctx, m)
	case *messages.RegistryLogin:
		a.login(ctx, m)
	case *messages.DistributionInspect:
		a.distributionInspect(ctx, m)
	case *messages.ListImages:
		a.list(ctx, m)
	case *messages.InspectImage:
		a.inspect(ctx, m)
	case *messages.ImageHistory:
		a.history(ctx, m)
	case *messages.TagImage:
		a.tag(ctx, m)
	case *messages.RemoveImage:
		a.remove(ctx, m)
	case *messages.LoadImages:
		a.loadArchive(ctx, m)
	case *loadFinished:
		a.loadFinished(ctx, m)
	case *messages.SaveImages:
		a.save(ctx, m)
	case *messages.AddLayerImage:
		a.addLayerImage(ctx, m)
	case *addLayerDone:
		a.onAddLayerDone(ctx, m)
	case *messages.PruneImages:
		a.prune(ctx, m)
	case *pruneDecided:
		a.onPruneDecided(ctx, m)
	case *messages.ImageCount:
		ctx.Respond(&messages.ImageCountReply{Count: len(a.byID)})
	case *messages.ImageDiskUsage:
		ctx.Respond(a.diskUsage())
	case *goroutinePanic:
		panic(m.reason)
	}
}

// event publishes an image event; name is the reference it concerns.
func (a *imagesActor) event(ctx actor.Context, action events.Action, id, name string) {
	a.env.publish(ctx, messages.NewEvent(events.ImageEventType, action, id, map[string]string{"name": name}))
}

// load rebuilds the index from the store.
func (a *imagesActor) load() {
	a.byID = map[digest.Digest]*imageEntry{}
	a.tags = map[string]digest.Digest{}
	a.digests = map[string]digest.Digest{}
	a.pulls = map[string]*actor.PID{}
	recs, err := a.env.Store.Images()
	if err != nil {
		a.env.Log.Error("load images", "err", err)
		return
	}
	for _, r := range recs {
		if err := a.index(r); err != nil {
			a.env.Log.Error("load image", "id", r.ID, "err", err)
		}
	}
}

// index adds r to the in-memory index, reading its config blob.
func (a *imagesActor) index(r *persistence.ImageRecord) error {
	cfg, err := a.readConfig(r.ID)
	if err != nil {
		return err
	}
	a.byID[r.ID] = &imageEntry{rec: r, config: cfg}
	for _, t := range r.RepoTags {
		a.tags[t] = r.ID
	}
	for _, d := range r.RepoDigests {
		a.digests[d] = r.ID
	}
	return nil
}

func (a *imagesActor) readConfig(id digest.Digest) (*dockerspec.DockerOCIImage, error) {
	rc, err := a.env.Blobs.Open(id)
	if err != nil {
		return nil, fmt.Errorf("open image config %s: %w", id, err)
	}
	defer rc.Close()
	cfg := new(dockerspec.DockerOCIImage)
	if err := json.NewDecoder(io.LimitReader(rc, 8<<20)).Decode(cfg); err != nil {
		return nil, fmt.Errorf("decode image config %s: %w", id, err)
	}
	return cfg, nil
}

// resolve finds an image as dockerd does: a reference (tag or digest)
// first, then a full or abbreviated ID.
func (a *imagesActor) resolve(name string) (*imageEntry, error) {
	if name == "" {
		return nil, messages.NotFound("No such image: %s", name)
	}
	if e := a.byRef(name); e != nil {
		return e, nil
	}
	id := strings.TrimPrefix(name, "sha256:")
	if len(id) > 0 && len(id) <= 64 && isHex(id) {
		var found *imageEntry
		for d, e := range a.byID {
			if strings.HasPrefix(d.Encoded(), id) {
				if found != nil && found != e {
					return nil, messages.InvalidParameter("multiple images found with provided prefix: %s", id)
				}
				found = e
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, messages.NotFound("No such image: %s", name)
}

func (a *imagesActor) byRef(name string) *imageEntry {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil
	}
	if c, ok := ref.(reference.Canonical); ok {
		if id, ok := a.digests[reference.TrimNamed(ref).String()+"@"+c.Digest().String()]; ok {
			return a.byID[id]
		}
		// Any image whose manifest has that digest.
		for _, e := range a.byID {
			if e.rec.ManifestDigest == c.Digest() && reference.TrimNamed(ref).Name() != "" {
				return e
			}
		}
		return nil
	}
	ref = reference.TagNameOnly(ref)
	if id, ok := a.tags[ref.String()]; ok {
		return a.byID[id]
	}
	return nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// familiar turns "docker.io/library/busybox:latest" into "busybox:latest",
// as Docker shows references.
func familiar(s string) string {
	ref, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return s
	}
	return reference.FamiliarString(ref)
}

func familiarAll(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, familiar(s))
	}
	return out
}

// pull joins or starts the pull of m.Ref.
func (a *imagesActor) pull(ctx actor.Context, m *messages.PullImage) {
	ctx.Respond(&messages.Accepted{})
	key := pullKey(m)
	if pid, ok := a.pulls[key]; ok {
		ctx.Send(pid, &joinPull{progress: m.Progress})
		return
	}
	env := a.env
	props := env.props(func() actor.Actor { return newImagePull(env, m.Ref, m.Platform, m.Auth) })
	pid := ctx.SpawnPrefix(props, "pull-")
	a.pulls[key] = pid
	ctx.Send(pid, &joinPull{progress: m.Progress})
}

// pullFinished registers a pulled image; the pull actor streams the final
// status only after this reply, so a client that saw the end of the stream
// finds the image.
func (a *imagesActor) pullFinished(ctx actor.Context, m *pullFinished) {
	// The sender is the request's future, not the pull actor: compare the
	// PID the pull actor put in the message.
	for key, pid := range a.pulls {
		if pid.Equal(m.pull) {
			delete(a.pulls, key)
		}
	}
	if m.err != nil {
		ctx.Respond(&pullResult{})
		return
	}
	prev, hadTag := a.tags[m.ref]
	upToDate := hadTag && prev == m.rec.ID
	if err := a.register(m.rec); err != nil {
		ctx.Respond(&pullResult{err: messages.Internal("register image: %v", err)})
		return
	}
	a.event(ctx, events.ActionPull, familiar(m.ref), familiar(m.ref))
	ctx.Respond(&pullResult{upToDate: upToDate})
}

// register stores r, merging tags and digests into an existing record of
// the same ID and moving tags away from other images.
func (a *imagesActor) register(r *persistence.ImageRecord) error {
	if old := a.byID[r.ID]; old != nil {
		merged := *old.rec
		merged.RepoTags = union(merged.RepoTags, r.RepoTags)
		merged.RepoDigests = union(merged.RepoDigests, r.RepoDigests)
		r = &merged
	} else if r.Loaded.IsZero() {
		r.Loaded = time.Now().UTC()
	}
	for _, t := range r.RepoTags {
		if owner, ok := a.tags[t]; ok && owner != r.ID {
			if err := a.untag(owner, t); err != nil {
				return err
			}
		}
	}
	if err := a.env.Store.PutImage(r); err != nil {
		return err
	}
	return a.index(r)
}

// untag removes tag t from image id, persisting the change.
func (a *imagesActor) untag(id digest.Digest, t string) error {
	e := a.byID[id]
	if e == nil {
		return nil
	}
	rec := *e.rec
	rec.RepoTags = without(rec.RepoTags, t)
	rec.RepoDigests = without(rec.RepoDigests, t)
	if err := a.env.Store.PutImage(&rec); err != nil {
		return err
	}
	delete(a.tags, t)
	delete(a.digests, t)
	e.rec = &rec
	return nil
}

func union(a, b []string) []string {
	out := append([]string{}, a...)
	for _, s := range b {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func without(list []string, s string) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (a *imagesActor) list(ctx actor.Context, m *messages.ListImages) {
	for k, vals := range m.Filters {
		switch k {
		case "dangling":
			for _, v := range vals {
				if v != "true" && v != "false" && v != "1" && v != "0" {
					ctx.Respond(messages.InvalidParameter("invalid filter 'dangling=%s'", v))
					return
				}
			}
		case "reference", "label", "before", "since", "until":
		default:
			ctx.Respond(messages.InvalidParameter("invalid filter '%s'", k))
			return
		}
	}
	out := make([]image.Summary, 0, len(a.byID))
	for _, e := range a.byID {
		if !imageMatches(e, m.Filters) {
			continue
		}
		out = append(out, imageSummary(e))
	}
	sortSummaries(out)
	ctx.Respond(&messages.ListImagesReply{Images: out})
}

// imageSummary is an image as listed; Containers and SharedSize are -1, "not
// computed", as dockerd lists them outside system df.
func imageSummary(e *imageEntry) image.Summary {
	r := e.rec
	labels := map[string]string{}
	if e.config != nil && e.config.Config.Labels != nil {
		labels = e.config.Config.Labels
	}
	return image.Summary{
		ID:          r.ID.String(),
		RepoTags:    familiarAll(r.RepoTags),
		RepoDigests: familiarAll(r.RepoDigests),
		Created:     r.Created.Unix(),
		Size:        r.Size,
		Labels:      labels,
		Containers:  -1,
		SharedSize:  -1,
	}
}

// sortSummaries orders images newest first, as dockerd lists them.
func sortSummaries(out []image.Summary) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].Created != out[j].Created {
			return out[i].Created > out[j].Created
		}
		return out[i].ID < out[j].ID
	})
}

// diskUsage is system df's part about images: each unpacked layer counts
// once in LayersSize, and an image's SharedSize is what it has in layers
// other images use too.
func (a *imagesActor) diskUsage() *messages.ImageDiskUsageReply {
	users := map[string]int{} // chain ID -> images using it
	sizes := map[string]int64{}
	for _, e := range a.byID {
		for _, l := range e.rec.Layers {
			users[l.ChainID.String()]++
			sizes[l.ChainID.String()] = l.UnpackedSize
		}
	}
	rep := &messages.ImageDiskUsageReply{Images: make([]image.Summary, 0, len(a.byID))}
	for _, n := range sizes {
		rep.LayersSize += n
	}
	for _, e := range a.byID {
		s := imageSummary(e)
		s.SharedSize, s.Containers = 0, 0
		for _, l := range e.rec.Layers {
			if users[l.ChainID.String()] > 1 {
				s.SharedSize += l.UnpackedSize
			}
		}
		rep.Images = append(rep.Images, s)
	}
	sortSummaries(rep.Images)
	return rep
}

func imageMatches(e *imageEntry, filters map[string][]string) bool {
	for k, vals := range filters {
		if len(vals) == 0 {
			continue
		}
		ok := false
		for _, v := range vals {
			switch k {
			case "dangling":
				dangling := len(e.rec.RepoTags) == 0
				ok = ok || dangling == (v == "true" || v == "1")
			case "reference":
				for _, t := range e.rec.RepoTags {
					f := familiar(t)
					repo, _, _ := strings.Cut(f, ":")
					if m, _ := path.Match(v, f); m {
						ok = true
					}
					if m, _ := path.Match(v, repo); m {
						ok = true
					}
				}
			case "label":
				key, want, hasValue := strings.Cut(v, "=")
				if e.config != nil {
					got, present := e.config.Config.Labels[key]
					ok = ok || present && (!hasValue || got == want)
				}
			default:
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (a *imagesActor) inspect(ctx actor.Context, m *messages.InspectImage) {
	e, err := a.resolve(m.Name)
	if err != nil {
		ctx.Respond(err)
		return
	}
	r := e.rec
	diffIDs := make([]string, len(r.Layers))
	for i, l := range r.Layers {
		diffIDs[i] = l.DiffID.String()
	}
	resp := image.InspectResponse{
		ID:           r.ID.String(),
		RepoTags:     nonNil(familiarAll(r.RepoTags)),
		RepoDigests:  nonNil(familiarAll(r.RepoDigests)),
		Created:      r.Created.UTC().Format(time.RFC3339Nano),
		Architecture: r.Architecture,
		Variant:      r.Variant,
		Os:           r.OS,
		Size:         r.Size,
		RootFS:       image.RootFS{Type: "layers", Layers: diffIDs},
		Metadata:     image.Metadata{LastTagTime: r.Loaded},
	}
	if e.config != nil {
		cfg := e.config.Config
		resp.Config = &cfg
		resp.Author = e.config.Author
	}
	resp.Comment = a.comment(e) // commit.go
	ctx.Respond(&messages.InspectImageReply{Image: resp})
}

func (a *imagesActor) history(ctx actor.Context, m *messages.ImageHistory) {
	e, err := a.resolve(m.Name)
	if err != nil {
		ctx.Respond(err)
		return
	}
	var out []image.HistoryResponseItem
	layer := 0
	if e.config != nil {
		for _, h := range e.config.History {
			item := image.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: []string{}}
			if h.Created != nil {
				item.Created = h.Created.Unix()
			}
			if !h.EmptyLayer && layer < len(e.rec.Layers) {
				item.Size = e.rec.Layers[layer].UnpackedSize
				layer++
			}
			out = append(out, item)
		}
	}
	// Newest first; the newest entry carries the image's ID and tags.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) == 0 {
		out = append(out, image.HistoryResponseItem{Created: e.rec.Created.Unix(), Size: e.rec.Size})
	}
	out[0].ID = e.rec.ID.String()
	out[0].Tags = nonNil(familiarAll(e.rec.RepoTags))
	ctx.Respond(&messages.ImageHistoryReply{History: out})
}

func (a *imagesActor) tag(ctx actor.Context, m *messages.TagImage) {
	e, err := a.resolve(m.Source)
	if err != nil {
		ctx.Respond(err)
		return
	}
	rec := *e.rec
	rec.RepoTags = union(rec.RepoTags, []string{m.Target})
	if err := a.register(&rec); err != nil {
		ctx.Respond(messages.Internal("tag %s: %v", m.Target, err))
		return
	}
	a.event(ctx, events.ActionTag, rec.ID.String(), familiar(m.Target))
	ctx.Respond(&messages.Accepted{})
}

// remove untags and, when nothing references the image any more, deletes
// it, following dockerd's rules on what needs force and what cannot be
// forced.
func (a *imagesActor) remove(ctx actor.Context, m *messages.RemoveImage) {
	e, err := a.resolve(m.Name)
	if err != nil {
		ctx.Respond(err)
		return
	}
	id := e.rec.ID
	// The tag named, if the name was a reference and not an ID.
	var named string
	if r, err := reference.ParseNormalizedNamed(m.Name); err == nil && a.byRef(m.Name) == e {
		if c, ok := r.(reference.Canonical); ok {
			named = reference.TrimNamed(r).String() + "@" + c.Digest().String()
		} else {
			named = reference.TagNameOnly(r).String()
		}
	}
	ask(ctx, a.env.containers, &messages.ContainerImageUsage{ImageID: id.String()}, 10*time.Second, func(res any, err error) {
		if err != nil {
			ctx.Respond(err)
			return
		}
		usage := res.(*messages.ContainerImageUsageReply)
		e := a.byID[id]
		if e == nil {
			ctx.Respond(messages.NotFound("No such image: %s", m.Name))
			return
		}
		reply, err := a.removeDecided(e, named, m, usage)
		if err != nil {
			ctx.Respond(err)
			return
		}
		for _, d := range reply.Deleted {
			if d.Untagged != "" {
				a.event(ctx, events.ActionUnTag, id.String(), d.Untagged)
			}
			if d.Deleted != "" {
				a.event(ctx, events.ActionDelete, id.String(), familiar(m.Name))
			}
		}
		ctx.Respond(reply)
	})
}

func (a *imagesActor) removeDecided(e *imageEntry, named string, m *messages.RemoveImage, usage *messages.ContainerImageUsageReply) (*messages.RemoveImageReply, error) {
	rec := e.rec
	short := rec.ID.Encoded()[:12]
	var deleted []image.DeleteResponse
	refs := len(rec.RepoTags) + len(rec.RepoDigests)

	// By reference, with other references left: only untag.
	if named != "" && (len(rec.RepoTags) > 1 || !contains(rec.RepoTags, named)) {
		if err := a.untag(rec.ID, named); err != nil {
			return nil, messages.Internal("untag %s: %v", named, err)
		}
		return &messages.RemoveImageReply{Deleted: []image.DeleteResponse{{Untagged: familiar(named)}}}, nil
	}
	if named == "" && len(rec.RepoTags) > 1 && !m.Force {
		return nil, messages.Conflict("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", short)
	}
	if len(usage.Running) > 0 {
		if named != "" {
			return nil, messages.Conflict("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", m.Name, shortID(usage.Running[0]), short)
		}
		return nil, messages.Conflict("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", short, shortID(usage.Running[0]))
	}
	if len(usage.Stopped) > 0 && !m.Force {
		if named != "" {
			return nil, messages.Conflict("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", m.Name, shortID(usage.Stopped[0]), short)
		}
		return nil, messages.Conflict("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", short, shortID(usage.Stopped[0]))
	}
	for _, t := range append(append([]string{}, rec.RepoTags...), rec.RepoDigests...) {
		if err := a.untag(rec.ID, t); err != nil {
			return nil, messages.Internal("untag %s: %v", t, err)
		}
		deleted = append(deleted, image.DeleteResponse{Untagged: familiar(t)})
	}
	_ = refs
	if len(usage.Stopped) > 0 {
		// Forced with stopped users: the image stays, untagged, for them.
		return &messages.RemoveImageReply{Deleted: deleted}, nil
	}
	if err := a.deleteImage(rec.ID); err != nil {
		return nil, messages.Internal("delete image %s: %v", short, err)
	}
	deleted = append(deleted, image.DeleteResponse{Deleted: rec.ID.String()})
	return &messages.RemoveImageReply{Deleted: deleted}, nil
}

// deleteImage forgets the image and frees the blobs and layers no other
// image uses.
func (a *imagesActor) deleteImage(id digest.Digest) error {
	e := a.byID[id]
	if e == nil {
		return nil
	}
	if err := a.env.Store.DeleteImage(id.String()); err != nil {
		return err
	}
	delete(a.byID, id)
	inUse := map[digest.Digest]bool{}
	for _, other := range a.byID {
		inUse[other.rec.ID] = true
		inUse[other.rec.ManifestDigest] = true
		for _, l := range other.rec.Layers {
			inUse[l.Digest] = true
			inUse[l.ChainID] = true
		}
	}
	for _, d := range []digest.Digest{e.rec.ID, e.rec.ManifestDigest} {
		if d != "" && !inUse[d] {
			_ = a.env.Blobs.Delete(d)
		}
	}
	for _, l := range e.rec.Layers {
		if !inUse[l.Digest] {
			_ = a.env.Blobs.Delete(l.Digest)
		}
		if !inUse[l.ChainID] {
			_ = a.env.Layers.Remove(l.ChainID)
		}
	}
	return nil
}

type loadFinished struct {
	images   []*persistence.ImageRecord
	err      error
	progress chan messages.ProgressEvent
	quiet    bool
}

// loadArchive reads the tar in a goroutine (content only: blobs and
// layers) and registers the images on this actor when it is done.
func (a *imagesActor) loadArchive(ctx actor.Context, m *messages.LoadImages) {
	ctx.Respond(&messages.Accepted{})
	env := a.env
	goSafe(ctx.ActorSystem(), ctx.Self(), func() any {
		imgs, err := imagearchive.Load(m.Tar, env.Blobs, env.Layers, func(string) {})
		return &loadFinished{images: imgs, err: err, progress: m.Progress, quiet: m.Quiet}
	})
}

func (a *imagesActor) loadFinished(ctx actor.Context, m *loadFinished) {
	defer close(m.progress)
	if m.err != nil {
		m.progress <- messages.ProgressEvent{Err: messages.InvalidParameter("load: %v", m.err)}
		return
	}
	for _, img := range m.images {
		var tags []string
		for _, t := range img.RepoTags {
			ref, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				continue
			}
			tags = append(tags, reference.TagNameOnly(ref).String())
		}
		img.RepoTags = tags
		if err := a.register(img); err != nil {
			m.progress <- messages.ProgressEvent{Err: messages.Internal("register loaded image: %v", err)}
			return
		}
		a.event(ctx, events.ActionLoad, img.ID.String(), img.ID.String())
		if len(tags) == 0 {
			m.progress <- messages.ProgressEvent{Message: statusLine("Loaded image ID: " + img.ID.String())}
		}
		for _, t := range tags {
			m.progress <- messages.ProgressEvent{Message: statusLine("Loaded image: " + familiar(t))}
		}
	}
}

func (a *imagesActor) save(ctx actor.Context, m *messages.SaveImages) {
	var items []imagearchive.SaveItem
	for _, name := range m.Names {
		e, err := a.resolve(name)
		if err != nil {
			ctx.Respond(err)
			return
		}
		var tags []string
		if r, err := reference.ParseNormalizedNamed(name); err == nil && a.byRef(name) == e {
			if _, isDigest := r.(reference.Canonical); !isDigest {
				tags = []string{familiar(reference.TagNameOnly(r).String())}
			}
		} else {
			tags = familiarAll(e.rec.RepoTags)
		}
		items = append(items, imagearchive.SaveItem{Record: e.rec, Tags: tags})
	}
	blobs := a.env.Blobs
	ctx.Respond(&messages.SaveImagesReply{WriteTo: func(w io.Writer) error {
		return imagearchive.Save(w, items, blobs)
	}})
}
