package agent

import (
	"reflect"
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/arcavm/arca/guest/seccomp"
	"github.com/arcavm/arca/guest/wire"
)

// TestSeccompPrograms: the stage gets the host's program when it was
// compiled for this architecture, the profile compiled here when not (or
// when the host sent none), nothing for an unconfined process, and the
// sandbox's boundary when asked for.
func TestSeccompPrograms(t *testing.T) {
	profile := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: specs.ActErrno}}}
	local, err := seccomp.Compile(profile)
	if err != nil {
		t.Fatal(err)
	}
	boundary, err := seccomp.Compile(seccomp.Boundary())
	if err != nil {
		t.Fatal(err)
	}
	// A program the agent could not have compiled from profile: if it
	// comes back, it was taken as sent.
	hosts := &wire.SeccompProgram{Arch: runtime.GOARCH, Filters: [][]byte{make([]byte, 8)}}
	foreign := &wire.SeccompProgram{Arch: "foreign", Filters: [][]byte{make([]byte, 8)}}
	for _, tc := range []struct {
		name                   string
		spec                   wire.ProcessSpec
		wantProfile, wantBound *wire.SeccompProgram
	}{
		{"unconfined", wire.ProcessSpec{}, nil, nil},
		{"the host's, this architecture", wire.ProcessSpec{Seccomp: profile, SeccompProgram: hosts}, hosts, nil},
		{"the host's, another architecture", wire.ProcessSpec{Seccomp: profile, SeccompProgram: foreign}, local, nil},
		{"none from the host", wire.ProcessSpec{Seccomp: profile}, local, nil},
		{"a program without a profile", wire.ProcessSpec{SeccompProgram: hosts}, nil, nil},
		{"confined", wire.ProcessSpec{Seccomp: profile, SeccompProgram: hosts, Confine: true}, hosts, boundary},
		{"confined, unconfined profile", wire.ProcessSpec{Confine: true}, nil, boundary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, b, err := seccompPrograms(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, tc.wantProfile) {
				t.Errorf("profile program: got %+v, want %+v", p, tc.wantProfile)
			}
			if !reflect.DeepEqual(b, tc.wantBound) {
				t.Errorf("boundary program: got %v, want %v", b != nil, tc.wantBound != nil)
			}
		})
	}
	if _, _, err := seccompPrograms(wire.ProcessSpec{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}}); err == nil {
		t.Error("a profile the compiler refuses: no error")
	}
}
