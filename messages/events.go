package messages

import (
	"time"

	"github.com/moby/moby/api/types/events"
)

// Event is published by any actor; the events actor fans it out.
type Event struct{ Msg events.Message }

// NewEvent stamps an event with the current time.
func NewEvent(typ events.Type, action events.Action, id string, attrs map[string]string) *Event {
	now := time.Now()
	return &Event{Msg: events.Message{
		Type: typ, Action: action, Scope: "local",
		Actor: events.Actor{ID: id, Attributes: attrs},
		Time:  now.Unix(), TimeNano: now.UnixNano(),
	}}
}

// SubscribeEvents replays the buffered events from Since and, unless
// Until has passed, keeps sending new ones on Events until unsubscribed.
// Events is closed when the subscription ends (unsubscribed, or the
// subscriber fell too far behind).
type SubscribeEvents struct {
	Since, Until time.Time
	Filters      map[string][]string
	Events       chan events.Message
}

type SubscribeEventsReply struct{ ID int }

type UnsubscribeEvents struct{ ID int }
