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
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"

	"github.com/arcavm/arca/internal/buildcache"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/imagearchive"
)

// imagesActor owns the image index: records, tags, digests and which
// image is whose parent. Pulls run in child actors, one per reference,
// shared by concurrent requesters.
type imagesActor struct {
	env      *Env
	byID     map[digest.Digest]*imageEntry
	tags     map[string]digest.Digest // "docker.io/library/busybox:latest" -> ID
	digests  map[string]digest.Digest // "127.0.0.1:5000/busybox@sha256:.." -> ID
	children map[digest.Digest]map[digest.Digest]bool
	pulls    map[string]*actor.PID
}

type imageEntry struct {
	rec    *persistence.ImageRecord
	config *dockerspec.DockerOCIImage
	// containerConfig is what a build step or commit made the image
	// with (its config's container_config), read for images with a
	// parent only: only a child can be a build cache hit.
	containerConfig *container.Config
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
	case *messages.ProbeBuildCache:
		ctx.Respond(&messages.ProbeBuildCacheReply{ID: a.probeBuildCache(m)})
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
	a.children = map[digest.Digest]map[digest.Digest]bool{}
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
	e := &imageEntry{rec: r, config: cfg}
	if r.Parent != "" {
		legacy, err := imagearchive.ReadLegacy(a.env.Blobs, r.ID)
		if err != nil {
			return err
		}
		e.containerConfig = legacy.ContainerConfig
		if a.children[r.Parent] == nil {
			a.children[r.Parent] = map[digest.Digest]bool{}
		}
		a.children[r.Parent][r.ID] = true
	}
	a.byID[r.ID] = e
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
	for id, e := range a.byID {
		if !m.All && a.intermediate(id) {
			continue
		}
		if !imageMatches(e, a.hasChildren(id), m.Filters) {
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
		ParentID:    r.Parent.String(),
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

// diskUsage is system df's part about images: the images docker images
// lists (intermediate ones left out, as dockerd leaves them out), each
// unpacked layer counted once in LayersSize, and an image's SharedSize
// what it has in layers other listed images use too.
func (a *imagesActor) diskUsage() *messages.ImageDiskUsageReply {
	users := map[string]int{} // chain ID -> listed images using it
	sizes := map[string]int64{}
	for id, e := range a.byID {
		for _, l := range e.rec.Layers {
			if !a.intermediate(id) {
				users[l.ChainID.String()]++
			}
			sizes[l.ChainID.String()] = l.UnpackedSize
		}
	}
	rep := &messages.ImageDiskUsageReply{Images: make([]image.Summary, 0, len(a.byID))}
	for _, n := range sizes {
		rep.LayersSize += n
	}
	for id, e := range a.byID {
		if a.intermediate(id) {
			continue
		}
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

// hasChildren tells whether an image is another's parent.
func (a *imagesActor) hasChildren(id digest.Digest) bool { return len(a.children[id]) > 0 }

// untagged tells whether nothing names an image but its ID.
func untagged(r *persistence.ImageRecord) bool { return len(r.RepoTags)+len(r.RepoDigests) == 0 }

// intermediate tells an image docker images hides without -a: one that
// only its children need, as a build's steps leave them.
func (a *imagesActor) intermediate(id digest.Digest) bool {
	return untagged(a.byID[id].rec) && a.hasChildren(id)
}

// imageMatches applies list filters. dangling=true is dockerd's: no tag
// and no children; dangling=false is any image with a reference.
func imageMatches(e *imageEntry, hasChildren bool, filters map[string][]string) bool {
	for k, vals := range filters {
		if len(vals) == 0 {
			continue
		}
		ok := false
		for _, v := range vals {
			switch k {
			case "dangling":
				if v == "true" || v == "1" {
					ok = ok || len(e.rec.RepoTags) == 0 && !hasChildren
				} else {
					ok = ok || !untagged(e.rec)
				}
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
	ctx.Respond(&messages.InspectImageReply{Image: resp, Parent: e.rec.Parent.String()})
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
	a.nameHistory(out, e)
	ctx.Respond(&messages.ImageHistoryReply{History: out})
}

// nameHistory gives history entries (newest first) the IDs and tags of
// the image and its ancestors, as dockerd does: each build step or commit
// added one entry and one parent, so the walk up the parents names one
// entry each, and what is older than the first local image stays
// "<missing>".
func (a *imagesActor) nameHistory(out []image.HistoryResponseItem, e *imageEntry) {
	for i := range out {
		out[i].ID = e.rec.ID.String()
		out[i].Tags = nonNil(familiarAll(e.rec.RepoTags))
		if e = a.byID[e.rec.Parent]; e == nil {
			return
		}
	}
}

// probeBuildCache is the classic builder's cache probe: the newest child
// of the parent whose container config matches the step's (dockerd's
// local image cache). A child here was made by a build step or a commit,
// on its parent's platform, so neither needs checking as dockerd does.
func (a *imagesActor) probeBuildCache(m *messages.ProbeBuildCache) string {
	var cands []buildcache.Candidate
	for id := range a.children[digest.Digest(m.Parent)] {
		e := a.byID[id]
		cands = append(cands, buildcache.Candidate{ID: id.String(), Created: e.rec.Created, Config: e.containerConfig})
	}
	return buildcache.Newest(cands, &m.Config)
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
