package actors

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/arcavm/arca/internal/registry"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// imagePull is one in-flight pull of one reference. Everyone who asks for
// the same reference while it runs joins it and sees the same progress.
type imagePull struct {
	env      *Env
	ref      string
	platform string
	auth     *messages.RegistryAuth // this request's, never stored
	subs     []chan messages.ProgressEvent
	// seen keeps the last status line per layer, so that a late joiner
	// starts with the picture the others have.
	seen  []jsonstream.Message
	state string
}

type (
	joinPull     struct{ progress chan messages.ProgressEvent }
	pullProgress struct{ msg jsonstream.Message }
	pullDone     struct {
		rec *persistence.ImageRecord
		err error
	}
	// pullFinished asks the images actor to register the result.
	pullFinished struct {
		pull *actor.PID
		ref  string
		rec  *persistence.ImageRecord
		err  error
	}
	pullResult struct {
		upToDate bool
		err      error
	}
)

func newImagePull(env *Env, ref, platform string, auth *messages.RegistryAuth) actor.Actor {
	return &imagePull{env: env, ref: ref, platform: platform, auth: auth, state: "pulling"}
}

func (p *imagePull) Kind() string  { return "image-pull" }
func (p *imagePull) State() string { return p.state + " " + p.ref }

func (p *imagePull) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.begin(ctx)
	case *joinPull:
		for _, msg := range p.seen {
			m.progress <- messages.ProgressEvent{Message: msg}
		}
		p.subs = append(p.subs, m.progress)
	case *pullProgress:
		p.remember(m.msg)
		p.broadcast(messages.ProgressEvent{Message: m.msg}, m.msg.Progress != nil)
	case *pullDone:
		p.state = "registering"
		ask(ctx, ctx.Parent(), &pullFinished{pull: ctx.Self(), ref: p.ref, rec: m.rec, err: m.err}, time.Minute, func(res any, err error) {
			if err == nil && m.err != nil {
				err = m.err
			}
			if err == nil {
				if r, ok := res.(*pullResult); ok && r.err != nil {
					err = r.err
				}
			}
			p.finish(ctx, m.rec, res, err)
		})
	case *goroutinePanic:
		p.finish(ctx, nil, nil, messages.Internal("pull %s: %s", p.ref, m.reason))
	}
}

func (p *imagePull) begin(ctx actor.Context) {
	puller := &registry.Puller{Blobs: p.env.Blobs, Layers: p.env.Layers, Platform: p.platform, Credentials: credentials(p.auth)}
	sys, self, ref := ctx.ActorSystem(), ctx.Self(), p.ref
	goSafe(sys, self, func() any {
		pctx, cancel := deadline(time.Hour)
		defer cancel()
		rec, err := puller.Pull(pctx, ref, func(msg jsonstream.Message) {
			sys.Root.Send(self, &pullProgress{msg: msg})
		})
		return &pullDone{rec: rec, err: err}
	})
}

// remember keeps the newest non-progress line per id.
func (p *imagePull) remember(msg jsonstream.Message) {
	if msg.Progress != nil {
		return
	}
	for i := range p.seen {
		if p.seen[i].ID == msg.ID && msg.ID != "" {
			p.seen[i] = msg
			return
		}
	}
	p.seen = append(p.seen, msg)
}

// broadcast hands ev to every joiner. Progress ticks are dropped for a
// joiner that is behind; status lines are not.
func (p *imagePull) broadcast(ev messages.ProgressEvent, droppable bool) {
	for _, ch := range p.subs {
		if droppable {
			select {
			case ch <- ev:
			default:
			}
			continue
		}
		ch <- ev
	}
}

func (p *imagePull) finish(ctx actor.Context, rec *persistence.ImageRecord, res any, err error) {
	if err != nil {
		p.broadcast(messages.ProgressEvent{Err: pullError(p.ref, err)}, false)
	} else {
		status := "Downloaded newer image for " + familiar(p.ref)
		if r, ok := res.(*pullResult); ok && r.upToDate {
			status = "Image is up to date for " + familiar(p.ref)
		}
		if rec.ManifestDigest != "" {
			p.broadcast(messages.ProgressEvent{Message: jsonstream.Message{Status: "Digest: " + rec.ManifestDigest.String()}}, false)
		}
		p.broadcast(messages.ProgressEvent{Message: jsonstream.Message{Status: "Status: " + status}}, false)
	}
	for _, ch := range p.subs {
		close(ch)
	}
	p.subs = nil
	p.state = "done"
	ctx.Stop(ctx.Self())
}

// pullError words registry failures as dockerd does.
func pullError(ref string, err error) error {
	var me *messages.Error
	if errors.As(err, &me) {
		return me
	}
	name := ref
	if r, perr := reference.ParseNormalizedNamed(ref); perr == nil {
		name = reference.FamiliarString(r)
	}
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return messages.NotFound("manifest for %s not found: manifest unknown: manifest unknown", name)
	case errors.Is(err, registry.ErrUnauthorized) && strings.HasPrefix(err.Error(), "pull access denied"):
		return messages.NotFound("%s", err.Error())
	case errors.Is(err, registry.ErrUnauthorized):
		return messages.Internal("%s", err.Error())
	case errors.Is(err, registry.ErrUnreachable):
		return messages.Internal("Get %q: %v", registryHost(ref), err)
	}
	return messages.Internal("pull %s: %v", name, err)
}

func registryHost(ref string) string {
	r, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return fmt.Sprintf("http://%s/v2/", reference.Domain(r))
}

func statusLine(s string) jsonstream.Message { return jsonstream.Message{Stream: s + "\n"} }
