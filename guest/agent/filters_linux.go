package agent

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/arcavm/arca/guest/seccomp"
	"github.com/arcavm/arca/guest/wire"
)

// installFilters loads the process's seccomp filters on every thread of
// the stage, which then execs or forks the command: the sandbox's boundary
// first when asked, then Docker's profile (or the user's). The kernel
// applies the strictest answer of all of them.
func installFilters(cfg stageConfig) error {
	if err := seccomp.Load(cfg.Boundary); err != nil {
		return fmt.Errorf("sandbox boundary filter: %w", err)
	}
	if err := seccomp.Load(cfg.Seccomp); err != nil {
		return fmt.Errorf("seccomp profile: %w", err)
	}
	return nil
}

// seccompPrograms are the compiled filters for a process of spec: the
// host's program when it was compiled for this architecture, else the
// profile compiled here; and the sandbox's boundary when spec asks for
// it, compiled once for the agent's life.
func seccompPrograms(spec wire.ProcessSpec) (profile, boundary *wire.SeccompProgram, err error) {
	profile = spec.SeccompProgram
	if spec.Seccomp == nil {
		profile = nil
	} else if profile == nil || profile.Arch != runtime.GOARCH {
		if profile, err = seccomp.Compile(spec.Seccomp); err != nil {
			return nil, nil, fmt.Errorf("seccomp profile: %w", err)
		}
	}
	if spec.Confine {
		if boundary, err = boundaryProgram(); err != nil {
			return nil, nil, fmt.Errorf("sandbox boundary filter: %w", err)
		}
	}
	return profile, boundary, nil
}

var boundaryProgram = sync.OnceValues(func() (*wire.SeccompProgram, error) {
	return seccomp.Compile(seccomp.Boundary())
})
