package agent

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLimitPids(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pids.max"), nil, 0o644)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cg := &cgroups{ctr: fd}
	for _, c := range []struct {
		n    int64
		want string
	}{{5, "5"}, {0, "max"}, {-1, "max"}} {
		if err := cg.limitPids(c.n); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "pids.max")); string(b) != c.want {
			t.Errorf("limitPids(%d) wrote %q, want %q", c.n, b, c.want)
		}
		os.WriteFile(filepath.Join(dir, "pids.max"), nil, 0o644)
	}
	if err := (&cgroups{ctr: -1}).limitPids(5); err == nil {
		t.Error("no cgroups: want an error")
	}
}
