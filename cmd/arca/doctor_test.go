package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

func TestDiskFinding(t *testing.T) {
	for free, want := range map[uint64]level{100 << 30: levelOK, 5 << 30: levelWarn, 1 << 30: levelFail} {
		if f := diskFinding("/r", "/r", free); f.level != want {
			t.Errorf("%d bytes free: %v", free, f.level)
		}
	}
	if f := diskFinding("/var/lib/arca", "/var", 100<<30); !strings.Contains(f.msg, "measured at /var") {
		t.Errorf("a root not made yet: %q", f.msg)
	}
	if f := checkDisk(filepath.Join(t.TempDir(), "not", "yet")); f.level == levelFail && strings.Contains(f.msg, "cannot tell") {
		t.Errorf("checkDisk on a path not made yet: %+v", f)
	}
}

func TestCheckSocket(t *testing.T) {
	dir := t.TempDir()
	if f := checkSocket(filepath.Join(dir, "none")); f.level != levelWarn || !strings.Contains(f.msg, "not running") {
		t.Errorf("no socket: %+v", f)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if f := checkSocket(file); f.level != levelFail {
		t.Errorf("a file: %+v", f)
	}

	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) })}
	go srv.Serve(ln)
	defer srv.Close()
	os.Chmod(live, 0o660)
	if f := checkSocket(live); f.level != levelOK || !strings.Contains(f.msg, "mode 0660") || !strings.Contains(f.msg, "root:") {
		t.Errorf("a live socket: %+v", f)
	}
	os.Chmod(live, 0o666)
	if f := checkSocket(live); f.level != levelWarn || !strings.Contains(f.msg, "anyone") {
		t.Errorf("a world-writable socket: %+v", f)
	}

	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close()
	if f := checkSocket(stale); f.level != levelWarn || !strings.Contains(f.msg, "nothing answers") {
		t.Errorf("a stale socket: %+v", f)
	}
}

func TestCheckAgentAndKit(t *testing.T) {
	dir := t.TempDir()
	agent := filepath.Join(dir, "arca-agent")
	if f := checkAgent(agent); f.level != levelFail {
		t.Errorf("no agent: %+v", f)
	}
	os.WriteFile(agent, []byte("x"), 0o644)
	if f := checkAgent(agent); f.level != levelFail || !strings.Contains(f.msg, "not executable") {
		t.Errorf("agent not executable: %+v", f)
	}
	os.Chmod(agent, 0o755)
	if f := checkAgent(agent); f.level != levelOK {
		t.Errorf("agent: %+v", f)
	}
	if f := kitFinding(filepath.Join(dir, "kit"), "make kit"); f.level != levelWarn || f.fix != "make kit" {
		t.Errorf("no kit: %+v", f)
	}
}

// TestCheckDocker with a stand-in docker CLI: the context there or not,
// pointing elsewhere, in use; plugins there or not.
func TestCheckDocker(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "docker")
	script := `#!/bin/sh
case "$*" in
"context inspect arca --format {{.Endpoints.docker.Host}}") [ -n "$CTX_HOST" ] && echo "$CTX_HOST" || exit 1 ;;
"context show") echo "${CTX_CURRENT:-default}" ;;
"buildx version") echo "github.com/docker/buildx v0.38.2 abc" ;;
"compose version") exit 1 ;;
*) exit 3 ;;
esac
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	byCheck := func(fs []finding) map[string]finding {
		m := map[string]finding{}
		for _, f := range fs {
			m[f.check] = f
		}
		return m
	}
	t.Setenv("CTX_HOST", "")
	got := byCheck(checkDocker(fake, "/run/a.sock"))
	if f := got["context"]; f.level != levelWarn || !strings.Contains(f.fix, "docker context create arca --docker host=unix:///run/a.sock") {
		t.Errorf("no context: %+v", f)
	}
	if got["buildx"].level != levelOK || got["compose"].level != levelWarn {
		t.Errorf("plugins: %+v", got)
	}
	t.Setenv("CTX_HOST", "unix:///elsewhere")
	if f := byCheck(checkDocker(fake, "/run/a.sock"))["context"]; f.level != levelWarn || !strings.Contains(f.fix, "update") {
		t.Errorf("context elsewhere: %+v", f)
	}
	t.Setenv("CTX_HOST", "unix:///run/a.sock")
	t.Setenv("CTX_CURRENT", "arca")
	if f := byCheck(checkDocker(fake, "/run/a.sock"))["context"]; f.level != levelOK || !strings.Contains(f.msg, "in use") {
		t.Errorf("context in use: %+v", f)
	}
	if fs := checkDocker(filepath.Join(dir, "no-docker"), "/run/a.sock"); len(fs) != 1 || fs[0].level != levelWarn {
		t.Errorf("no CLI: %+v", fs)
	}
}

func TestPrintFindings(t *testing.T) {
	var b strings.Builder
	failed := printFindings(&b, []finding{ok("disk", "fine"), warn("kvm", "do this", "meh"), fail("agent", "do that", "bad")})
	want := "OK    disk     fine\nWARN  kvm      meh\n               → do this\nFAIL  agent    bad\n               → do that\n"
	if !failed || b.String() != want {
		t.Fatalf("failed %v, printed:\n%s", failed, b.String())
	}
}

// TestDoctorAgainstDaemon: arca doctor, run as a user would, sees the
// test daemon answer on its socket; its exit status follows the FAILs.
func TestDoctorAgainstDaemon(t *testing.T) {
	d := testenv.SharedDaemon(t)
	out, _ := testenvCommand(testenv.Build(t).Arca, "doctor", "--socket", d.Socket(), "--root", d.Root())
	if !strings.Contains(out, "OK    socket   a daemon answers on "+d.Socket()) {
		t.Fatalf("arca doctor:\n%s", out)
	}
	for _, check := range []string{"kvm", "kit", "qemu", "cgroups", "disk", "socket", "buildx", "compose"} {
		if !strings.Contains(out, " "+check+" ") {
			t.Errorf("arca doctor has no %s line:\n%s", check, out)
		}
	}
}

// testenvCommand runs a binary and returns its combined output.
func testenvCommand(name string, args ...string) (string, error) {
	b, err := exec.Command(name, args...).CombinedOutput()
	return string(b), err
}
