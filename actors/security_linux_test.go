package actors

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/persistence"
)

// allowsUncond reports whether f allows name outright.
func allowsUncond(f *specs.LinuxSeccomp, name string) bool {
	for _, r := range f.Syscalls {
		if r.Action == specs.ActAllow && len(r.Args) == 0 && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}

// The main process and every exec carry the container's filter; an exec
// --privileged gets every capability but keeps the container's filter, as
// under runc exec.
func TestProcessSpecsCarrySeccomp(t *testing.T) {
	rec := func(hc *container.HostConfig) *persistence.ContainerRecord {
		return &persistence.ContainerRecord{ID: "c1", Path: "/bin/sh", Config: &container.Config{}, HostConfig: hc}
	}
	tests := []struct {
		name          string
		hc            *container.HostConfig
		execPrivilege bool
		sandbox       bool
		filter        bool
		mount         bool
		confine       bool
		noNewPrivs    bool
	}{
		{name: "default", hc: &container.HostConfig{}, filter: true},
		{name: "default sandbox", hc: &container.HostConfig{}, sandbox: true, filter: true, confine: true},
		{name: "exec --privileged", hc: &container.HostConfig{}, execPrivilege: true, sandbox: true, filter: true, confine: true},
		{name: "cap-add SYS_ADMIN", hc: &container.HostConfig{CapAdd: []string{"SYS_ADMIN"}}, filter: true, mount: true},
		{name: "unconfined", hc: &container.HostConfig{SecurityOpt: []string{"seccomp=unconfined"}}, sandbox: true, confine: true},
		{name: "privileged", hc: &container.HostConfig{Privileged: true}, sandbox: true},
		{name: "no-new-privileges", hc: &container.HostConfig{SecurityOpt: []string{"no-new-privileges=true"}}, filter: true, noNewPrivs: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rec(tt.hc)
			main, err := mainProcessSpec(r, tt.sandbox)
			if err != nil {
				t.Fatal(err)
			}
			exec, err := execProcessSpec("e1", container.ExecCreateRequest{Cmd: []string{"id"}, Privileged: tt.execPrivilege}, r, false, false, tt.sandbox)
			if err != nil {
				t.Fatal(err)
			}
			if tt.execPrivilege && !slices.Equal(exec.Capabilities, []string{"ALL"}) {
				t.Errorf("exec --privileged caps: %q", exec.Capabilities)
			}
			for _, p := range []wire.ProcessSpec{main, exec} {
				if (p.Seccomp != nil) != tt.filter {
					t.Fatalf("%s: filter %v, want %v", p.ID, p.Seccomp != nil, tt.filter)
				}
				if p.Seccomp != nil && allowsUncond(p.Seccomp, "mount") != tt.mount {
					t.Errorf("%s: mount allowed %v, want %v", p.ID, !tt.mount, tt.mount)
				}
				if p.Confine != tt.confine || p.NoNewPrivileges != tt.noNewPrivs {
					t.Errorf("%s: confine %v no_new_privs %v, want %v %v", p.ID, p.Confine, p.NoNewPrivileges, tt.confine, tt.noNewPrivs)
				}
			}
		})
	}
}
