package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// TestSelfCheck runs arca doctor --full's report against a daemon (the
// sandbox here; on a Mac it is what a user runs against vz): every step
// passes, each line says what it saw, and nothing it made is left.
func TestSelfCheck(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	env := doctorEnv{root: d.Root(), socket: d.Socket(), kit: t.TempDir(), docker: "docker",
		devKVM: "/dev/kvm", cpuinfo: "/proc/cpuinfo", mountinfo: "/proc/self/mountinfo"}
	var out bytes.Buffer
	runFullCheck(context.Background(), &out, env, img)
	report := out.String()
	t.Logf("report:\n%s", report)

	for _, want := range []string{
		"\nhost     ", "--host unix://" + d.Socket(), "\nimage    " + img + "\n",
		"\n-- install --\n", "\n-- end to end --\n",
		"\n8 steps: 8 OK, 0 FAIL, 0 SKIP in ",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	// Each step's line, with what it saw.
	for step, saw := range map[string]string{
		"daemon":  "Guest driver: " + testenv.DefaultDriver(),
		"pull":    img,
		"run":     "true",
		"exec":    "guest Linux ",
		"network": "a reached b by name (",
		"volume":  "read back by another container",
		"block":   "(ext4 at /data)",
		"port":    "from the host",
	} {
		line := lineWith(report, "OK    "+step+" ")
		if !strings.Contains(line, saw) {
			t.Errorf("step %s: %q, want it to mention %q", step, line, saw)
		}
	}
	for _, what := range [][]string{{"ps", "-a"}, {"volume", "ls"}, {"network", "ls"}} {
		if left := d.Docker(t, append(what, "-q", "--filter", "label="+selfCheckLabel)...).Must(t).Stdout; strings.TrimSpace(left) != "" {
			t.Errorf("docker %v: left behind %q", what, left)
		}
	}
}
