package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/prereq"
)

// RequireRoot skips the test unless it runs as root: the sandbox driver needs
// namespaces, mounts and cgroups.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		prereq.Missing(t, "testenv: needs root (namespaces, mounts); run as root or via `make test`")
	}
}

// DefaultDriver is the driver daemons get unless a test names one:
// $ARCA_TEST_DRIVER (e.g. vz on a Mac), else sandbox.
func DefaultDriver() string {
	if d := os.Getenv("ARCA_TEST_DRIVER"); d != "" {
		return d
	}
	return "sandbox"
}

// requireDriver skips the test unless the machine can run daemons with
// driver: vz machines are the user's own processes, the rest need root.
func requireDriver(t testing.TB, driver string) {
	t.Helper()
	if driver != "vz" {
		RequireRoot(t)
	}
}

// RequireTool skips the test unless name is on PATH and returns its path.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		prereq.Missing(t, "testenv: %s not on PATH; `make deps` installs it", name)
	}
	return p
}

// tempDir makes a short-pathed temp dir: unix socket paths are limited to
// 108 bytes, which t.TempDir's names (built from test names) overrun. It is
// removed at cleanup unless ARCA_TEST_KEEP is set.
func tempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("testenv: create temp dir: %v", err)
	}
	t.Cleanup(func() { removeTemp(t, dir) })
	return dir
}

func removeTemp(t testing.TB, dir string) {
	if os.Getenv("ARCA_TEST_KEEP") != "" {
		t.Logf("testenv: kept %s", dir)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		// A daemon that left a mount behind makes this fail; say so, but the
		// test's verdict belongs to the checks that saw the cause.
		t.Logf("testenv: remove %s: %v", dir, err)
	}
}

// freePort asks the kernel for a free loopback port. Someone else may take it
// before we bind it again, so callers retry on "address in use".
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var nameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// Name turns the test's name into a valid, lower-case container/volume/
// network name ("TestRun/with_tty" → "testrun-with_tty"), so tests on a
// shared daemon don't collide. Append a suffix for several objects.
func Name(t testing.TB, suffix ...string) string {
	n := strings.ToLower(nameUnsafe.ReplaceAllString(t.Name(), "-"))
	n = strings.Trim(n, "-_.")
	if len(n) > 48 {
		n = n[:48]
	}
	for _, s := range suffix {
		n += "-" + s
	}
	return n
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
