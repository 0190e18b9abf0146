package security

import (
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		opts    []string
		want    Options
		wantErr string
	}{
		{opts: nil, want: Options{}},
		{opts: []string{"seccomp=unconfined"}, want: Options{Seccomp: "unconfined"}},
		{opts: []string{"seccomp:unconfined"}, want: Options{Seccomp: "unconfined"}},
		{opts: []string{"seccomp=builtin"}, want: Options{Seccomp: "builtin"}},
		{opts: []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}, want: Options{Seccomp: `{"defaultAction":"SCMP_ACT_ALLOW"}`}},
		{opts: []string{"no-new-privileges"}, want: Options{NoNewPrivileges: true}},
		{opts: []string{"no-new-privileges=true"}, want: Options{NoNewPrivileges: true}},
		{opts: []string{"no-new-privileges:true"}, want: Options{NoNewPrivileges: true}},
		{opts: []string{"no-new-privileges", "no-new-privileges=false"}, want: Options{}},
		{opts: []string{"apparmor=docker-default"}, want: Options{AppArmor: "docker-default"}},
		{opts: []string{"apparmor=unconfined", "label=disable"}, want: Options{AppArmor: "unconfined", Labels: []string{"disable"}}},
		{opts: []string{"label=type:svirt_apache_t"}, want: Options{Labels: []string{"type:svirt_apache_t"}}},
		{opts: []string{"label:level:s0:c100,c200"}, want: Options{Labels: []string{"level:s0:c100,c200"}}},
		{opts: []string{"disable"}, want: Options{Labels: []string{"disable"}}},
		{opts: []string{"writable-cgroups=true"}, want: Options{}},
		{opts: []string{"x"}, wantErr: `invalid --security-opt 1: "x"`},
		{opts: []string{"x=y"}, wantErr: `invalid --security-opt 2: "x=y"`},
		{opts: []string{"no-new-privileges=maybe"}, wantErr: `invalid --security-opt 2: "no-new-privileges=maybe"`},
		{opts: []string{"writable-cgroups=x"}, wantErr: `invalid --security-opt 2: "writable-cgroups=x"`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.opts)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%q: got error %v, want %q", tt.opts, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.opts, err)
			continue
		}
		if got.Seccomp != tt.want.Seccomp || got.NoNewPrivileges != tt.want.NoNewPrivileges ||
			got.AppArmor != tt.want.AppArmor || len(got.Labels) != len(tt.want.Labels) {
			t.Errorf("%q: got %+v, want %+v", tt.opts, got, tt.want)
		}
		for i := range got.Labels {
			if got.Labels[i] != tt.want.Labels[i] {
				t.Errorf("%q: labels %q, want %q", tt.opts, got.Labels, tt.want.Labels)
			}
		}
	}
}

func TestBounding(t *testing.T) {
	if got := bounding(nil); len(got) != 14 || got[0] != "CAP_CHOWN" {
		t.Errorf("default: %q", got)
	}
	if got := bounding([]string{"ALL"}); len(got) != len(allCaps) {
		t.Errorf("ALL: %d caps", len(got))
	}
	if got := bounding([]string{"sys_admin", "CAP_NET_ADMIN"}); len(got) != 2 || got[0] != "CAP_SYS_ADMIN" || got[1] != "CAP_NET_ADMIN" {
		t.Errorf("named: %q", got)
	}
}
