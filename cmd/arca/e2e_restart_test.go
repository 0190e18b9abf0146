package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// TestSurvivesKill9: what the daemon acknowledged is there after a crash;
// containers that were running are shown as exited, and no agent is left.
func TestSurvivesKill9(t *testing.T) {
	reg := testenv.SharedRegistry(t)
	img := testenv.PushBusybox(t, reg)
	d := testenv.StartDaemon(t, testenv.Options{AllowUnclean: true})
	d.Docker(t, "pull", "-q", img).Must(t)
	d.Docker(t, "run", "-d", "--name", "runner", img, "sleep", "300").Must(t)
	d.Docker(t, "create", "--name", "made", img, "true").Must(t)
	d.Docker(t, "run", "--name", "done", img, "sh", "-c", "echo bye; exit 4").MustFail(t)

	d.Kill9(t)
	// The agents die with their daemon (their session is gone).
	deadline := time.Now().Add(10 * time.Second)
	for agentsAlive(t, d) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if agentsAlive(t, d) {
		t.Error("agent processes outlived the daemon")
	}
	if machineCgroups(t, d) == "" {
		t.Error("no machine cgroup found while the container ran (the check below would prove nothing)")
	}
	d.Restart(t)
	// The cgroups the killed daemon's machines had are gone.
	if left := machineCgroups(t, d); left != "" {
		t.Errorf("cgroups left after a restart:\n%s", left)
	}

	out := d.Docker(t, "ps", "-a", "--format", "{{.Names}} {{.Status}}").Must(t).Stdout
	for _, want := range []string{"runner Exited", "made Created", "done Exited (4)"} {
		if !strings.Contains(out, want) {
			t.Errorf("ps -a after restart lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(d.Docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}").Must(t).Stdout, img) {
		t.Errorf("image lost after restart")
	}
	if logs := d.Docker(t, "logs", "done").Must(t).Stdout; logs != "bye\n" {
		t.Errorf("logs after restart: %q", logs)
	}
	// And the restarted daemon runs containers.
	if got := d.Docker(t, "run", "--rm", img, "echo", "again").Must(t).Stdout; got != "again\n" {
		t.Errorf("run after restart: %q", got)
	}
	d.Docker(t, "start", "runner").Must(t)
	d.Docker(t, "rm", "-f", "runner", "made", "done").Must(t)
}

// agentsAlive reports whether any arca-agent process of this daemon runs.
func agentsAlive(t *testing.T, d *testenv.Daemon) bool {
	t.Helper()
	return len(agentPIDs(t, d.Root())) > 0
}

// TestKill9DuringStarts: the daemon dies while containers are booting.
// Afterwards no agent, mount or socket of it is left, and every container
// the daemon acknowledged is still listed, none of them running.
func TestKill9DuringStarts(t *testing.T) {
	reg := testenv.SharedRegistry(t)
	img := testenv.PushBusybox(t, reg)
	d := testenv.StartDaemon(t, testenv.Options{AllowUnclean: true})
	d.Docker(t, "pull", "-q", img).Must(t)
	const n = 6
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := d.Docker(t, "run", "-d", "--name", "boot"+itoa(i+1), img, "sleep", "300")
			if r.Code == 0 {
				ids <- strings.TrimSpace(r.Stdout)
			}
		}(i)
	}
	time.Sleep(150 * time.Millisecond)
	d.Kill9(t)
	wg.Wait()
	close(ids)

	deadline := time.Now().Add(10 * time.Second)
	for (agentsAlive(t, d) || mountsUnder(t, d.Root()) > 0) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if pids := agentPIDs(t, d.Root()); len(pids) > 0 {
		t.Errorf("agents outlived the daemon: %v", pids)
	}
	if m := mountsUnder(t, d.Root()); m > 0 {
		t.Errorf("%d mounts left under %s", m, d.Root())
	}

	d.Restart(t)
	out := d.Docker(t, "ps", "-a", "--format", "{{.ID}} {{.State}}").Must(t).Stdout
	for id := range ids {
		if !strings.Contains(out, id[:12]+" ") {
			t.Errorf("acknowledged container %s lost:\n%s", id[:12], out)
		}
	}
	if strings.Contains(out, "running") {
		t.Errorf("a container claims to run after the crash:\n%s", out)
	}
	// Everything left can be removed, and the daemon still runs containers.
	if all := strings.Fields(d.Docker(t, "ps", "-aq").Must(t).Stdout); len(all) > 0 {
		d.Docker(t, append([]string{"rm", "-f"}, all...)...).Must(t)
	}
	if got := d.Docker(t, "run", "--rm", img, "echo", "ok").Must(t).Stdout; got != "ok\n" {
		t.Errorf("run after crash: %q", got)
	}
}

// mountsUnder counts mount points below dir in this mount namespace.
func mountsUnder(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			n++
		}
	}
	return n
}

// machineCgroups lists the machine cgroups of d's sandboxes in every
// hierarchy (the daemon keeps them under arca/<hash of its root>).
func machineCgroups(t *testing.T, d *testenv.Daemon) string {
	t.Helper()
	abs, _ := filepath.Abs(d.Root())
	sum := sha256.Sum256([]byte(abs))
	group := "arca/" + hex.EncodeToString(sum[:6])
	out, _ := exec.Command("find", "/sys/fs/cgroup", "-mindepth", "2", "-maxdepth", "8", "-type", "d", "-path", "*/"+group+"/*").Output()
	return strings.TrimSpace(string(out))
}
