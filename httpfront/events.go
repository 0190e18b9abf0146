package httpfront

import (
	"bufio"
	"encoding/json"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

// eventLine is an event as written on the wire: the current shape plus the
// legacy status/id/from fields older SDKs still read.
type eventLine struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

func (s *Server) systemEvents(ctx *fasthttp.RequestCtx) {
	q := ctx.QueryArgs()
	since, err := parseTimestamp(string(q.Peek("since")))
	if err != nil {
		writeError(ctx, err)
		return
	}
	until, err := parseTimestamp(string(q.Peek("until")))
	if err != nil {
		writeError(ctx, err)
		return
	}
	filters, err := filtersParam(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	ch := make(chan events.Message, 1024)
	res, err := s.ask(s.sys.Events, &messages.SubscribeEvents{Since: since, Until: until, Filters: filters, Events: ch}, quickDeadline)
	if err != nil {
		writeError(ctx, err)
		return
	}
	id := res.(*messages.SubscribeEventsReply).ID
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	streamNow(ctx)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.sys.Root.Send(s.sys.Events, &messages.UnsubscribeEvents{ID: id})
		var deadline <-chan time.Time
		if !until.IsZero() {
			t := time.NewTimer(time.Until(until))
			defer t.Stop()
			deadline = t.C
		}
		enc := json.NewEncoder(w)
		emit := func(ev events.Message) error {
			line := eventLine{Message: ev}
			if ev.Type == events.ContainerEventType || ev.Type == events.ImageEventType {
				line.Status, line.ID, line.From = string(ev.Action), ev.Actor.ID, ev.Actor.Attributes["image"]
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
			return w.Flush()
		}
		for {
			select {
			case ev, ok := <-ch:
				if !ok || emit(ev) != nil {
					return
				}
			case <-deadline:
				// What was queued before the deadline still goes out.
				for {
					select {
					case ev, ok := <-ch:
						if !ok || time.Unix(0, ev.TimeNano).After(until) || emit(ev) != nil {
							return
						}
					default:
						return
					}
				}
			}
		}
	})
}
