package actors

import (
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/events"

	"github.com/arcavm/arca/messages"
)

// eventsActor keeps the recent events (so `since` can replay them) and
// hands new ones to subscribers. Publishing never blocks: a subscriber whose
// queue is full is cut off, so a slow client stalls nothing else.
type eventsActor struct {
	ring   []events.Message
	next   int
	full   bool
	subs   map[int]*eventSub
	lastID int
}

type eventSub struct {
	ch      chan events.Message
	filters map[string][]string
	until   time.Time
}

const eventRing = 1024

func newEventsActor() actor.Actor {
	return &eventsActor{ring: make([]events.Message, eventRing), subs: map[int]*eventSub{}}
}

func (a *eventsActor) Kind() string  { return "events" }
func (a *eventsActor) State() string { return "running" }

func (a *eventsActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.Event:
		a.ring[a.next] = m.Msg
		a.next = (a.next + 1) % eventRing
		if a.next == 0 {
			a.full = true
		}
		for id, s := range a.subs {
			if !s.until.IsZero() && time.Unix(0, m.Msg.TimeNano).After(s.until) {
				continue
			}
			if !eventMatches(m.Msg, s.filters) {
				continue
			}
			select {
			case s.ch <- m.Msg:
			default:
				close(s.ch)
				delete(a.subs, id)
			}
		}
	case *messages.SubscribeEvents:
		a.subscribe(ctx, m)
	case *actor.Stopping:
		// The daemon is going: end every stream.
		for id, sub := range a.subs {
			close(sub.ch)
			delete(a.subs, id)
		}
	case *messages.UnsubscribeEvents:
		if s, ok := a.subs[m.ID]; ok {
			close(s.ch)
			delete(a.subs, m.ID)
		}
	}
}

func (a *eventsActor) subscribe(ctx actor.Context, m *messages.SubscribeEvents) {
	for k := range m.Filters {
		if !eventFilterKeys[k] {
			ctx.Respond(messages.InvalidParameter("invalid filter '%s'", k))
			return
		}
	}
	// Replay what is buffered, oldest first, within [since, until].
	if !m.Since.IsZero() {
		start, n := 0, a.next
		if a.full {
			start, n = a.next, eventRing
		}
		for i := 0; i < n; i++ {
			ev := a.ring[(start+i)%eventRing]
			t := time.Unix(0, ev.TimeNano)
			if t.Before(m.Since) || (!m.Until.IsZero() && t.After(m.Until)) || !eventMatches(ev, m.Filters) {
				continue
			}
			select {
			case m.Events <- ev:
			default: // the replay overflows the queue: the oldest are lost
			}
		}
	}
	if !m.Until.IsZero() && !m.Until.After(time.Now()) {
		close(m.Events)
		ctx.Respond(&messages.SubscribeEventsReply{ID: 0})
		return
	}
	a.lastID++
	a.subs[a.lastID] = &eventSub{ch: m.Events, filters: m.Filters, until: m.Until}
	ctx.Respond(&messages.SubscribeEventsReply{ID: a.lastID})
}

var eventFilterKeys = map[string]bool{
	"type": true, "container": true, "image": true, "label": true, "event": true,
	"network": true, "volume": true, "daemon": true, "scope": true, "plugin": true,
	"node": true, "service": true, "secret": true, "config": true,
}

// eventMatches applies docker events --filter: values of one key are
// alternatives, keys must all match.
func eventMatches(ev events.Message, filters map[string][]string) bool {
	for k, vals := range filters {
		if len(vals) == 0 {
			continue
		}
		ok := false
		for _, v := range vals {
			if eventMatchesOne(ev, k, v) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func eventMatchesOne(ev events.Message, key, v string) bool {
	attrs := ev.Actor.Attributes
	switch key {
	case "type":
		return string(ev.Type) == v
	case "event":
		action := string(ev.Action)
		// "exec_start: sh -c ..." and "health_status: healthy" match their
		// prefix, as in dockerd.
		return action == v || strings.HasPrefix(action, v+":")
	case "container":
		return ev.Type == events.ContainerEventType && (strings.HasPrefix(ev.Actor.ID, v) || attrs["name"] == v)
	case "image":
		if ev.Type == events.ImageEventType {
			return ev.Actor.ID == v || attrs["name"] == v || strings.HasPrefix(strings.TrimPrefix(ev.Actor.ID, "sha256:"), strings.TrimPrefix(v, "sha256:"))
		}
		return attrs["image"] == v
	case "label":
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := attrs[k]
		return ok && (!hasValue || got == want)
	case "network":
		return ev.Type == events.NetworkEventType && (ev.Actor.ID == v || attrs["name"] == v)
	case "volume":
		return ev.Type == events.VolumeEventType && ev.Actor.ID == v
	case "scope":
		return ev.Scope == v
	}
	return false
}
