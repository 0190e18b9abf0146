package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// agentPIDs lists arca-agent processes whose command line or working state
// points into root.
func agentPIDs(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range ents {
		if !e.IsDir() || strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || !strings.HasSuffix(strings.TrimSuffix(exe, " (deleted)"), "arca-agent") {
			continue
		}
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		mine := strings.Contains(string(environ), root)
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); err == nil && strings.HasPrefix(l, root) {
				mine = true
			}
		}
		if mine {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
