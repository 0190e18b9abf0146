package actors

import (
	"slices"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// prune is docker image prune, as dockerd's: the candidates are dangling
// images (all but intermediate ones, with dangling=false), older than
// until and matching the label filters; each is removed as rmi would
// remove it, with its untagged parents. Unlike dockerd, an image a
// container uses is no candidate, so prune -a never untags one. What
// containers use is asked first, off the mailbox.
func (a *imagesActor) prune(ctx actor.Context, m *messages.PruneImages) {
	for k, vals := range m.Filters {
		switch k {
		case "dangling":
			for _, v := range vals {
				if _, err := strconv.ParseBool(v); err != nil {
					ctx.Respond(messages.InvalidParameter("invalid filter 'dangling=%s'", v))
					return
				}
			}
		case "until":
			// A value not understood would prune regardless of age.
			for _, v := range vals {
				if _, ok := imagePruneUntil(v); !ok {
					ctx.Respond(messages.InvalidParameter("invalid filter 'until=%s'", v))
					return
				}
			}
		case "label", "label!":
		default:
			ctx.Respond(messages.InvalidParameter("invalid filter '%s'", k))
			return
		}
	}
	ask(ctx, a.env.containers, &messages.ImagesInUse{}, 10*time.Second, func(res any, err error) {
		if err != nil {
			ctx.Respond(messages.Internal("prune: %v", err))
			return
		}
		report := a.pruneImages(ctx, m.Filters, res.(*messages.ImagesInUseReply))
		a.env.publish(ctx, messages.NewEvent(events.ImageEventType, events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(report.SpaceReclaimed, 10)}))
		ctx.Respond(&messages.PruneImagesReply{Report: report})
	})
}

func (a *imagesActor) pruneImages(ctx actor.Context, filters map[string][]string, inUse *messages.ImagesInUseReply) image.PruneReport {
	report := image.PruneReport{ImagesDeleted: []image.DeleteResponse{}}
	danglingOnly := !pruneAll(filters)
	for _, id := range a.pruneCandidates(filters, inUse) {
		e := a.byID[id]
		if e == nil {
			continue // gone with an earlier candidate's parents
		}
		for _, name := range pruneNames(e.rec, danglingOnly) {
			d := &imageDeletion{a: a, ctx: ctx, inUse: inUse}
			// A conflict keeps the image, as a failed rmi would.
			if err := d.remove(name, false, true); err != nil {
				continue
			}
			report.ImagesDeleted = append(report.ImagesDeleted, d.records...)
			report.SpaceReclaimed += uint64(d.freed)
		}
	}
	return report
}

// pruneNames is what to remove a candidate by: its references, sorted as
// dockerd lists them (none when only dangling images go and it has a
// tag), or its ID when it has none.
func pruneNames(r *persistence.ImageRecord, danglingOnly bool) []string {
	if untagged(r) {
		return []string{r.ID.String()}
	}
	if danglingOnly && len(r.RepoTags) > 0 {
		return nil
	}
	names := append(slices.Clone(r.RepoTags), r.RepoDigests...)
	slices.Sort(names)
	return names
}

// pruneAll tells a prune of all unused images (dangling=false).
func pruneAll(filters map[string][]string) bool {
	for _, v := range filters["dangling"] {
		if b, _ := strconv.ParseBool(v); !b {
			return true
		}
	}
	return false
}

// pruneCandidates are the images a prune removes, sorted: heads (no
// children) or, pruning all, every image, less the intermediate ones
// (their children keep them) and those containers use.
func (a *imagesActor) pruneCandidates(filters map[string][]string, inUse *messages.ImagesInUseReply) []digest.Digest {
	all := pruneAll(filters)
	var until time.Time
	for _, v := range filters["until"] {
		if t, ok := imagePruneUntil(v); ok {
			until = t
		}
	}
	var out []digest.Digest
	for id, e := range a.byID {
		if !all && (len(e.rec.RepoTags) > 0 || a.hasChildren(id)) || a.intermediate(id) {
			continue
		}
		if len(inUse.Running[id.String()])+len(inUse.Stopped[id.String()]) > 0 {
			continue
		}
		if !until.IsZero() && !e.rec.Created.Before(until) {
			continue
		}
		if !imageMatches(e, a.hasChildren(id), map[string][]string{"label": filters["label"]}) {
			continue
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// imagePruneUntil reads an until filter: a duration before now, an RFC
// 3339 time or Unix seconds.
func imagePruneUntil(v string) (time.Time, bool) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), true
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}
