package commitconfig

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestApply(t *testing.T) {
	port := func(s string) network.Port { return network.MustParsePort(s) }
	for _, tc := range []struct {
		name    string
		start   container.Config
		changes []string
		want    container.Config
		wantErr string
	}{
		{name: "cmd exec form", changes: []string{`CMD ["cat","/x"]`}, want: container.Config{Cmd: []string{"cat", "/x"}}},
		{name: "cmd shell form", changes: []string{`CMD echo hi`}, want: container.Config{Cmd: []string{"/bin/sh", "-c", "echo hi"}}},
		{
			name: "entrypoint resets cmd", start: container.Config{Cmd: []string{"sh"}},
			changes: []string{`ENTRYPOINT ["top"]`}, want: container.Config{Entrypoint: []string{"top"}},
		},
		{
			name: "entrypoint after cmd keeps it", changes: []string{`CMD ["-b"]`, `ENTRYPOINT ["top"]`},
			want: container.Config{Cmd: []string{"-b"}, Entrypoint: []string{"top"}},
		},
		{
			name: "env replaces and expands", start: container.Config{Env: []string{"PATH=/bin", "A=1"}},
			changes: []string{`ENV A=2 B=$PATH:/x`, `ENV C ${A}`},
			want:    container.Config{Env: []string{"PATH=/bin", "A=2", "B=/bin:/x", "C=2"}},
		},
		{
			name:  "label expose user volume workdir stopsignal onbuild",
			start: container.Config{WorkingDir: "/srv"},
			changes: []string{`LABEL a=b "c d"=e`, `EXPOSE 80 53/udp 8000-8001`, `USER nobody:nogroup`, `VOLUME ["/data", "/logs"]`,
				`WORKDIR app`, `STOPSIGNAL SIGINT`, `ONBUILD RUN echo hi`},
			want: container.Config{
				Labels:       map[string]string{"a": "b", "c d": "e"},
				ExposedPorts: network.PortSet{port("80/tcp"): {}, port("53/udp"): {}, port("8000/tcp"): {}, port("8001/tcp"): {}},
				User:         "nobody:nogroup", Volumes: map[string]struct{}{"/data": {}, "/logs": {}},
				WorkingDir: "/srv/app", StopSignal: "SIGINT", OnBuild: []string{"RUN echo hi"},
			},
		},
		{name: "healthcheck", changes: []string{`HEALTHCHECK --retries=2 CMD true`}, want: container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Retries: 2}}},
		{name: "not for commit", changes: []string{`RUN echo hi`}, wantErr: "RUN is not a valid change command"},
		{name: "from", changes: []string{`FROM busybox`}, wantErr: "FROM is not a valid change command"},
		{name: "bad signal", changes: []string{`STOPSIGNAL SIGNOPE`}, wantErr: "SIGNOPE"},
		{name: "bad port", changes: []string{`EXPOSE 99999`}, wantErr: "invalid port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.start
			err := Apply(&cfg, tc.changes)
			if tc.wantErr != "" {
				var inv *InvalidError
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &inv) {
					t.Fatalf("err %v, want an InvalidError with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, tc.want) {
				t.Errorf("got %+v\nwant %+v", cfg, tc.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	ctr := &container.Config{
		User: "u", Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"sh"}, WorkingDir: "/w",
		Labels: map[string]string{"l": "ctr", "k": "ctr"}, StopSignal: "SIGTERM",
		Volumes: map[string]struct{}{"/v": {}},
	}
	user := &container.Config{Env: []string{"A=2"}, Labels: map[string]string{"l": "user"}, Cmd: []string{"cat", "/x"}}
	Merge(user, ctr)
	want := &container.Config{
		User: "u", Env: []string{"A=2", "PATH=/bin"}, Cmd: []string{"cat", "/x"}, WorkingDir: "/w",
		Labels: map[string]string{"l": "user", "k": "ctr"}, StopSignal: "SIGTERM",
		Volumes: map[string]struct{}{"/v": {}},
	}
	if !reflect.DeepEqual(user, want) {
		t.Errorf("got %+v\nwant %+v", user, want)
	}
	empty := &container.Config{}
	Merge(empty, ctr)
	if !reflect.DeepEqual(empty.Cmd, ctr.Cmd) || !reflect.DeepEqual(empty.Env, ctr.Env) {
		t.Errorf("empty user config: %+v", empty)
	}
}
