package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// prune removes every stopped container that matches: each removal is the
// container's own (as for docker rm), gathered off the mailbox.
func (s *containersSupervisor) prune(ctx actor.Context, m *messages.PruneContainers) {
	until, err := pruneUntil(m.Filters["until"])
	if err != nil {
		ctx.Respond(err)
		return
	}
	for k := range m.Filters {
		if k != "until" && k != "label" && k != "label!" {
			ctx.Respond(messages.InvalidParameter("invalid filter '%s'", k))
			return
		}
	}
	var ids, deadGone []string
	var futures []*actor.Future
	for id, e := range s.byID {
		st := e.snap.State.Status
		if st != container.StateExited && st != container.StateCreated && st != container.StateDead {
			continue
		}
		if !until.IsZero() && !e.snap.Created.Before(until) {
			continue
		}
		if !pruneLabelsMatch(&e.snap, m.Filters) {
			continue
		}
		if e.pid == nil {
			// Dead: the supervisor removes it itself.
			if _, ok := s.removeDead(id).(*messages.Accepted); ok {
				deadGone = append(deadGone, id)
			}
			continue
		}
		ids = append(ids, id)
		futures = append(futures, ctx.RequestFuture(e.pid, &messages.RemoveContainer{Ref: messages.Ref{ID: id}}, time.Minute))
	}
	sys := ctx.ActorSystem()
	respondLater(ctx, func() any {
		deleted := append([]string{}, deadGone...)
		for i, f := range futures {
			if res, err := f.Result(); err == nil {
				if _, failed := res.(error); !failed {
					deleted = append(deleted, ids[i])
				}
			}
		}
		sys.Root.Send(s.env.events, messages.NewEvent(events.ContainerEventType, events.ActionPrune, "", nil))
		return &messages.PruneContainersReply{Deleted: deleted}
	})
}

func pruneUntil(vals []string) (time.Time, error) {
	var until time.Time
	for _, v := range vals {
		if d, err := time.ParseDuration(v); err == nil {
			until = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			until = t
		} else {
			return time.Time{}, messages.InvalidParameter("invalid filter 'until=%s'", v)
		}
	}
	return until, nil
}

// pruneLabelsMatch: every label filter present, every label! filter absent.
func pruneLabelsMatch(r *persistence.ContainerRecord, f map[string][]string) bool {
	return labelsMatch(r.Config.Labels, f)
}
