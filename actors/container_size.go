package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

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

// IgnoreDeadLetterLogging: an auto-removed container's actor is gone by
// the time its last measure arrives, every time; that is not news for
// the daemon's log.
func (*sizeRecorded) IgnoreDeadLetterLogging() {}

// measureTimeout bounds one agent's measure of its writable layer.
const measureTimeout = 30 * time.Second

// withSize calls done on the actor with the container's sizes, measured
// in the background: a running container's agent measures its writable
// layer, a stopped one has the last run's measure.
func (a *containerActor) withSize(ctx actor.Context, done func(m *sizeMeasured)) {
	rec := a.rt.rec
	c := a.rt.client
	stored := rec.SizeRw
	images := a.env.images
	imageID := string(rec.ImageID)
	sys := ctx.ActorSystem()
	f := actor.NewFuture(sys, measureTimeout+10*time.Second)
	go func() {
		rw := stored
		if c != nil {
			dctx, cancel := deadline(measureTimeout)
			u, _ := c.Usage(dctx) // zero when the agent cannot say
			cancel()
			rw = u.WritableBytes
		}
		res, err := sys.Root.RequestFuture(images, &messages.ResolveImage{Name: imageID}, 10*time.Second).Result()
		sys.Root.Send(f.PID(), &sizeMeasured{rw: rw, rootfs: rw + imageSize(res, err)})
	}()
	ctx.ReenterAfter(f, func(res any, err error) {
		m, _ := res.(*sizeMeasured)
		if m == nil {
			m = &sizeMeasured{rw: stored, rootfs: stored}
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
	a.persistUnasked(ctx)
}
