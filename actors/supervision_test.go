package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/layers"
)

// noDriver refuses to boot: these tests exercise the tree, not guests.
type noDriver struct{}

func (noDriver) Name() string { return "none" }
func (noDriver) Boot(context.Context, vm.MachineSpec) (vm.Machine, error) {
	return nil, errors.New("no machines in this test")
}

func startTestTree(t *testing.T, recs ...*persistence.ContainerRecord) (*System, *Env) {
	t.Helper()
	env := newTestEnv(t, recs...)
	sys, err := Start(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Stop)
	return sys, env
}

// newTestEnv is an Env over an in-memory store holding recs, with blobs
// and layers in a temporary directory.
func newTestEnv(t *testing.T, recs ...*persistence.ContainerRecord) *Env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := persistence.OpenStore("", true, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	root := t.TempDir()
	b, err := blobs.Open(root + "/blobs")
	if err != nil {
		t.Fatal(err)
	}
	l, err := layers.Open(root + "/layers")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := store.PutContainer(r); err != nil {
			t.Fatal(err)
		}
	}
	return &Env{Root: root, Store: store, Blobs: b, Layers: l, Driver: noDriver{}, Log: log}
}

func testRecord(id, name string) *persistence.ContainerRecord {
	return &persistence.ContainerRecord{
		ID: id, Name: name, Created: time.Now(), Image: "img", Path: "true",
		Config:     &container.Config{Hostname: id[:12], Labels: map[string]string{}},
		HostConfig: &container.HostConfig{},
		State:      persistence.ContainerState{Status: container.StateExited, ExitCode: 4},
	}
}

func inspect(t *testing.T, sys *System, ref string) container.InspectResponse {
	t.Helper()
	res, err := sys.Root.RequestFuture(sys.Containers, &messages.InspectContainer{Ref: messages.Ref{ID: ref}}, 5*time.Second).Result()
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	if e, ok := res.(error); ok {
		t.Fatalf("inspect %s: %v", ref, e)
	}
	return res.(*messages.InspectContainerReply).Container
}

