package actors

import (
	"sort"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/ctxext"

	"github.com/arcavm/arca/messages"
)

// Described is implemented by actors that want their own words in the
// actor tree: a kind ("container") and a state ("running").
type Described interface {
	Kind() string
	State() string
}

// StartTimed is implemented by actors that start machines, for the tree.
type StartTimed interface {
	LastStart() *messages.StartTimings
}

// nodeReport is what the introspection middleware sends on lifecycle
// events and state changes.
type nodeReport struct {
	path, kind, state string
	lastStart         *messages.StartTimings
	restarted         bool
	stopped           bool
}

// introspectMiddleware reports every actor's lifecycle and state to the
// introspection actor, so the tree needs no cooperation from the actors
// beyond Described. It runs on the actor's own goroutine.
func introspectMiddleware(registry *actor.PID) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			next(c, env)
			if registry == nil {
				return
			}
			r := nodeReport{path: c.Self().Id}
			switch env.Message.(type) {
			case *actor.Restarting:
				r.restarted = true
			case *actor.Stopped:
				r.stopped = true
			}
			if d, ok := c.Actor().(Described); ok {
				r.kind, r.state = d.Kind(), d.State()
			}
			// The last state reported lives in the actor's own context,
			// since one middleware chain serves every actor of its Props.
			last, _ := c.Get(lastStateID).(*lastState)
			if last == nil {
				last = &lastState{}
				c.Set(last)
			}
			if !r.restarted && !r.stopped {
				if _, started := env.Message.(*actor.Started); !started && r.state == last.state {
					return
				}
			}
			last.state = r.state
			// Read only for a report that goes out: a start's timings
			// change with its state, and this runs on every message.
			if st, ok := c.Actor().(StartTimed); ok {
				r.lastStart = st.LastStart()
			}
			c.ActorSystem().Root.Send(registry, &r)
		}
	}
}

var lastStateID = ctxext.NextContextExtensionID()

type lastState struct{ state string }

func (*lastState) ExtensionID() ctxext.ContextExtensionID { return lastStateID }

// introspection keeps the live tree; it is fed only by nodeReports.
type introspection struct {
	nodes map[string]*node
}

type node struct {
	kind, state string
	lastStart   *messages.StartTimings
	restarts    int
}

func newIntrospection() actor.Actor { return &introspection{nodes: map[string]*node{}} }

func (a *introspection) Kind() string  { return "introspection" }
func (a *introspection) State() string { return "running" }

func (a *introspection) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *nodeReport:
		if m.stopped {
			delete(a.nodes, m.path)
			return
		}
		n := a.nodes[m.path]
		if n == nil {
			n = &node{}
			a.nodes[m.path] = n
		}
		if m.restarted {
			n.restarts++
			n.state = "restarting"
			return
		}
		n.kind, n.state = m.kind, m.state
		if m.lastStart != nil {
			n.lastStart = m.lastStart
		}
	case *messages.ActorTree:
		ctx.Respond(&messages.ActorTreeReply{Root: a.tree()})
	}
}

// tree assembles nodes by path: "arca/containers/abc" is a child of
// "arca/containers".
func (a *introspection) tree() *messages.ActorNode {
	paths := make([]string, 0, len(a.nodes))
	for p := range a.nodes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	built := map[string]*messages.ActorNode{}
	var roots []*messages.ActorNode
	for _, p := range paths {
		n := a.nodes[p]
		an := &messages.ActorNode{Path: p, Kind: n.kind, State: n.state, Restarts: n.restarts, LastStart: n.lastStart}
		built[p] = an
		parent := p
		attached := false
		for {
			i := strings.LastIndexByte(parent, '/')
			if i < 0 {
				break
			}
			parent = parent[:i]
			if pn, ok := built[parent]; ok {
				pn.Children = append(pn.Children, an)
				attached = true
				break
			}
		}
		if !attached {
			roots = append(roots, an)
		}
	}
	if len(roots) == 1 {
		return roots[0]
	}
	return &messages.ActorNode{Path: "", Kind: "system", State: "running", Children: roots}
}
