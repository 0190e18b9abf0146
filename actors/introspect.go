package actors

import (
	"sort"
	"strings"
	"time"

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

// Detailed is implemented by actors that say more of their thing than a
// state, for the live page: a container's name, a network's members. It
// is called after every message, on the actor's goroutine: keep it cheap.
type Detailed interface {
	Detail() *messages.NodeDetail
}

// nodeReport is what the introspection middleware sends on lifecycle
// events and state changes.
type nodeReport struct {
	path, kind, state string
	lastStart         *messages.StartTimings
	detail            *messages.NodeDetail
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
			last.follow(env.Message)
			r.detail = detailOf(c.Actor(), last)
			if !r.restarted && !r.stopped {
				if _, started := env.Message.(*actor.Started); !started && r.state == last.state && r.detail.Equal(last.detail) {
					return
				}
			}
			last.state, last.detail = r.state, r.detail
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

// lastState is what the middleware last reported of one actor, and what
// it follows of the messages passing by (a pull's progress).
type lastState struct {
	state  string
	detail *messages.NodeDetail
	layers []messages.LayerProgress
}

func (*lastState) ExtensionID() ctxext.ContextExtensionID { return lastStateID }

// introspection keeps the live tree; it is fed only by nodeReports.
type introspection struct {
	nodes map[string]*node
	// watchers get the whole tree after changes (WatchActorTree),
	// at most every pushInterval.
	watchers []chan *messages.ActorNode
	armed    bool // a pushTree is on its way
}

type node struct {
	kind, state string
	lastStart   *messages.StartTimings
	detail      *messages.NodeDetail
	restarts    int
}

// pushInterval bounds how often watchers get a new tree: a pull's
// progress or a burst of starts changes the tree many times a second.
const pushInterval = 100 * time.Millisecond

// pushTree tells the introspection actor to send watchers the tree.
type pushTree struct{}

func newIntrospection() actor.Actor { return &introspection{nodes: map[string]*node{}} }

func (a *introspection) Kind() string  { return "introspection" }
func (a *introspection) State() string { return "running" }

func (a *introspection) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *nodeReport:
		a.report(m)
		a.changed(ctx)
	case *messages.ActorTree:
		ctx.Respond(&messages.ActorTreeReply{Root: a.tree()})
	case *messages.WatchActorTree:
		a.watchers = append(a.watchers, m.Updates)
		ctx.Respond(&messages.ActorTreeReply{Root: a.tree()})
	case *messages.UnwatchActorTree:
		for i, w := range a.watchers {
			if w == m.Updates {
				a.watchers = append(a.watchers[:i], a.watchers[i+1:]...)
				break
			}
		}
	case *pushTree:
		a.armed = false
		if len(a.watchers) == 0 {
			return
		}
		tree := a.tree()
		for _, w := range a.watchers {
			offerNewest(w, tree)
		}
	}
}

func (a *introspection) report(m *nodeReport) {
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
	n.kind, n.state, n.detail = m.kind, m.state, m.detail
	if m.lastStart != nil {
		n.lastStart = m.lastStart
	}
}

// changed arranges for watchers to get the tree soon, once for any
// number of changes until then. The tree is built when it goes out, so
// they see the newest.
func (a *introspection) changed(ctx actor.Context) {
	if a.armed || len(a.watchers) == 0 {
		return
	}
	a.armed = true
	sys, self := ctx.ActorSystem(), ctx.Self()
	time.AfterFunc(pushInterval, func() { sys.Root.Send(self, &pushTree{}) })
}

// offerNewest puts tree on w without blocking, replacing a tree the
// watcher has not taken yet: a slow watcher skips to the newest.
func offerNewest(w chan *messages.ActorNode, tree *messages.ActorNode) {
	for range 2 {
		select {
		case w <- tree:
			return
		default:
		}
		select {
		case <-w:
		default:
		}
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
		an := &messages.ActorNode{Path: p, Kind: n.kind, State: n.state, Restarts: n.restarts, LastStart: n.lastStart, Detail: n.detail}
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

// WatchTree subscribes updates to the live tree (messages.WatchActorTree)
// and returns the tree as it is now.
func (s *System) WatchTree(updates chan *messages.ActorNode) (*messages.ActorNode, error) {
	res, err := s.Root.RequestFuture(s.Registry, &messages.WatchActorTree{Updates: updates}, 5*time.Second).Result()
	if err != nil {
		return nil, err
	}
	return res.(*messages.ActorTreeReply).Root, nil
}

// UnwatchTree ends a WatchTree.
func (s *System) UnwatchTree(updates chan *messages.ActorNode) {
	s.Root.Send(s.Registry, &messages.UnwatchActorTree{Updates: updates})
}
