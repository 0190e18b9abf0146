package agent

import (
	"fmt"

	"github.com/arcavm/arca/guest/seccomp"
)

// installFilters installs the process's seccomp filters on every thread of
// the stage, which then execs or forks the command: the sandbox's boundary
// first when asked, then Docker's profile (or the user's). The kernel
// applies the strictest answer of all of them.
func installFilters(cfg stageConfig) error {
	if cfg.Confine {
		if err := seccomp.Install(seccomp.Boundary()); err != nil {
			return fmt.Errorf("sandbox boundary filter: %w", err)
		}
	}
	if err := seccomp.Install(cfg.Seccomp); err != nil {
		return fmt.Errorf("seccomp profile: %w", err)
	}
	return nil
}
