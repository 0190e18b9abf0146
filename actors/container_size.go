package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
)

// measureSize asks a container for its writable layer's size; the reply is
// a *sizeMeasured. A running container's agent measures it now; a stopped
// one answers with what was measured as its last run ended.
type measureSize struct{}

type sizeMeasured struct {
	rw     int64
	rootfs int64 // rw plus the image's size
}

// sizeRecorded carries the measure taken as a run ended.
type sizeRecorded struct{ bytes int64 }

// measureTimeout bounds one agent's measure of its writable layer.
const measureTimeout = 30 * time.Second

// withSize calls done on the actor with the container's sizes, measured
// in the background when the container runs.
func (a *containerActor) withSize(ctx actor.Context, done func(m *sizeMeasured)) {
	rec := a.rt.rec
	c := a.rt.client
	images := a.env.images
	imageID := string(rec.ImageID)
	if c == nil {
		rw := rec.SizeRw
		ask(ctx, images, &messages.ResolveImage{Name: imageID}, 10*time.Second, func(res any, err error) {
			done(&sizeMeasured{rw: rw, rootfs: rw + imageSize(res, err)})
		})
		return
	}
	f := actor.NewFuture(ctx.ActorSystem(), measureTimeout+10*time.Second)
	sys := ctx.ActorSystem()
	go func() {
		dctx, cancel := deadline(measureTimeout)
		u, err := c.Usage(dctx)
		cancel()
		if err != nil {
			u = wire.DiskUsage{}
		}
		res, ierr := sys.Root.RequestFuture(images, &messages.ResolveImage{Name: imageID}, 10*time.Second).Result()
		sys.Root.Send(f.PID(), &sizeMeasured{rw: u.WritableBytes, rootfs: u.WritableBytes + imageSize(res, ierr)})
	}()
	ctx.ReenterAfter(f, func(res any, err error) {
		m, _ := res.(*sizeMeasured)
		if m == nil {
			m = &sizeMeasured{rw: rec.SizeRw, rootfs: rec.SizeRw}
		}
		done(m)
	})
}

func imageSize(res any, err error) int64 {
	if err != nil {
		return 0
	}
	if r, ok := res.(*messages.ResolveImageReply); ok && r.Image != nil {
		return r.Image.Size
	}
	return 0
}

// recordSize keeps the last run's measure for docker ps -s on a stopped
// container.
func (a *containerActor) recordSize(ctx actor.Context, m *sizeRecorded) {
	if a.rt.rec.SizeRw == m.bytes {
		return
	}
	a.rt.rec.SizeRw = m.bytes
	_ = a.persist(ctx)
}
