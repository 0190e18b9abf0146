package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The daemon speaks to the agent only through guest/wire, the one
// package that holds the host-guest contract: it links no agent code.
func TestDaemonDoesNotLinkTheAgent(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "github.com/arcavm/arca/guest/agent" {
			t.Errorf("cmd/arca links %s", pkg)
		}
	}
}
