package security

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/arcavm/arca/guest/seccomp"
	"github.com/arcavm/arca/guest/wire"
)

// allows reports whether f has an unconditional ALLOW rule naming name.
func allows(f *specs.LinuxSeccomp, name string) bool {
	for _, r := range f.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}

func TestApply(t *testing.T) {
	tests := []struct {
		name       string
		hc         *container.HostConfig
		caps       []string
		sandbox    bool
		filter     bool
		mount      bool // the filter allows mount
		confine    bool
		noNewPrivs bool
	}{
		{name: "default", hc: &container.HostConfig{}, filter: true},
		{name: "nil host config", hc: nil, filter: true},
		{name: "default on sandbox", hc: &container.HostConfig{}, sandbox: true, filter: true, confine: true},
		{name: "builtin", hc: &container.HostConfig{SecurityOpt: []string{"seccomp=builtin"}}, filter: true},
		{name: "cap-add SYS_ADMIN", hc: &container.HostConfig{}, caps: append(slices.Clone(wire.DefaultCapabilities), "SYS_ADMIN"), filter: true, mount: true},
		{name: "cap-add ALL", hc: &container.HostConfig{}, caps: []string{"ALL"}, sandbox: true, filter: true, mount: true, confine: true},
		{name: "unconfined", hc: &container.HostConfig{SecurityOpt: []string{"seccomp=unconfined"}}, sandbox: true, confine: true},
		{name: "privileged", hc: &container.HostConfig{Privileged: true, SecurityOpt: []string{"seccomp=builtin"}}, caps: []string{"ALL"}, sandbox: true},
		{name: "no-new-privileges", hc: &container.HostConfig{SecurityOpt: []string{"no-new-privileges"}}, filter: true, noNewPrivs: true},
		{name: "privileged no-new-privileges", hc: &container.HostConfig{Privileged: true, SecurityOpt: []string{"no-new-privileges:true"}}, caps: []string{"ALL"}, noNewPrivs: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p wire.ProcessSpec
			if err := Apply(&p, tt.hc, tt.caps, tt.sandbox); err != nil {
				t.Fatal(err)
			}
			if (p.Seccomp != nil) != tt.filter {
				t.Fatalf("filter: got %v, want %v", p.Seccomp != nil, tt.filter)
			}
			// The profile goes compiled too, exactly as the guest would
			// compile it for this architecture.
			if want, err := seccomp.Compile(p.Seccomp); err != nil || !reflect.DeepEqual(p.SeccompProgram, want) {
				t.Errorf("compiled program %v (compile: %v), want the profile's", p.SeccompProgram != nil, err)
			}
			if p.Seccomp != nil {
				if p.Seccomp.DefaultAction != specs.ActErrno {
					t.Errorf("default action %s", p.Seccomp.DefaultAction)
				}
				if got := allows(p.Seccomp, "mount"); got != tt.mount {
					t.Errorf("mount allowed: got %v, want %v", got, tt.mount)
				}
				if !allows(p.Seccomp, "read") {
					t.Error("read not allowed")
				}
			}
			if p.Confine != tt.confine {
				t.Errorf("confine: got %v, want %v", p.Confine, tt.confine)
			}
			if p.NoNewPrivileges != tt.noNewPrivs {
				t.Errorf("no_new_privs: got %v, want %v", p.NoNewPrivileges, tt.noNewPrivs)
			}
		})
	}
}

func TestApplyProfile(t *testing.T) {
	profile := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[` +
		`{"names":["chmod"],"action":"SCMP_ACT_ERRNO"},` +
		`{"names":["mount"],"action":"SCMP_ACT_ERRNO","includes":{"caps":["CAP_SYS_ADMIN"]}}]}`
	hc := &container.HostConfig{SecurityOpt: []string{"seccomp=" + profile}}
	var p wire.ProcessSpec
	if err := Apply(&p, hc, nil, false); err != nil {
		t.Fatal(err)
	}
	if p.Seccomp == nil || p.Seccomp.DefaultAction != specs.ActAllow || len(p.Seccomp.Syscalls) != 1 {
		t.Fatalf("default caps: got %+v", p.Seccomp)
	}
	if err := Apply(&p, hc, []string{"ALL"}, false); err != nil {
		t.Fatal(err)
	}
	if len(p.Seccomp.Syscalls) != 2 {
		t.Fatalf("all caps: includes.caps not followed: %+v", p.Seccomp.Syscalls)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		hc      *container.HostConfig
		wantErr string
	}{
		{hc: nil},
		{hc: &container.HostConfig{SecurityOpt: []string{"seccomp=unconfined", "apparmor=unconfined", "label=disable"}}},
		{hc: &container.HostConfig{SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}`}}},
		{hc: &container.HostConfig{SecurityOpt: []string{"seccomp={not json"}}, wantErr: "Decoding seccomp profile failed"},
		{hc: &container.HostConfig{SecurityOpt: []string{"2"}}, wantErr: `invalid --security-opt 1: "2"`},
		{hc: &container.HostConfig{SecurityOpt: []string{"x=y"}}, wantErr: `invalid --security-opt 2: "x=y"`},
	}
	for _, tt := range tests {
		err := Check(tt.hc)
		if tt.wantErr == "" && err != nil {
			t.Errorf("%v: %v", tt.hc, err)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%v: got %v, want %q", tt.hc, err, tt.wantErr)
		}
	}
}
