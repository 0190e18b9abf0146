package actors

import (
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"

	"github.com/arcavm/arca/messages"
)

// pruneDecided carries which candidates no container uses; the usage was
// gathered off the mailbox.
type pruneDecided struct {
	replyTo *actor.PID
	unused  []digest.Digest
	filters map[string][]string
	err     error
}

// prune is docker image prune: candidates are dangling images (or all,
// with dangling=false), older than until and matching label filters; each
// container is asked about through the containers supervisor.
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
	cands := a.pruneCandidates(m.Filters)
	futures := make([]*actor.Future, len(cands))
	for i, id := range cands {
		futures[i] = ctx.RequestFuture(a.env.containers, &messages.ContainerImageUsage{ImageID: id.String()}, 10*time.Second)
	}
	replyTo, filters := ctx.Sender(), m.Filters
	goSafe(ctx.ActorSystem(), ctx.Self(), func() any {
		var unused []digest.Digest
		for i, f := range futures {
			res, err := f.Result()
			if err != nil {
				return &pruneDecided{replyTo: replyTo, err: err}
			}
			if u, ok := res.(*messages.ContainerImageUsageReply); ok && len(u.Running)+len(u.Stopped) == 0 {
				unused = append(unused, cands[i])
			}
		}
		return &pruneDecided{replyTo: replyTo, unused: unused, filters: filters}
	})
}

func (a *imagesActor) pruneCandidates(filters map[string][]string) []digest.Digest {
	all := false
	for _, v := range filters["dangling"] {
		if b, _ := strconv.ParseBool(v); !b {
			all = true
		}
	}
	var until time.Time
	for _, v := range filters["until"] {
		if t, ok := imagePruneUntil(v); ok {
			until = t
		}
	}
	var out []digest.Digest
	for id, e := range a.byID {
		if !all && len(e.rec.RepoTags) > 0 {
			continue
		}
		if !until.IsZero() && !e.rec.Created.Before(until) {
			continue
		}
		if !imageMatches(e, map[string][]string{"label": filters["label"]}) {
			continue
		}
		out = append(out, id)
	}
	return out
}

func (a *imagesActor) onPruneDecided(ctx actor.Context, m *pruneDecided) {
	if m.err != nil {
		ctx.Send(m.replyTo, messages.Internal("prune: %v", m.err))
		return
	}
	report := image.PruneReport{ImagesDeleted: []image.DeleteResponse{}}
	// Still a candidate now? Tags may have moved while usage was asked.
	still := map[digest.Digest]bool{}
	for _, id := range a.pruneCandidates(m.filters) {
		still[id] = true
	}
	for _, id := range m.unused {
		e := a.byID[id]
		if e == nil || !still[id] {
			continue
		}
		for _, t := range append(append([]string{}, e.rec.RepoTags...), e.rec.RepoDigests...) {
			if err := a.untag(id, t); err != nil {
				continue
			}
			report.ImagesDeleted = append(report.ImagesDeleted, image.DeleteResponse{Untagged: familiar(t)})
			a.event(ctx, events.ActionUnTag, id.String(), familiar(t))
		}
		size := e.rec.Size
		if err := a.deleteImage(id); err != nil {
			continue
		}
		report.ImagesDeleted = append(report.ImagesDeleted, image.DeleteResponse{Deleted: id.String()})
		report.SpaceReclaimed += uint64(size)
		a.event(ctx, events.ActionDelete, id.String(), id.String())
	}
	a.env.publish(ctx, messages.NewEvent(events.ImageEventType, events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(report.SpaceReclaimed, 10)}))
	ctx.Send(m.replyTo, &messages.PruneImagesReply{Report: report})
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
