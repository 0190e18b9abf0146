// Package actors is Arca's supervision tree: a root supervisor with one
// supervisor per kind (containers, images), one actor per container and per
// in-flight image pull, and an introspection actor that keeps the live tree.
package actors

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/underlay"
	"github.com/arcavm/arca/internal/gateway"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/layers"
)

// Env is what every actor may use: immutable after start.
type Env struct {
	Root   string // --root
	Store  *persistence.Store
	Blobs  *blobs.Store
	Layers *layers.Store
	Driver vm.Driver
	Log    *slog.Logger
	// Underlay hands out machines' addresses on the underlay network; nil
	// when the host has none (containers then get no network interfaces).
	Underlay *underlay.Pool
	// Gateway makes the host's member of a network at its gateway
	// address (see internal/gateway); nil: containers reach nothing
	// outside their networks.
	Gateway func(address netip.Addr) (*gateway.Gateway, error)
	// LogOpts are the daemon's defaults for the json-file log driver's
	// options (--log-opt), merged into each container's at create.
	LogOpts map[string]string

	// firstRestartDelay replaces restartDelayMin when set (tests hold a
	// container between policy restarts with it).
	firstRestartDelay time.Duration

	// PIDs of the well-known actors, set as the tree is built.
	images     *actor.PID
	containers *actor.PID
	diskUsage  *actor.PID
	builds     *actor.PID
	registry   *actor.PID
	events     *actor.PID
	networks   *actor.PID
	volumes    *actor.PID
	netIndex   atomic.Pointer[networkIndex]
}

// publish hands an event to the events actor; it never blocks.
func (e *Env) publish(ctx actor.SenderContext, ev *messages.Event) {
	if e.events != nil {
		ctx.Send(e.events, ev)
	}
}

func (e *Env) containerDir(id string) string { return filepath.Join(e.Root, "containers", id) }

// props builds Props that report to introspection.
func (e *Env) props(producer actor.Producer, opts ...actor.PropsOption) *actor.Props {
	opts = append(opts, actor.WithReceiverMiddleware(introspectMiddleware(e.registry)))
	return actor.PropsFromProducer(producer, opts...)
}

// goSafe runs f on its own goroutine and turns a panic into an error sent
// as a message to pid: a panic outside an actor's Receive would otherwise
// kill the daemon.
func goSafe(sys *actor.ActorSystem, pid *actor.PID, f func() any) {
	go func() {
		var msg any
		defer func() {
			if r := recover(); r != nil {
				p := &goroutinePanic{value: fmt.Sprint(r), reason: fmt.Sprintf("%v\n%s", r, debug.Stack())}
				slog.Default().Error("panic in background work", "panic", p.reason)
				msg = p
			}
			if msg != nil && pid != nil {
				sys.Root.Send(pid, msg)
			}
		}()
		msg = f()
	}()
}

// goroutinePanic is a panic in background work. An actor that receives it
// fails as for any panic; a requester (respondLater) receives it as an
// error, which the front end answers with a 500.
type goroutinePanic struct{ value, reason string }

func (p *goroutinePanic) Error() string { return "internal error: " + p.value }

// respondLater answers the current request from a goroutine once f is done,
// without blocking the actor. f must not touch actor state.
func respondLater(ctx actor.Context, f func() any) {
	goSafe(ctx.ActorSystem(), ctx.Sender(), f)
}

// ask is Request + ReenterAfter with a deadline: cont runs on the actor's
// goroutine with the reply or an error.
func ask(ctx actor.Context, pid *actor.PID, msg any, timeout time.Duration, cont func(res any, err error)) {
	f := ctx.RequestFuture(pid, msg, timeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		if err == nil {
			if e, ok := res.(error); ok {
				err = e
				res = nil
			}
		}
		cont(res, err)
	})
}

// deadline is a context for work done on behalf of an actor.
func deadline(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