// TestPanicRestartsOnlyThatContainer: a container actor that fails is
// restarted by its supervisor with its state, and no other actor notices.
func TestPanicRestartsOnlyThatContainer(t *testing.T) {
	a := testRecord(strings.Repeat("a", 64), "first")
	b := testRecord(strings.Repeat("b", 64), "second")
	sys, _ := startTestTree(t, a, b)

	// Asking through the supervisor waits for its restore to finish.
	inspect(t, sys, "first")
	pid := sys.Actors.NewLocalPID(sys.Containers.Id + "/" + a.ID)
	sys.Root.Send(pid, &goroutinePanic{reason: "injected by test"})

	// The failed actor comes back with its record; the other never left.
	deadline := time.Now().Add(5 * time.Second)
	var restarts map[string]int
	for time.Now().Before(deadline) {
		restarts = treeRestarts(t, sys)
		if restarts[a.ID] == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if restarts[a.ID] != 1 || restarts[b.ID] != 0 {
		t.Fatalf("restarts: %v", restarts)
	}
	if got := inspect(t, sys, "first"); got.ID != a.ID || got.State.ExitCode != 4 || got.Name != "/first" {
		t.Errorf("restarted container: %+v", got)
	}
	if got := inspect(t, sys, "second"); got.ID != b.ID {
		t.Errorf("other container: %+v", got)
	}
	for _, n := range []string{"images", "containers"} {
		if restarts[n] != 0 {
			t.Errorf("%s restarted: %v", n, restarts)
		}
	}
}

// treeRestarts maps the last path element of every actor to its restarts.
func treeRestarts(t *testing.T, sys *System) map[string]int {
	t.Helper()
	res, err := sys.Root.RequestFuture(sys.Registry, &messages.ActorTree{}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	var walk func(n *messages.ActorNode)
	walk = func(n *messages.ActorNode) {
		out[n.Path[strings.LastIndexByte(n.Path, '/')+1:]] = n.Restarts
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(res.(*messages.ActorTreeReply).Root)
	return out
}

// TestStartFailureIsReported: a start that cannot boot answers with the
// error and leaves the container as it was.
func TestStartFailureIsReported(t *testing.T) {
	a := testRecord(strings.Repeat("c", 64), "third")
	sys, _ := startTestTree(t, a)
	res, err := sys.Root.RequestFuture(sys.Containers, &messages.StartContainer{Ref: messages.Ref{ID: "third"}}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := res.(error); !ok || !strings.Contains(e.Error(), "no machines in this test") {
		t.Fatalf("start reply: %v", res)
	}
	if got := inspect(t, sys, "third"); got.State.Running || !strings.Contains(got.State.Error, "no machines") {
		t.Errorf("after failed start: %+v", got.State)
	}
}

// A panic in work answered by respondLater reaches the requester as an
// error (a 500), not as a value the front end cannot read.
func TestBackgroundPanicIsAnError(t *testing.T) {
	sys := actor.NewActorSystem()
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(string); ok {
			respondLater(ctx, func() any { panic("boom") })
		}
	}))
	res, err := sys.Root.RequestFuture(pid, "go", 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	e, ok := res.(error)
	if !ok || messages.KindOf(e) != messages.KindInternal || !strings.Contains(e.Error(), "boom") {
		t.Fatalf("reply %#v", res)
	}
}

// gatedDriver's Boot reports that it was called, then waits for release
// and fails: a start that stays in progress as long as a test needs.
type gatedDriver struct {
	booting, release chan struct{}
}

func (gatedDriver) Name() string { return "gated" }
func (d gatedDriver) Boot(context.Context, vm.MachineSpec) (vm.Machine, error) {
	d.booting <- struct{}{}
	<-d.release
	return nil, errors.New("no machines in this test")
}

// TestStopWaitsForStart: stop and kill that arrive while a start is in
// progress wait for it, as on dockerd, instead of a 409 "is starting".
func TestStopWaitsForStart(t *testing.T) {
	a := testRecord(strings.Repeat("d", 64), "fourth")
	// The driver is the Env's before the tree starts: actors read it from
	// their first message on.
	env := newTestEnv(t, a)
	d := gatedDriver{booting: make(chan struct{}, 1), release: make(chan struct{})}
	env.Driver = d
	sys, err := Start(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Stop)
	start := sys.Root.RequestFuture(sys.Containers, &messages.StartContainer{Ref: messages.Ref{ID: "fourth"}}, 10*time.Second)
	select {
	case <-d.booting:
	case <-time.After(5 * time.Second):
		t.Fatal("the start never reached its boot")
	}
	stop := sys.Root.RequestFuture(sys.Containers, &messages.StopContainer{Ref: messages.Ref{ID: "fourth"}}, 10*time.Second)
	kill := sys.Root.RequestFuture(sys.Containers, &messages.KillContainer{Ref: messages.Ref{ID: "fourth"}}, 10*time.Second)
	time.Sleep(100 * time.Millisecond)
	close(d.release)
	if res, err := start.Result(); err != nil || !strings.Contains(fmt.Sprint(res), "no machines") {
		t.Fatalf("start: %v %v", res, err)
	}
	// The start failed, so there is nothing to stop or kill: the answers
	// a stopped container gets, after the start, not "is starting".
	res, err := stop.Result()
	if e, ok := res.(error); err != nil || !ok || messages.KindOf(e) != messages.KindNotModified {
		t.Fatalf("stop: %v %v", res, err)
	}
	res, err = kill.Result()
	if e, ok := res.(error); err != nil || !ok || !strings.Contains(e.Error(), "is not running") {
		t.Fatalf("kill: %v %v", res, err)
	}
}

// TestRenameIsDurableFirst: a rename the store refuses leaves both names
// as they were in the index; one it accepts moves the name.
func TestRenameIsDurableFirst(t *testing.T) {
	a := testRecord(strings.Repeat("e", 64), "fifth")
	sys, env := startTestTree(t, a)
	inspect(t, sys, "fifth")
	env.Store.Close() // every write fails from here
	res, err := sys.Root.RequestFuture(sys.Containers, &messages.RenameContainer{Ref: messages.Ref{ID: "fifth"}, Name: "sixth"}, 5*time.Second).Result()
	if _, ok := res.(error); err != nil || !ok {
		t.Fatalf("rename with a broken store: %v %v", res, err)
	}
	if got := inspect(t, sys, "fifth"); got.Name != "/fifth" {
		t.Fatalf("old name after a failed rename: %q", got.Name)
	}
	res, _ = sys.Root.RequestFuture(sys.Containers, &messages.InspectContainer{Ref: messages.Ref{ID: "sixth"}}, 5*time.Second).Result()
	if e, ok := res.(error); !ok || messages.KindOf(e) != messages.KindNotFound {
		t.Fatalf("the new name resolves after a failed rename: %v", res)
	}
}

// TestDeadContainerActor: an actor that fails past its supervision's
// limit leaves its container dead, inspectable and removable, instead of
// a PID whose requests time out.
func TestDeadContainerActor(t *testing.T) {
	a := testRecord(strings.Repeat("f", 64), "seventh")
	sys, env := startTestTree(t, a)
	inspect(t, sys, "seventh")
	pid := sys.Actors.NewLocalPID(sys.Containers.Id + "/" + a.ID)
	for range 20 {
		sys.Root.Send(pid, &goroutinePanic{reason: "injected by test"})
	}
	// Requests queued to the actor while it failed may be lost with it:
	// poll with short deadlines.
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, _ := sys.Root.RequestFuture(sys.Containers, &messages.InspectContainer{Ref: messages.Ref{ID: "seventh"}}, 500*time.Millisecond).Result()
		if r, ok := res.(*messages.InspectContainerReply); ok && r.Container.State.Dead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container never showed as dead")
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err := sys.Root.RequestFuture(sys.Containers, &messages.StartContainer{Ref: messages.Ref{ID: "seventh"}}, 5*time.Second).Result()
	if e, ok := res.(error); err != nil || !ok || !strings.Contains(e.Error(), "is dead") {
		t.Fatalf("start of a dead container: %v %v", res, err)
	}
	res, err = sys.Root.RequestFuture(sys.Containers, &messages.RemoveContainer{Ref: messages.Ref{ID: "seventh"}}, 5*time.Second).Result()
	if _, ok := res.(*messages.Accepted); err != nil || !ok {
		t.Fatalf("rm of a dead container: %v %v", res, err)
	}
	if recs, _ := env.Store.Containers(); len(recs) != 0 {
		t.Fatalf("the dead container's record outlived its rm: %d records", len(recs))
	}
}

// A container's directory without a record (what a kill between the two
// leaves) goes at the next start; a recorded container's stays.
func TestRestoreSweepsOrphanDirectories(t *testing.T) {
	kept := strings.Repeat("a", 64)
	orphan := strings.Repeat("b", 64)
	env := newTestEnv(t, testRecord(kept, "kept"))
	for _, id := range []string{kept, orphan} {
		if err := os.MkdirAll(filepath.Join(env.containerDir(id), "upper", "etc"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sys, err := Start(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Stop)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(env.containerDir(orphan)); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the orphan's directory is still there")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(env.containerDir(kept), "upper", "etc")); err != nil {
		t.Errorf("the recorded container's files: %v", err)
	}
	if got := inspect(t, sys, "kept"); got.ID != kept {
		t.Errorf("inspect kept: %q", got.ID)
	}
}
