package actors

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

var updateDoc = flag.Bool("update-doc", false, "rewrite docs/architecture.md's lifecycle tables from the code")

// TestLifecycleTableComplete: every request has a rule in every phase, a
// refusal has words, and every phase but dead leads somewhere.
func TestLifecycleTableComplete(t *testing.T) {
	w := who{id: strings.Repeat("0", 64), ref: "c"}
	for k := reqKind(0); k < numReqKinds; k++ {
		for p := phase(0); p < numPhases; p++ {
			r := requestTable[k][p]
			switch r.act {
			case actUnset:
				t.Errorf("%s in %s: no rule", k, p)
			case actRefuse:
				if r.refuse == nil {
					t.Errorf("%s in %s: a refusal without words", k, p)
					continue
				}
				if err := r.refuse.words(w); err == nil || err.Error() == "" {
					t.Errorf("%s in %s: empty refusal", k, p)
				}
			case actWait:
				if p == phaseDead {
					t.Errorf("%s waits in dead, which never ends", k)
				}
			}
		}
	}
	for p := phase(0); p < numPhases; p++ {
		if p != phaseDead && len(transitions[p]) == 0 {
			t.Errorf("%s leads nowhere", p)
		}
		for _, q := range transitions[p] {
			if q == p {
				t.Errorf("%s to itself in the transitions", p)
			}
		}
	}
}

const (
	docPath     = "../docs/architecture.md"
	docTableBeg = "<!-- lifecycle tables: generated from actors/lifecycle.go by lifecycleMarkdown; do not edit -->\n"
	docTableEnd = "<!-- end of lifecycle tables -->\n"
)

// TestLifecycleDoc: docs/architecture.md shows the tables the code has
// (-update-doc rewrites them there).
func TestLifecycleDoc(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, docTableBeg), strings.Index(doc, docTableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no lifecycle tables between %q and %q", docPath, docTableBeg, docTableEnd)
	}
	want := docTableBeg + lifecycleMarkdown() + docTableEnd
	got := doc[i : j+len(docTableEnd)]
	if got == want {
		return
	}
	if *updateDoc {
		if err := os.WriteFile(docPath, []byte(doc[:i]+want+doc[j+len(docTableEnd):]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's lifecycle tables differ from the code's: go test ./actors -run TestLifecycleDoc -update-doc", docPath)
}

// errorLog records what the tree logs at error level.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelError }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func (l *errorLog) check(t *testing.T, what string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, what) {
			t.Errorf("logged: %s", m)
		}
	}
}

// lifecycleTree is a tree on a fakeDriver.
type lifecycleTree struct {
	t   *testing.T
	sys *System
	env *Env
	d   *fakeDriver
	log *errorLog
}

func startLifecycleTree(t *testing.T, recs ...*persistence.ContainerRecord) *lifecycleTree {
	t.Helper()
	lt := &lifecycleTree{t: t, d: newFakeDriver(), log: &errorLog{}}
	lt.env = newTestEnv(t, recs...)
	lt.env.Driver, lt.env.Log, lt.env.firstRestartDelay = lt.d, slog.New(lt.log), time.Hour
	sys, err := Start(lt.env)
	if err != nil {
		t.Fatal(err)
	}
	lt.sys = sys
	t.Cleanup(sys.Stop)
	t.Cleanup(lt.d.releaseAll) // before the tree stops (cleanups run last first)
	t.Cleanup(func() { lt.log.check(t, "transition not in the table") })
	return lt
}

// request sends msg through the containers supervisor; the reply comes
// on the channel (nil for a timeout).
func (lt *lifecycleTree) request(msg any, timeout time.Duration) <-chan any {
	ch := make(chan any, 1)
	f := lt.sys.Root.RequestFuture(lt.sys.Containers, msg, timeout)
	go func() {
		res, err := f.Result()
		if err != nil {
			res = nil
		}
		ch <- res
	}()
	return ch
}

// must sends msg and wants a reply that is not an error.
func (lt *lifecycleTree) must(msg any) any {
	lt.t.Helper()
	res := <-lt.request(msg, 10*time.Second)
	if _, failed := res.(error); failed || res == nil {
		lt.t.Fatalf("%T: %v", msg, res)
	}
	return res
}

