package main

import (
	"strings"
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
	d.Restart(t)

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
