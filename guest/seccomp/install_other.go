//go:build !linux

package seccomp

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/arcavm/arca/guest/wire"
)

// Install is Linux only; the compiler works everywhere.
func Install(f *specs.LinuxSeccomp) error {
	if f == nil {
		return nil
	}
	return errors.New("install seccomp: not supported on this OS")
}

// Load is Linux only.
func Load(p *wire.SeccompProgram) error {
	if p == nil {
		return nil
	}
	return errors.New("install seccomp: not supported on this OS")
}
