package security

import (
	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InfoOptions is what docker info lists under SecurityOptions for seccomp.
var InfoOptions = []string{"name=seccomp,profile=" + ProfileDefault}

func defaultProfile(rs *specs.Spec) (*specs.LinuxSeccomp, error) {
	return profiles.GetDefaultProfile(rs)
}

func loadProfile(body string, rs *specs.Spec) (*specs.LinuxSeccomp, error) {
	return profiles.LoadProfile(body, rs)
}
