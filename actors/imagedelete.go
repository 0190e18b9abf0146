package actors

import (
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// remove is docker rmi. What containers use is asked first, off the
// mailbox; the rest is decided on the actor, with the index as it is
// then.
func (a *imagesActor) remove(ctx actor.Context, m *messages.RemoveImage) {
	if _, err := a.resolve(m.Name); err != nil {
		ctx.Respond(err)
		return
	}
	ask(ctx, a.env.containers, &messages.ImagesInUse{}, 10*time.Second, func(res any, err error) {
		if err != nil {
			ctx.Respond(err)
			return
		}
		d := &imageDeletion{a: a, ctx: ctx, inUse: res.(*messages.ImagesInUseReply)}
		if err := d.remove(m.Name, m.Force, !m.NoPrune); err != nil {
			ctx.Respond(err)
			return
		}
		ctx.Respond(&messages.RemoveImageReply{Deleted: d.records})
	})
}

// imageDeletion is one docker rmi, or one name of an image prune, as
// dockerd's ImageDelete decides it: untag, delete when nothing else
// needs the image, then the same for its untagged parents. Each change
// is stored as it is made, child before parent, so a daemon killed
// midway leaves images that are all still whole.
type imageDeletion struct {
	a      *imagesActor
	ctx    actor.Context
	inUse  *messages.ImagesInUseReply
	name   string        // what the request named, for its delete event
	target digest.Digest // the image it named

	records []image.DeleteResponse
	freed   int64 // unpacked size of the layers removed
}

// What can stop a deletion, as dockerd's conflict types: a hard conflict
// cannot be forced.
type conflictKind int

const (
	conflictChild conflictKind = 1 << iota
	conflictRunning
	conflictReference
	conflictStopped

	conflictHard = conflictChild | conflictRunning
	conflictSoft = conflictReference | conflictStopped
)

type deleteConflict struct {
	id   digest.Digest
	hard bool
	used bool // by a container
	why  string
}

func (c *deleteConflict) err() error {
	force := "must be forced"
	if c.hard {
		force = "cannot be forced"
	}
	return messages.Conflict("conflict: unable to delete %s (%s) - %s", shortID(c.id.Encoded()), force, c.why)
}

func (d *imageDeletion) remove(name string, force, prune bool) error {
	e, err := d.a.resolve(name)
	if err != nil {
		return err
	}
	id := e.rec.ID
	d.name, d.target = name, id
	ref := d.a.namedRef(name, e)
	if ref == "" {
		// By ID: an image named once is untagged first, unless that
		// would be refused.
		if singleReference(e.rec) {
			mask := conflictHard
			if !force {
				mask |= conflictStopped
			}
			if c := d.conflict(id, mask); c != nil {
				return c.err()
			}
			if err := d.untagAll(id); err != nil {
				return err
			}
		}
		return d.deleteWithParents(id, force, prune, false)
	}
	if !force && singleReference(e.rec) {
		if user := d.user(id); user != "" {
			return messages.Conflict("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", name, shortID(user), shortID(id.Encoded()))
		}
	}
	if err := d.untag(id, ref); err != nil {
		return err
	}
	if err := d.untagLoneDigests(id, ref); err != nil {
		return err
	}
	if !untagged(d.a.byID[id].rec) {
		return nil
	}
	// The last name went: the image goes too, unless something else
	// needs it (which is then no error).
	return d.deleteWithParents(id, force, prune, true)
}

// namedRef is the reference name resolves by, normalized, or "" when
// name is an ID.
func (a *imagesActor) namedRef(name string, e *imageEntry) string {
	r, err := reference.ParseNormalizedNamed(name)
	if err != nil || a.byRef(name) != e {
		return ""
	}
	if c, ok := r.(reference.Canonical); ok {
		return reference.TrimNamed(r).String() + "@" + c.Digest().String()
	}
	return reference.TagNameOnly(r).String()
}

// singleReference is dockerd's test for an image named once: at most one
// tag, and digests only of that tag's repository.
func singleReference(r *persistence.ImageRecord) bool {
	if n := len(r.RepoTags) + len(r.RepoDigests); n <= 1 {
		return n == 1
	}
	if len(r.RepoTags) > 1 {
		return false
	}
	repos := map[string]bool{}
	for _, dg := range r.RepoDigests {
		repos[repoName(dg)] = true
	}
	if len(repos) != 1 {
		return false
	}
	return len(r.RepoTags) == 0 || repos[repoName(r.RepoTags[0])]
}

func repoName(ref string) string {
	r, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return r.Name()
}

// untagLoneDigests is dockerd's: once a repository's last tag is gone,
// its digest references go too.
func (d *imageDeletion) untagLoneDigests(id digest.Digest, removed string) error {
	r, err := reference.ParseNormalizedNamed(removed)
	if err != nil {
		return nil
	}
	if _, isDigest := r.(reference.Canonical); isDigest {
		return nil
	}
	rec := d.a.byID[id].rec
	if slices.ContainsFunc(rec.RepoTags, func(t string) bool { return repoName(t) == r.Name() }) {
		return nil
	}
	for _, dg := range slices.Clone(rec.RepoDigests) {
		if repoName(dg) == r.Name() {
			if err := d.untag(id, dg); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteWithParents is dockerd's imageDeleteHelper: the image goes
// unless a conflict stops it, then, with prune, each untagged parent
// nothing else needs. quiet is for an image whose last name was just
// removed: a conflict then only keeps it, unless it is dangling and
// unused (so the client learns why it stays).
func (d *imageDeletion) deleteWithParents(id digest.Digest, force, prune, quiet bool) error {
	mask := conflictHard
	if !force {
		mask |= conflictSoft
	}
	if c := d.conflict(id, mask); c != nil {
		if quiet && (!d.dangling(id) || c.used) {
			return nil
		}
		return c.err()
	}
	if err := d.untagAll(id); err != nil {
		return err
	}
	if d.stoppedUser(id) != "" {
		// Forced with stopped containers using it: unlike dockerd, Arca
		// keeps the image, untagged, for them (their root filesystems
		// are its layers).
		return nil
	}
	parent := d.a.byID[id].rec.Parent
	if err := d.deleteOne(id); err != nil {
		return err
	}
	if !prune || parent == "" || d.a.byID[parent] == nil {
		return nil
	}
	return d.deleteWithParents(parent, false, true, true)
}

// conflict is the first reason, among those in mask, that id cannot go.
func (d *imageDeletion) conflict(id digest.Digest, mask conflictKind) *deleteConflict {
	if mask&conflictChild != 0 && d.a.hasChildren(id) {
		return &deleteConflict{id: id, hard: true, why: "image has dependent child images"}
	}
	if running := d.inUse.Running[id.String()]; mask&conflictRunning != 0 && len(running) > 0 {
		return &deleteConflict{id: id, hard: true, used: true, why: "image is being used by running container " + shortID(running[0])}
	}
	if mask&conflictReference != 0 && !untagged(d.a.byID[id].rec) {
		return &deleteConflict{id: id, why: "image is referenced in multiple repositories"}
	}
	if stopped := d.stoppedUser(id); mask&conflictStopped != 0 && stopped != "" {
		return &deleteConflict{id: id, used: true, why: "image is being used by stopped container " + shortID(stopped)}
	}
	return nil
}

// user is a container using id, a running one first; "" when none does.
func (d *imageDeletion) user(id digest.Digest) string {
	if running := d.inUse.Running[id.String()]; len(running) > 0 {
		return running[0]
	}
	return d.stoppedUser(id)
}

func (d *imageDeletion) stoppedUser(id digest.Digest) string {
	if stopped := d.inUse.Stopped[id.String()]; len(stopped) > 0 {
		return stopped[0]
	}
	return ""
}

// dangling is dockerd's: no name and no children.
func (d *imageDeletion) dangling(id digest.Digest) bool {
	return untagged(d.a.byID[id].rec) && !d.a.hasChildren(id)
}

func (d *imageDeletion) untag(id digest.Digest, ref string) error {
	if err := d.a.untag(id, ref); err != nil {
		return messages.Internal("untag %s: %v", familiar(ref), err)
	}
	d.records = append(d.records, image.DeleteResponse{Untagged: familiar(ref)})
	d.a.event(d.ctx, events.ActionUnTag, id.String(), familiar(ref))
	return nil
}

func (d *imageDeletion) untagAll(id digest.Digest) error {
	rec := d.a.byID[id].rec
	for _, ref := range append(slices.Clone(rec.RepoTags), rec.RepoDigests...) {
		if err := d.untag(id, ref); err != nil {
			return err
		}
	}
	return nil
}

// deleteOne deletes an image with nothing left to stop it, recording it
// and the layers that went with it, as dockerd lists them.
func (d *imageDeletion) deleteOne(id digest.Digest) error {
	removed, err := d.a.deleteImage(id)
	if err != nil {
		return messages.Internal("delete image %s: %v", shortID(id.Encoded()), err)
	}
	d.records = append(d.records, image.DeleteResponse{Deleted: id.String()})
	for _, l := range removed {
		d.records = append(d.records, image.DeleteResponse{Deleted: l.ChainID.String()})
		d.freed += l.UnpackedSize
	}
	name := id.String()
	if id == d.target {
		name = familiar(d.name)
	}
	d.a.event(d.ctx, events.ActionDelete, id.String(), name)
	return nil
}

// deleteImage forgets the image and frees the blobs and layers no other
// image uses; it answers the layers it removed. The record goes first:
// what a kill leaves behind is only unreferenced content.
func (a *imagesActor) deleteImage(id digest.Digest) ([]persistence.LayerRef, error) {
	e := a.byID[id]
	if e == nil {
		return nil, nil
	}
	if err := a.env.Store.DeleteImage(id.String()); err != nil {
		return nil, err
	}
	delete(a.byID, id)
	if siblings := a.children[e.rec.Parent]; siblings != nil {
		delete(siblings, id)
		if len(siblings) == 0 {
			delete(a.children, e.rec.Parent)
		}
	}
	return a.freeContent(e.rec), nil
}

// freeContent removes the blobs and unpacked layers of r (an image no
// longer indexed) that no indexed image uses; it answers the layers it
// removed.
func (a *imagesActor) freeContent(r *persistence.ImageRecord) []persistence.LayerRef {
	inUse := map[digest.Digest]bool{}
	for _, other := range a.byID {
		inUse[other.rec.ID] = true
		inUse[other.rec.ManifestDigest] = true
		for _, l := range other.rec.Layers {
			inUse[l.Digest] = true
			inUse[l.ChainID] = true
		}
	}
	for _, dg := range []digest.Digest{r.ID, r.ManifestDigest} {
		if dg != "" && !inUse[dg] {
			_ = a.env.Blobs.Delete(dg)
		}
	}
	var removed []persistence.LayerRef
	for _, l := range r.Layers {
		if !inUse[l.Digest] {
			_ = a.env.Blobs.Delete(l.Digest)
		}
		if !inUse[l.ChainID] {
			_ = a.env.Layers.Remove(l.ChainID)
			inUse[l.ChainID] = true // an image may list a layer twice
			removed = append(removed, l)
		}
	}
	return removed
}
