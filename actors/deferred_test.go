package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/messages"
)

// TestGivenUpRequestDropped: a request that waited for a start and whose
// asker was answered with a timeout meanwhile is not carried out when the
// start ends (the kill came later, after its 503); one still awaited is.
func TestGivenUpRequestDropped(t *testing.T) {
	rec := testRecord(strings.Repeat("d", 64), "slow")
	rec.Path = "run"
	lt := startLifecycleTree(t, rec)
	ref := messages.Ref{ID: "slow"}
	lt.d.hold(rec.ID)
	started := lt.request(&messages.StartContainer{Ref: ref}, time.Minute)
	select {
	case <-lt.d.booting:
	case <-time.After(10 * time.Second):
		t.Fatal("the start never reached its boot")
	}
	if res := <-lt.request(&messages.KillContainer{Ref: ref}, 200*time.Millisecond); res != nil {
		t.Fatalf("kill answered during the start: %v", res)
	}
	top := lt.request(&messages.TopContainer{Ref: ref}, time.Minute)
	lt.d.finishBoot(rec.ID)
	if res := <-started; res == nil {
		t.Fatal("start: no answer")
	} else if err, ok := res.(error); ok {
		t.Fatalf("start: %v", err)
	}
	if res := <-top; res == nil {
		t.Fatal("top waiting for the start: no answer")
	} else if _, ok := res.(*messages.TopReply); !ok {
		t.Fatalf("top waiting for the start: %T %v", res, res)
	}
	time.Sleep(300 * time.Millisecond)
	insp := lt.must(&messages.InspectContainer{Ref: ref}).(*messages.InspectContainerReply)
	if insp.Container.State == nil || !insp.Container.State.Running {
		t.Fatalf("the given-up kill was carried out: state %+v", insp.Container.State)
	}
}