// phase is the container's phase as the actor tree shows it.
func (lt *lifecycleTree) phase(id string) string {
	res, err := lt.sys.Root.RequestFuture(lt.sys.Registry, &messages.ActorTree{}, 5*time.Second).Result()
	if err != nil {
		lt.t.Fatal(err)
	}
	var found string
	var walk func(n *messages.ActorNode)
	walk = func(n *messages.ActorNode) {
		if strings.HasSuffix(n.Path, "/"+id) {
			found = n.State
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(res.(*messages.ActorTreeReply).Root)
	return found
}

func (lt *lifecycleTree) waitPhase(id string, want phase) {
	lt.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := lt.phase(id)
		if got == want.String() {
			return
		}
		if time.Now().After(deadline) {
			lt.t.Fatalf("%s: phase %q, want %s", id, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lifecycleCase is one request kind in one phase: a container of its own.
type lifecycleCase struct {
	k      reqKind
	p      phase
	id     string
	name   string
	execID string
}

func lifecycleRecord(c *lifecycleCase) *persistence.ContainerRecord {
	rec := testRecord(c.id, c.name)
	rec.Path = "run"
	rec.State = persistence.ContainerState{Status: container.StateCreated}
	switch c.p {
	case phaseStopping:
		rec.Path = "ignore-term"
	case phaseRestarting:
		// SIGTERM ends the run without ending the policy.
		rec.Config.StopSignal = "SIGUSR1"
		rec.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyAlways}
		rec.State = ranBefore()
	}
	return rec
}

// ranBefore is the state of a container that started once and exited:
// one the policy brings back when the tree starts (a never-started one
// stays created).
func ranBefore() persistence.ContainerState {
	at := time.Now().UTC().Add(-time.Minute)
	return persistence.ContainerState{Status: container.StateExited, StartedAt: at, FinishedAt: at.Add(time.Second)}
}

func (c *lifecycleCase) ref() messages.Ref { return messages.Ref{ID: c.name} }

// request is a request of kind c.k for c's container.
func (c *lifecycleCase) request() any {
	switch c.k {
	case reqStart:
		return &messages.StartContainer{Ref: c.ref()}
	case reqStop:
		return &messages.StopContainer{Ref: c.ref()}
	case reqRestart:
		return &messages.RestartContainer{Ref: c.ref()}
	case reqKill:
		return &messages.KillContainer{Ref: c.ref()}
	case reqRemove:
		return &messages.RemoveContainer{Ref: c.ref()}
	case reqRemoveForce:
		return &messages.RemoveContainer{Ref: c.ref(), Force: true}
	case reqWait:
		return &messages.WaitContainerStream{Ref: c.ref(), Condition: container.WaitConditionNotRunning, Result: make(chan messages.WaitReply, 1)}
	case reqInspect:
		return &messages.InspectContainer{Ref: c.ref()}
	case reqAttach:
		return &messages.AttachContainer{Ref: c.ref(), Stdout: true, Logs: true}
	case reqLogs:
		return &messages.ContainerLogs{Ref: c.ref(), Stdout: true}
	case reqResize:
		return &messages.ResizeContainer{Ref: c.ref(), Height: 24, Width: 80}
	case reqPause:
		return &messages.PauseContainer{Ref: c.ref()}
	case reqUnpause:
		return &messages.UnpauseContainer{Ref: c.ref()}
	case reqTop:
		return &messages.TopContainer{Ref: c.ref()}
	case reqStats:
		return &messages.StatsContainer{Ref: c.ref()}
	case reqFiles:
		return &messages.GetArchive{FileRequest: messages.FileRequest{Ref: c.ref()}, Path: fakeFilePath}
	case reqExecCreate:
		return &messages.CreateExec{Ref: c.ref(), Config: container.ExecCreateRequest{Cmd: []string{"run"}}}
	case reqExecStart:
		return &messages.StartExec{Exec: messages.Exec{ExecID: c.execID}, Detach: true}
	case reqExecOther:
		return &messages.InspectExec{Exec: messages.Exec{ExecID: c.execID}}
	case reqConnect:
		return &messages.ConnectNetwork{Ref: c.ref(), Network: netNone, NetworkID: netNone, NetworkName: netNone}
	case reqDisconnect:
		return &messages.DisconnectNetwork{Ref: c.ref(), Network: "other", NetworkID: "other", NetworkName: "other"}
	case reqRename:
		return &messages.RenameContainer{Ref: c.ref(), Name: c.name + "-renamed"}
	}
	panic(fmt.Sprintf("no request for %s", c.k))
}

// needsExec: the exec requests need an exec made while the container ran.
func (c *lifecycleCase) needsExec() bool {
	return c.k == reqExecStart || c.k == reqExecOther
}

// enter begins bringing c's container into c.p, settle waits until it
// is there (the dead ones of a phase fail together, which is quicker).
// Every phase but created is reached through a run, in which an exec is
// made for the exec requests.
func (lt *lifecycleTree) enter(c *lifecycleCase) {
	lt.t.Helper()
	if c.p == phaseCreated {
		return
	}
	if c.p == phaseRestarting {
		lt.waitPhase(c.id, phaseRunning) // the policy starts it with the tree
	} else {
		lt.must(&messages.StartContainer{Ref: c.ref()})
	}
	if c.needsExec() {
		c.execID = lt.must(&messages.CreateExec{Ref: c.ref(), Config: container.ExecCreateRequest{Cmd: []string{"run"}}}).(*messages.CreateExecReply).ID
	}
	switch c.p {
	case phasePaused:
		lt.must(&messages.PauseContainer{Ref: c.ref()})
	case phaseStopping:
		never := time.Duration(-1)
		lt.request(&messages.StopContainer{Ref: c.ref(), Timeout: &never}, time.Minute)
	case phaseRemoving:
		lt.d.holdKills(c.id)
		lt.request(&messages.RemoveContainer{Ref: c.ref(), Force: true}, time.Minute)
	case phaseExited:
		lt.must(&messages.KillContainer{Ref: c.ref()})
	case phaseRestarting:
		lt.must(&messages.KillContainer{Ref: c.ref(), Signal: "SIGTERM"})
	case phaseStarting:
		lt.must(&messages.KillContainer{Ref: c.ref()})
		lt.d.hold(c.id)
		lt.request(&messages.StartContainer{Ref: c.ref()}, time.Minute)
		select {
		case <-lt.d.booting:
		case <-time.After(10 * time.Second):
			lt.t.Fatal("the start never reached its boot")
		}
	case phaseDead:
		pid := lt.sys.Actors.NewLocalPID(lt.sys.Containers.Id + "/" + c.id)
		for range 20 {
			lt.sys.Root.Send(pid, &goroutinePanic{reason: "injected by test"})
		}
	}
}

func (lt *lifecycleTree) settle(c *lifecycleCase) {
	lt.t.Helper()
	if c.p != phaseDead {
		lt.waitPhase(c.id, c.p)
		return
	}
	// Requests queued to the actor while it failed may be lost with it:
	// poll with short deadlines.
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := <-lt.request(&messages.InspectContainer{Ref: c.ref()}, 500*time.Millisecond)
		if r, ok := res.(*messages.InspectContainerReply); ok && r.Container.State.Dead {
			return
		}
		if time.Now().After(deadline) {
			lt.t.Fatal("the container never showed as dead")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// release closes what a reply holds open.
func release(res any) {
	switch r := res.(type) {
	case *messages.AttachReply:
		if r.Log != nil {
			r.Log.Close()
		}
		if r.Output != nil {
			r.Output.Close()
		}
	case *messages.LogsReply:
		if r.Log != nil {
			r.Log.Close()
		}
		if r.Live != nil {
			r.Live.Close()
		}
	case *messages.GetArchiveReply:
		r.Archive.Close()
	}
}

// handlerRefusals are the handled cells whose handler refuses with a
// table's words for a reason below the phase: in stopping, the freezer
// (a stop thawed it; these containers are not frozen).
var handlerRefusals = map[[2]int]bool{
	{int(reqUnpause), int(phaseStopping)}: true,
}

// tableRefusal says whether err is one of row k's refusals.
func tableRefusal(k reqKind, w who, err error) bool {
	for p := phase(0); p < numPhases; p++ {
		if r := requestTable[k][p]; r.act == actRefuse && r.refuse.words(w).Error() == err.Error() {
			return true
		}
	}
	return false
}

// TestLifecycleRequests sends every request kind to a container in every
// phase and checks that the actor does what the table says: a refusal
// with its words and status at once; a kept request answered only once
// the phase ends; a handled one answered by its handler (now, or when
// the transitional phase it starts ends), never with a refusal.
func TestLifecycleRequests(t *testing.T) {
	for p := phase(0); p < numPhases; p++ {
		t.Run(p.String(), func(t *testing.T) {
			var cases []*lifecycleCase
			var recs []*persistence.ContainerRecord
			for k := reqKind(0); k < numReqKinds; k++ {
				c := &lifecycleCase{k: k, p: p, id: fmt.Sprintf("%02x%02x%s", int(p), int(k), strings.Repeat("0", 60)), name: fmt.Sprintf("lc-%s-%d", p, k)}
				if c.needsExec() && p == phaseCreated {
					continue // no exec can exist in a container that never ran
				}
				cases = append(cases, c)
				recs = append(recs, lifecycleRecord(c))
			}
			lt := startLifecycleTree(t, recs...)
			for _, c := range cases {
				lt.enter(c)
			}
			for _, c := range cases {
				lt.settle(c)
			}
			for _, c := range cases {
				t.Run(c.k.String(), func(t *testing.T) {
					lt.t = t
					lt.check(c)
				})
			}
			lt.t = t
			lt.quiesce(cases)
		})
	}
}

// quiesce ends every transitional phase the cases left, so that the tree
// stops with nothing under way.
func (lt *lifecycleTree) quiesce(cases []*lifecycleCase) {
	for _, c := range cases {
		lt.d.finish(c.id)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range cases {
		for {
			p := lt.phase(c.id)
			if p != phaseStarting.String() && p != phaseStopping.String() && p != phaseRemoving.String() {
				break
			}
			if time.Now().After(deadline) {
				lt.t.Fatalf("%s stays %s", c.name, p)
			}
			lt.d.finish(c.id)
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func (lt *lifecycleTree) check(c *lifecycleCase) {
	t := lt.t
	r := requestTable[c.k][c.p]
	w := who{id: c.id, ref: c.name}
	reply := lt.request(c.request(), time.Minute)
	switch r.act {
	case actRefuse:
		var res any
		select {
		case res = <-reply:
		case <-time.After(10 * time.Second):
			t.Fatalf("no refusal")
		}
		want := r.refuse.words(w)
		got, ok := res.(error)
		if !ok || got.Error() != want.Error() || messages.KindOf(got) != messages.KindOf(want) {
			t.Errorf("got %T %v, want the refusal %q (kind %d)", res, res, want, messages.KindOf(want))
		}
	case actWait:
		select {
		case res := <-reply:
			release(res)
			t.Fatalf("answered while it should wait: %T %v", res, res)
		case <-time.After(300 * time.Millisecond):
		}
		lt.d.finish(c.id)
		select {
		case res := <-reply:
			release(res)
			if res == nil {
				t.Errorf("no answer after the phase ended")
			}
		case <-time.After(20 * time.Second):
			t.Errorf("no answer after the phase ended")
		}
	case actHandle:
		var res any
		select {
		case res = <-reply:
		case <-time.After(time.Second):
			// Answered when the phase it began (or found) ends.
			lt.d.finish(c.id)
			select {
			case res = <-reply:
			case <-time.After(20 * time.Second):
				t.Fatalf("no answer after the phase ended")
			}
		}
		release(res)
		if res == nil {
			t.Fatalf("no answer")
		}
		if err, ok := res.(error); ok && tableRefusal(c.k, w, err) && !handlerRefusals[[2]int{int(c.k), int(c.p)}] {
			t.Errorf("handled, yet refused: %v", err)
		}
	}
}

// getArchive asks for fakeFilePath of the container named name, with
// gone as the requester's Gone.
func getArchive(name string, gone <-chan struct{}) *messages.GetArchive {
	return &messages.GetArchive{FileRequest: messages.FileRequest{Ref: messages.Ref{ID: name}, Gone: gone}, Path: fakeFilePath}
}

// TestCopyHoldsTheFiles: while a copy holds a stopped container's files
// through a machine of its own, rm waits for it and a start boots only
// once that machine is off (they were refused with "busy with a copy").
func TestCopyHoldsTheFiles(t *testing.T) {
	a := testRecord(strings.Repeat("a", 64), "copied")
	b := testRecord(strings.Repeat("b", 64), "started")
	a.Path, b.Path = "run", "run"
	lt := startLifecycleTree(t, a, b)
	for _, name := range []string{"copied", "started"} {
		archive := lt.must(getArchive(name, nil)).(*messages.GetArchiveReply).Archive
		var reply <-chan any
		if name == "copied" {
			reply = lt.request(&messages.RemoveContainer{Ref: messages.Ref{ID: name}}, time.Minute)
		} else {
			reply = lt.request(&messages.StartContainer{Ref: messages.Ref{ID: name}}, time.Minute)
		}
		select {
		case res := <-reply:
			t.Fatalf("%s: answered while a copy holds the files: %v", name, res)
		case <-time.After(300 * time.Millisecond):
		}
		if got, err := io.ReadAll(archive); err != nil || string(got) != fakeFile {
			t.Errorf("%s: read %q, %v", name, got, err)
		}
		archive.Close()
		select {
		case res := <-reply:
			if _, ok := res.(*messages.Accepted); !ok {
				t.Errorf("%s after the copy: %T %v", name, res, res)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no answer after the copy", name)
		}
	}
	lt.waitPhase(b.ID, phaseRunning)
}

// TestCopyWaitsForStart: a copy asked for during a start waits for it,
// as on dockerd, and is then served by the running machine's agent.
func TestCopyWaitsForStart(t *testing.T) {
	rec := testRecord(strings.Repeat("c", 64), "starting")
	rec.Path = "run"
	lt := startLifecycleTree(t, rec)
	lt.d.hold(rec.ID)
	started := lt.request(&messages.StartContainer{Ref: messages.Ref{ID: "starting"}}, time.Minute)
	select {
	case <-lt.d.booting:
	case <-time.After(10 * time.Second):
		t.Fatal("the start never reached its boot")
	}
	gone := make(chan struct{})
	defer close(gone)
	reply := lt.request(getArchive("starting", gone), time.Minute)
	select {
	case res := <-reply:
		t.Fatalf("answered during the start: %T %v", res, res)
	case <-time.After(300 * time.Millisecond):
	}
	lt.d.finish(rec.ID)
	var res any
	select {
	case res = <-reply:
	case <-time.After(20 * time.Second):
		t.Fatal("no answer after the start")
	}
	r, ok := res.(*messages.GetArchiveReply)
	if !ok {
		t.Fatalf("after the start: %T %v", res, res)
	}
	defer r.Archive.Close()
	if got, err := io.ReadAll(r.Archive); err != nil || string(got) != fakeFile || r.Stat.Name != "data" {
		t.Errorf("read %q (%+v), %v", got, r.Stat, err)
	}
	if res := <-started; res == nil {
		t.Error("the start was not answered")
	}
	if _, boots := lt.d.lastMachine(rec.ID); boots != 1 {
		t.Errorf("%d machines booted; the copy should use the running one", boots)
	}
}

// TestCopyLetsGo: the machine booted for a copy is powered off when the
// requester hangs up, however it does: closing the archive unread,
// closing Gone without closing the archive, or giving up while the
// machine still boots.
func TestCopyLetsGo(t *testing.T) {
	rec := testRecord(strings.Repeat("d", 64), "copied")
	rec.Path = "run"
	lt := startLifecycleTree(t, rec)
	off := func(what string) {
		t.Helper()
		m, _ := lt.d.lastMachine(rec.ID)
		if m == nil {
			t.Fatalf("%s: no machine", what)
		}
		select {
		case <-m.Done():
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the machine for the files stays up", what)
		}
	}

	lt.must(getArchive("copied", nil)).(*messages.GetArchiveReply).Archive.Close()
	off("archive closed unread")

	gone := make(chan struct{})
	lt.must(getArchive("copied", gone))
	close(gone)
	off("gone closed")

	lt.d.hold(rec.ID)
	gone = make(chan struct{})
	reply := lt.request(getArchive("copied", gone), time.Minute)
	select {
	case <-lt.d.booting:
	case <-time.After(10 * time.Second):
		t.Fatal("the copy never booted a machine")
	}
	close(gone)
	if res := <-reply; !errors.Is(asError(res), errRequesterGone) {
		t.Errorf("a requester gone during the boot: %T %v", res, res)
	}
	lt.d.finish(rec.ID)
	deadline := time.Now().Add(10 * time.Second)
	for _, boots := lt.d.lastMachine(rec.ID); boots < 3; _, boots = lt.d.lastMachine(rec.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the held boot never ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	off("gone during the boot")

	// And the container starts as usual afterwards.
	lt.must(&messages.StartContainer{Ref: messages.Ref{ID: "copied"}})
	lt.waitPhase(rec.ID, phaseRunning)
}

// TestNoAckAfterFailedPersist: with a store that refuses every write, a
// change that must be durable is answered with the error and not made:
// a pause (the guest is paused, the requester hears the record is not),
// the end of a policy's restarts, a kill of a paused container.
func TestNoAckAfterFailedPersist(t *testing.T) {
	paused := testRecord(strings.Repeat("1", 64), "paused")
	restarting := testRecord(strings.Repeat("2", 64), "restarting")
	running := testRecord(strings.Repeat("3", 64), "running")
	for _, r := range []*persistence.ContainerRecord{paused, restarting, running} {
		r.Path = "run"
		r.State = persistence.ContainerState{Status: container.StateCreated}
	}
	restarting.Config.StopSignal = "SIGUSR1"
	restarting.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyAlways}
	restarting.State = ranBefore()
	lt := startLifecycleTree(t, paused, restarting, running)
	lt.must(&messages.StartContainer{Ref: messages.Ref{ID: "paused"}})
	lt.must(&messages.PauseContainer{Ref: messages.Ref{ID: "paused"}})
	lt.must(&messages.StartContainer{Ref: messages.Ref{ID: "running"}})
	lt.waitPhase(restarting.ID, phaseRunning)
	lt.must(&messages.KillContainer{Ref: messages.Ref{ID: "restarting"}, Signal: "SIGTERM"})
	lt.waitPhase(restarting.ID, phaseRestarting)

	lt.env.Store.Close() // every write fails from here
	refused := func(msg any) {
		t.Helper()
		res := <-lt.request(msg, 10*time.Second)
		if err, ok := res.(error); !ok || messages.KindOf(err) != messages.KindInternal {
			t.Errorf("%T with a broken store: %T %v", msg, res, res)
		}
	}
	refused(&messages.KillContainer{Ref: messages.Ref{ID: "paused"}})
	lt.waitPhase(paused.ID, phasePaused)
	refused(&messages.StopContainer{Ref: messages.Ref{ID: "paused"}})
	lt.waitPhase(paused.ID, phasePaused)
	refused(&messages.StopContainer{Ref: messages.Ref{ID: "restarting"}})
	lt.waitPhase(restarting.ID, phaseRestarting)
	refused(&messages.KillContainer{Ref: messages.Ref{ID: "restarting"}})
	lt.waitPhase(restarting.ID, phaseRestarting)
	refused(&messages.PauseContainer{Ref: messages.Ref{ID: "running"}})
	if got := inspect(t, lt.sys, "restarting"); got.State.Status != container.StateRestarting {
		t.Errorf("restarting after refused stops: %s", got.State.Status)
	}
}

func asError(res any) error {
	err, _ := res.(error)
	return err
}
