package actors

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"

	"github.com/arcavm/arca/internal/registry"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// pushTimeout bounds one docker push, all its tags.
const pushTimeout = time.Hour

// credentials hands a request's auth to the registry package; nothing
// keeps either beyond the request.
func credentials(a *messages.RegistryAuth) *registry.Credentials {
	if a.Empty() {
		return nil
	}
	return &registry.Credentials{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}
}

var pullSeq atomic.Uint64

// pullKey is what concurrent pulls of one reference share. A pull with
// credentials shares with no one: another client must not ride on them,
// nor see a refusal meant for them.
func pullKey(m *messages.PullImage) string {
	if m.Auth.Empty() {
		return m.Ref
	}
	return fmt.Sprintf("%s\x00auth-%d", m.Ref, pullSeq.Add(1))
}

// pushItem is one tag to push and the image it names now.
type pushItem struct {
	target string // "127.0.0.1:5000/busybox:latest"
	rec    *persistence.ImageRecord
}

// push answers at once with what dockerd refuses before streaming (no such
// image), then streams from a child actor.
func (a *imagesActor) push(ctx actor.Context, m *messages.PushImage) {
	named, err := reference.ParseNormalizedNamed(m.Name)
	if err != nil {
		ctx.Respond(messages.InvalidParameter("invalid reference format: %v", err))
		return
	}
	repo := reference.TrimNamed(named).String()
	tag := m.Tag
	if t, ok := named.(reference.Tagged); ok && tag == "" {
		tag = t.Tag() // "name:tag" with no tag parameter, as dockerd reads it
	}
	var items []pushItem
	if tag != "" {
		if e := a.byRef(repo + ":" + tag); e != nil {
			items = append(items, pushItem{target: repo + ":" + tag, rec: e.rec})
		}
	} else {
		// no tag: every tag of the repository, as docker push --all-tags
		for t, id := range a.tags {
			if strings.HasPrefix(t, repo+":") {
				items = append(items, pushItem{target: t, rec: a.byID[id].rec})
			}
		}
		sort.Slice(items, func(i, j int) bool { return items[i].target < items[j].target })
	}
	if len(items) == 0 {
		ctx.Respond(messages.NotFound("An image does not exist locally with the tag: %s", reference.FamiliarName(named)))
		return
	}
	ctx.Respond(&messages.Accepted{})
	env := a.env
	props := env.props(func() actor.Actor {
		return &imagePush{env: env, repo: repo, items: items, auth: m.Auth, progress: m.Progress, state: "pushing"}
	})
	ctx.SpawnPrefix(props, "push-")
}

// pushed records the repo digest a push gave an image, as dockerd lists it.
func (a *imagesActor) pushed(ctx actor.Context, m *messages.PushedImage) {
	e := a.byID[m.ID]
	if e == nil {
		ctx.Respond(&messages.Accepted{})
		return
	}
	rec := *e.rec
	rec.RepoDigests = union(rec.RepoDigests, []string{m.Repo + "@" + m.Digest.String()})
	if err := a.register(&rec); err != nil {
		ctx.Respond(messages.Internal("record pushed digest: %v", err))
		return
	}
	ctx.Respond(&messages.Accepted{})
}

// login checks credentials off the mailbox; the answer goes straight to
// the requester's future.
func (a *imagesActor) login(ctx actor.Context, m *messages.RegistryLogin) {
	sys, sender := ctx.ActorSystem(), ctx.Sender()
	if sender == nil {
		return
	}
	creds := credentials(m.Auth)
	server := m.Auth.ServerAddress
	go func() {
		// a panic here must not take the daemon down: the requester hears it
		defer func() {
			if r := recover(); r != nil {
				sys.Root.Send(sender, messages.Internal("login: %v", r))
			}
		}()
		lctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		token, err := registry.Login(lctx, server, creds)
		var reply any = &messages.RegistryLoginReply{Status: "Login Succeeded", IdentityToken: token}
		if err != nil {
			reply = loginError(err)
		}
		sys.Root.Send(sender, reply)
	}()
}

// loginError keeps dockerd's status: 401 for a token server's refusal,
// 500 otherwise (a Basic registry's refusal included).
func loginError(err error) error {
	if errors.Is(err, registry.ErrUnauthorized) {
		return messages.Unauthorized("%s", err.Error())
	}
	return messages.Internal("%s", err.Error())
}

// imagePush is one docker push: its tags one after another.
type imagePush struct {
	env      *Env
	repo     string
	items    []pushItem
	auth     *messages.RegistryAuth // this request's, never stored
	progress chan messages.ProgressEvent
	state    string
}

type pushDone struct{}

func (p *imagePush) Kind() string  { return "image-push" }
func (p *imagePush) State() string { return p.state + " " + p.repo }

func (p *imagePush) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.begin(ctx)
	case *pushDone:
		p.state = "done"
		ctx.Stop(ctx.Self())
	case *goroutinePanic:
		p.progress <- messages.ProgressEvent{Err: messages.Internal("push %s: %s", familiar(p.repo), m.reason)}
		close(p.progress)
		p.state = "done"
		ctx.Stop(ctx.Self())
	}
}

// begin runs the push in a goroutine, which owns the progress channel
// until it closes it.
func (p *imagePush) begin(ctx actor.Context) {
	sys, self, images := ctx.ActorSystem(), ctx.Self(), ctx.Parent()
	pusher := &registry.Pusher{Blobs: p.env.Blobs, Credentials: credentials(p.auth)}
	env, repo, items, progress := p.env, p.repo, p.items, p.progress
	goSafe(sys, self, func() any {
		pctx, cancel := deadline(pushTimeout)
		defer cancel()
		send := func(msg jsonstream.Message) { progress <- messages.ProgressEvent{Message: msg} }
		send(jsonstream.Message{Status: "The push refers to repository [" + repo + "]"})
		for _, it := range items {
			res, err := pusher.Push(pctx, it.rec, it.target, send)
			if err != nil {
				progress <- messages.ProgressEvent{Err: messages.Internal("%s", err.Error())}
				close(progress)
				return &pushDone{}
			}
			// the repo digest is listed before the client hears the end
			_, _ = sys.Root.RequestFuture(images, &messages.PushedImage{ID: it.rec.ID, Repo: repo, Digest: digest.Digest(res.Digest)}, 10*time.Second).Result()
			env.publish(sys.Root, messages.NewEvent(events.ImageEventType, events.ActionPush, familiar(it.target), map[string]string{"name": familiar(it.target)}))
		}
		close(progress)
		return &pushDone{}
	})
}

// distributionInspect asks the registry, off the mailbox, what a name
// resolves to, with the request's credentials only.
func (a *imagesActor) distributionInspect(ctx actor.Context, m *messages.DistributionInspect) {
	puller := &registry.Puller{Credentials: credentials(m.Auth)}
	respondLater(ctx, func() any {
		ictx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := puller.Inspect(ictx, m.Name)
		if err != nil {
			return distributionError(m.Name, err)
		}
		return &messages.DistributionInspectReply{Result: res}
	})
}

// distributionError keeps dockerd's statuses: a refusal is a 401, an
// unknown manifest a 404.
func distributionError(name string, err error) error {
	switch {
	case errors.Is(err, registry.ErrUnauthorized):
		return &messages.Error{Kind: messages.KindUnauthorized, Msg: err.Error()}
	case errors.Is(err, registry.ErrNotFound):
		return messages.NotFound("%s", err.Error())
	}
	return pullError(name, err)
}
