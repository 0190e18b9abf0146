package actors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/persistence/containerlog"
)

func TestOutputHubLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), containerlog.FileName("c"))
	w, err := containerlog.OpenWriter(p, containerlog.Options{MaxSize: 2000, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	h := newOutputHub(w)
	defer h.close()
	var scratch []byte
	h.write(1, []byte("one\n"), &scratch)

	// Buffered, yet a snapshot holds it: snapshots flush first.
	s, err := h.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, s); got != "one\n" {
		t.Errorf("snapshot: %q", got)
	}

	// A follower gets the log up to now, then every later frame live.
	sub, s, err := h.subscribeAfterLog()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 { // enough to rotate
		h.write(2, []byte(strings.Repeat("x", 40)+"\n"), &scratch)
		if f, ok := sub.Next(); !ok || f.Stream != 2 {
			t.Fatalf("live frame %d: %v %v", i, f, ok)
		}
	}
	if got := readLog(t, s); got != "one\n" {
		t.Errorf("follower's snapshot: %q", got)
	}
	sub.Close()

	// Tools reading the file directly see output within the flush delay.
	h.write(1, []byte("last\n"), &scratch)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), `"log":"last\n"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last entry never reached the file: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readLog(t *testing.T, s *containerlog.Snapshot) string {
	t.Helper()
	defer s.Close()
	var sb strings.Builder
	err := s.Read(containerlog.Filter{Stdout: true, Stderr: true, Tail: -1}, func(e containerlog.Entry) error {
		sb.WriteString(e.Log)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}
