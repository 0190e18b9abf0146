package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/arcavm/arca/internal/commitconfig"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/imagearchive"
)

type addLayerDone struct {
	m       *messages.AddLayerImage
	rec     *persistence.ImageRecord
	err     error
	replyTo *actor.PID
}

// addLayerImage builds the image of docker commit, docker import or a
// classic build step: the config here, from the parent's, the content
// (blob, unpacked layer, config blob) in a goroutine; registering and
// tagging on the way back. The new image's parent is m.Parent.
func (a *imagesActor) addLayerImage(ctx actor.Context, m *messages.AddLayerImage) {
	var parent *persistence.ImageRecord
	now := time.Now().UTC()
	var cfg dockerspec.DockerOCIImage
	if m.Parent != "" {
		e := a.byID[m.Parent]
		if e == nil {
			ctx.Respond(messages.NotFound("No such image: %s", m.Parent))
			return
		}
		parent = e.rec
		if e.config != nil {
			cfg = *e.config
			cfg.History = append([]ocispec.History(nil), cfg.History...)
		}
		cfg.OS, cfg.Architecture, cfg.Variant = parent.OS, parent.Architecture, parent.Variant
	} else {
		cfg.OS, cfg.Architecture, cfg.Variant = m.OS, m.Architecture, m.Variant
	}
	cfg.Created, cfg.Author = &now, m.Author
	cfg.Config = commitconfig.ImageConfig(&m.Config)
	cfg.History = append(cfg.History, ocispec.History{Created: &now, Author: m.Author, CreatedBy: m.CreatedBy, Comment: m.Comment, EmptyLayer: m.Layer == nil})
	env, replyTo := a.env, ctx.Sender()
	goSafe(ctx.ActorSystem(), ctx.Self(), func() any {
		legacy := imagearchive.Legacy{Comment: m.Comment, ContainerConfig: m.ContainerConfig}
		rec, err := imagearchive.AddLayer(parent, cfg, legacy, m.Layer, env.Blobs, env.Layers)
		return &addLayerDone{m: m, rec: rec, err: err, replyTo: replyTo}
	})
}

func (a *imagesActor) onAddLayerDone(ctx actor.Context, d *addLayerDone) {
	if d.err != nil {
		ctx.Send(d.replyTo, messages.Internal("create image: %v", d.err))
		return
	}
	if p := d.rec.Parent; p != "" && a.byID[p] == nil {
		// The parent was removed while its child was made (a prune during
		// a build): the child would name an image that is gone, over
		// layers that may be gone with it.
		a.freeContent(d.rec)
		ctx.Send(d.replyTo, messages.NotFound("No such image: %s", p))
		return
	}
	if d.m.Tag != "" {
		d.rec.RepoTags = []string{d.m.Tag}
	}
	if err := a.register(d.rec); err != nil {
		ctx.Send(d.replyTo, messages.Internal("register image: %v", err))
		return
	}
	id := d.rec.ID.String()
	// A build step's image has no event of its own: dockerd logs only the
	// final tag.
	if c := d.m.Container; c != nil && !d.m.Build {
		// dockerd logs a commit as the container's event.
		attrs := map[string]string{"comment": d.m.Comment, "imageID": id, "imageRef": familiar(d.m.Tag)}
		if c.Config != nil {
			attrs["image"] = c.Config.Image
			for k, v := range c.Config.Labels {
				attrs[k] = v
			}
		}
		attrs["name"] = trimSlash(c.Name)
		a.env.publish(ctx, messages.NewEvent(events.ContainerEventType, events.ActionCommit, c.ID, attrs))
	} else if c == nil && !d.m.Build {
		a.event(ctx, events.ActionImport, id, id)
	}
	if d.m.Tag != "" {
		a.event(ctx, events.ActionTag, id, familiar(d.m.Tag))
	}
	ctx.Send(d.replyTo, &messages.AddLayerImageReply{ID: d.rec.ID})
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}

// comment is dockerd's image comment (commit's message, import's), which
// only images made here carry; "" when the config cannot be read.
func (a *imagesActor) comment(e *imageEntry) string {
	l, err := imagearchive.ReadLegacy(a.env.Blobs, e.rec.ID)
	if err != nil {
		return ""
	}
	return l.Comment
}
