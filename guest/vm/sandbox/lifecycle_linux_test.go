package sandbox

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/wire"
)

// bootLimited boots a fresh image with limits.
func bootLimited(t *testing.T, memory, nanoCPUs int64) *box {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	os.Mkdir(upper, 0o755)
	os.Mkdir(work, 0o755)
	return bootSpec(t, vm.MachineSpec{ID: "limits", Layers: []string{newImage(t)}, UpperDir: upper, WorkDir: work,
		MemoryBytes: memory, NanoCPUs: nanoCPUs})
}

// agentCgroups are the host's cgroup dirs of the machine.
func agentCgroups(t *testing.T, b *box) *machineCgroup {
	return b.m.(*machine).cg
}

func TestMemoryLimitOOM(t *testing.T) {
	b := bootLimited(t, 64<<20, 0)
	// Holding 200 MB in a shell variable takes 200 MB of the shell's heap.
	r := b.run(t, wire.ProcessSpec{ID: "main", Main: true, Env: []string{"PATH=/bin"},
		Args: []string{"sh", "-c", `x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived ${#x}`}}, "")
	if r.status.Code != 137 || !r.status.OOMKilled || strings.Contains(r.stdout, "survived") {
		t.Fatalf("200 MB in a 64 MB container: %+v", r)
	}
}

func TestCPULimitWritten(t *testing.T) {
	b := bootLimited(t, 0, 1_500_000_000)
	cg := agentCgroups(t, b)
	var got string
	if data, err := os.ReadFile(filepath.Join(cg.v2, "cpu.max")); err == nil {
		got = strings.TrimSpace(string(data))
	} else {
		for _, d := range cg.v1 {
			if data, err := os.ReadFile(filepath.Join(d, "cpu.cfs_quota_us")); err == nil {
				period, _ := os.ReadFile(filepath.Join(d, "cpu.cfs_period_us"))
				got = strings.TrimSpace(string(data)) + " " + strings.TrimSpace(string(period))
			}
		}
	}
	if got != "150000 100000" {
		t.Fatalf("cpu quota %q, want 150000 100000", got)
	}
}

// The machine's cgroups go with it, paused or not.
func TestCgroupsRemoved(t *testing.T) {
	b := bootLimited(t, 64<<20, 1e9)
	cg := *agentCgroups(t, b)
	dirs := append([]string{cg.v2}, cg.v1...)
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("cgroup missing while running: %v", err)
		}
	}
	// Even with a frozen container.
	p, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "main", Main: true, Args: []string{"sleep", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := b.c.Pause(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b.m.Kill()
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left after Kill: %v", d, err)
		}
	}
}

func TestPause(t *testing.T) {
	b := bootFresh(t)
	p, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "yes", Main: true, Env: []string{"PATH=/bin"},
		Args: []string{"sh", "-c", "trap 'exit 3' TERM; while :; do echo x; done"}})
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(p.Stdout)
		for sc.Scan() {
			select {
			case lines <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(p.Stderr)
		for sc.Scan() {
		}
	}()
	waitLine := func(d time.Duration) bool {
		select {
		case <-lines:
		case <-time.After(d):
			return false
		}
		select { // a fresh one, not one buffered before the pause
		case <-lines:
			return true
		case <-time.After(d):
			return false
		}
	}
	if !waitLine(5 * time.Second) {
		t.Fatal("no output before pause")
	}
	if err := b.c.Pause(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Output written before the freeze may still be on its way.
	time.Sleep(200 * time.Millisecond)
	for len(lines) > 0 {
		<-lines
	}
	if waitLine(300 * time.Millisecond) {
		t.Fatal("output while paused")
	}
	if err := b.c.Ping(ctxT(t)); err != nil {
		t.Fatalf("ping while paused: %v", err)
	}
	if _, err := b.c.Top(ctxT(t), ""); err != nil && !strings.Contains(err.Error(), "not yet") {
		t.Fatalf("top while paused: %v", err)
	}
	_, err = b.c.Start(ctxT(t), wire.ProcessSpec{ID: "exec", Args: []string{"true"}})
	if !errors.Is(err, wire.ErrConflict) || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("exec while paused: %v", err)
	}
	// A caught signal to a frozen process waits for the thaw. (A fatal
	// one kills it at once: cgroup v2's freezer lets the kernel finish
	// off a frozen task, which is how docker kill works on a paused
	// container.)
	if err := b.c.Signal(ctxT(t), "yes", 15); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
		t.Fatal("a frozen process handled SIGTERM")
	case <-time.After(200 * time.Millisecond):
	}
	if err := b.c.Resume(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM not delivered on resume")
	}
	if st, _ := p.Wait(); st.Code != 3 {
		t.Fatalf("status %+v", st)
	}
}

// Pause then resume keeps a process running.
func TestPauseResumeContinues(t *testing.T) {
	b := bootFresh(t)
	b.ensureMain(t)
	p, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "yes", Env: []string{"PATH=/bin"},
		Args: []string{"sh", "-c", "while :; do echo x; done"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	go func() {
		sc := bufio.NewScanner(p.Stderr)
		for sc.Scan() {
		}
	}()
	got := make(chan int, 1000)
	go func() {
		sc := bufio.NewScanner(p.Stdout)
		for n := 0; sc.Scan(); n++ {
			select {
			case got <- n:
			default:
			}
		}
	}()
	if err := b.c.Pause(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.c.Resume(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for len(got) > 0 {
		<-got
	}
	select {
	case <-got:
	case <-time.After(3 * time.Second):
		t.Fatal("no output after resume")
	}
	if r := b.sh(t, "echo exec-ok"); r.stdout != "exec-ok\n" {
		t.Fatalf("exec after resume: %+v", r)
	}
}
