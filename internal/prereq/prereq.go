// Package prereq is how a test says that what it needs (root, a tool, a
// package) is not on this machine: a skip on a developer's machine, a
// failure in CI (CI set), where `make test` installs everything first, so
// that a missing install step can never pass as a green run.
package prereq

import (
	"fmt"
	"os"
	"testing"
)

// Missing skips t, or fails it in CI, saying what is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set: make test installs every prerequisite, so this is a failure)", msg)
	}
	t.Skip(msg)
}

// Root skips t, or fails it in CI, unless the test runs as root.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root (%s)", why)
	}
}
