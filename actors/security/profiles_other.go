//go:build !linux

package security

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// moby/profiles builds its default profile and its loader for Linux only,
// so a daemon on another OS (vz on macOS) sends no filter yet: the
// container still has its own VM and kernel.
var InfoOptions []string

func defaultProfile(*specs.Spec) (*specs.LinuxSeccomp, error) { return nil, nil }

func loadProfile(string, *specs.Spec) (*specs.LinuxSeccomp, error) { return nil, nil }
