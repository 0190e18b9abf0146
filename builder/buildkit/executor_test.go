//go:build linux

package buildkit

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/moby/buildkit/executor"
	gatewayapi "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
)

func TestExitError(t *testing.T) {
	for _, tc := range []struct {
		code  int
		valid []int
		want  int // -1: no error
	}{
		{0, nil, -1},
		{1, nil, 1},
		{3, []int{0, 3}, -1},
		{0, []int{1}, 0},
	} {
		err := exitError(tc.code, tc.valid)
		var ee *gatewayapi.ExitError
		switch {
		case tc.want < 0 && err != nil:
			t.Errorf("exitError(%d, %v) = %v, want nil", tc.code, tc.valid, err)
		case tc.want >= 0 && (!errors.As(err, &ee) || ee.ExitCode != uint32(tc.want)):
			t.Errorf("exitError(%d, %v) = %v, want exit code %d", tc.code, tc.valid, err, tc.want)
		}
	}
}

func TestStepOf(t *testing.T) {
	for _, tc := range []struct {
		name       string
		meta       executor.Meta
		hostname   string
		network    string
		privileged bool
	}{
		{"defaults", executor.Meta{Args: []string{"sh"}}, defaultHostname, "", false},
		{"no network", executor.Meta{NetMode: pb.NetMode_NONE, Hostname: "h"}, "h", "none", false},
		{"host network", executor.Meta{NetMode: pb.NetMode_HOST}, defaultHostname, "", false},
		{"insecure", executor.Meta{SecurityMode: pb.SecurityMode_INSECURE}, defaultHostname, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stepOf(executor.ProcessInfo{Meta: tc.meta}, "/root", nil)
			if s.Hostname != tc.hostname || s.Network != tc.network || s.Privileged != tc.privileged || s.RootDir != "/root" {
				t.Errorf("step %+v", s)
			}
			if !strings.Contains(string(s.Hosts), "127.0.0.1\tlocalhost "+tc.hostname+"\n") {
				t.Errorf("hosts %q", s.Hosts)
			}
		})
	}
}

func TestHostsFileExtraHosts(t *testing.T) {
	got := string(hostsFile("b", []executor.HostIP{{Host: "db", IP: net.ParseIP("10.0.0.5")}}))
	if !strings.HasSuffix(got, "10.0.0.5\tdb\n") {
		t.Errorf("hosts %q", got)
	}
}

func TestTmpfsOptions(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "",
		"nosuid,nodev,size=65536k":    "size=65536k",
		"rw,noexec,mode=1777,size=1m": "mode=1777,size=1m",
	} {
		var opts []string
		if in != "" {
			opts = strings.Split(in, ",")
		}
		if got := tmpfsOptions(opts); got != want {
			t.Errorf("tmpfsOptions(%q) = %q, want %q", in, got, want)
		}
	}
}
