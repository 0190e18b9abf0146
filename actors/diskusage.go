package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/build"

	"github.com/arcavm/arca/messages"
)

// diskUsageActor answers system df: it asks the images actor, the
// containers supervisor and the volumes actor, each for its part, and puts
// the answers together. It holds no state of its own.
type diskUsageActor struct {
	env *Env
}

func newDiskUsageActor(env *Env) actor.Producer {
	return func() actor.Actor { return &diskUsageActor{env: env} }
}

func (a *diskUsageActor) Kind() string  { return "disk-usage" }
func (a *diskUsageActor) State() string { return "idle" }

// diskUsageTimeout bounds each part; containers' sizes are measured by
// their agents, which may take a while on a busy host.
const diskUsageTimeout = measureTimeout + 15*time.Second

func (a *diskUsageActor) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*messages.DiskUsage)
	if !ok {
		return
	}
	rep := &messages.DiskUsageReply{}
	if m.BuildCache {
		rep.BuildCache = []build.CacheRecord{} // there is no builder
	}
	steps := []func(next func(error)){}
	if m.Images || m.Containers {
		// Images need the containers too, for their Containers count.
		steps = append(steps, func(next func(error)) {
			ask(ctx, a.env.containers, &messages.ListContainers{All: true, Size: m.Containers}, diskUsageTimeout, func(res any, err error) {
				if err == nil {
					rep.Containers = res.(*messages.ListContainersReply).Containers
				}
				next(err)
			})
		})
	}
	if m.Images {
		steps = append(steps, func(next func(error)) {
			ask(ctx, a.env.images, &messages.ImageDiskUsage{}, diskUsageTimeout, func(res any, err error) {
				if err == nil {
					u := res.(*messages.ImageDiskUsageReply)
					rep.LayersSize, rep.Images = u.LayersSize, u.Images
					users := map[string]int64{}
					for _, c := range rep.Containers {
						users[c.ImageID]++
					}
					for i := range rep.Images {
						rep.Images[i].Containers = users[rep.Images[i].ID]
					}
				}
				next(err)
			})
		})
	}
	if m.Volumes {
		steps = append(steps, func(next func(error)) {
			ask(ctx, a.env.volumes, &messages.VolumeDiskUsage{}, diskUsageTimeout, func(res any, err error) {
				if err == nil {
					rep.Volumes = res.(*messages.VolumeDiskUsageReply).Volumes
				}
				next(err)
			})
		})
	}
	var run func(i int)
	run = func(i int) {
		if i == len(steps) {
			if !m.Containers {
				rep.Containers = nil // asked only to count images' users
			}
			ctx.Respond(rep)
			return
		}
		steps[i](func(err error) {
			if err != nil {
				ctx.Respond(messages.Internal("disk usage: %v", err))
				return
			}
			run(i + 1)
		})
	}
	run(0)
}
