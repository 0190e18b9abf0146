package actors

import (
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

func imageWith(c ocispec.ImageConfig) *messages.ResolveImageReply {
	return &messages.ResolveImageReply{
		Image:  &persistence.ImageRecord{ID: "sha256:0123"},
		Config: &dockerspec.DockerOCIImage{Config: dockerspec.DockerOCIImageConfig{ImageConfig: c}},
	}
}

func TestNewContainerRecordMergesImageConfig(t *testing.T) {
	img := imageWith(ocispec.ImageConfig{
		User: "app", Env: []string{"PATH=/bin", "A=image"}, Entrypoint: []string{"/entry"},
		Cmd: []string{"serve"}, WorkingDir: "/srv", Labels: map[string]string{"l": "image", "m": "image"},
		StopSignal: "SIGQUIT",
	})
	cases := []struct {
		name     string
		cfg      container.Config
		wantPath string
		wantArgs []string
		check    func(t *testing.T, r *persistence.ContainerRecord)
	}{
		{"image defaults", container.Config{Image: "x"}, "/entry", []string{"serve"}, func(t *testing.T, r *persistence.ContainerRecord) {
			if r.Config.User != "app" || r.Config.WorkingDir != "/srv" || r.Config.StopSignal != "SIGQUIT" {
				t.Errorf("config %+v", r.Config)
			}
		}},
		{"cmd overrides", container.Config{Image: "x", Cmd: []string{"other"}}, "/entry", []string{"other"}, nil},
		{"entrypoint drops image cmd", container.Config{Image: "x", Entrypoint: []string{"sh"}}, "sh", []string{}, nil},
		{"empty entrypoint", container.Config{Image: "x", Entrypoint: []string{""}, Cmd: []string{"ls"}}, "ls", []string{}, nil},
		{"env by key", container.Config{Image: "x", Env: []string{"A=ctr", "B=new"}}, "/entry", []string{"serve"}, func(t *testing.T, r *persistence.ContainerRecord) {
			if !reflect.DeepEqual(r.Config.Env, []string{"PATH=/bin", "A=ctr", "B=new"}) {
				t.Errorf("env %v", r.Config.Env)
			}
		}},
		{"labels merged", container.Config{Image: "x", Labels: map[string]string{"l": "ctr"}}, "/entry", []string{"serve"}, func(t *testing.T, r *persistence.ContainerRecord) {
			if r.Config.Labels["l"] != "ctr" || r.Config.Labels["m"] != "image" {
				t.Errorf("labels %v", r.Config.Labels)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			r, err := newContainerRecord("n", &messages.CreateContainer{Config: &cfg}, img)
			if err != nil {
				t.Fatal(err)
			}
			if r.Path != c.wantPath || !reflect.DeepEqual(nonNil(r.Args), c.wantArgs) {
				t.Errorf("argv %q %q, want %q %q", r.Path, r.Args, c.wantPath, c.wantArgs)
			}
			if len(r.ID) != 64 || r.Config.Hostname != r.ID[:12] || r.State.Status != container.StateCreated {
				t.Errorf("record %+v", r)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
	_, err := newContainerRecord("n", &messages.CreateContainer{Config: &container.Config{Image: "x", Entrypoint: []string{""}}}, imageWith(ocispec.ImageConfig{}))
	if messages.KindOf(err) != messages.KindInvalidParameter || !strings.Contains(err.Error(), "no command specified") {
		t.Errorf("no command: %v", err)
	}
}

func TestProcessEnv(t *testing.T) {
	got := processEnv(&container.Config{Hostname: "h", Env: []string{"A=1"}, Tty: true})
	want := []string{defaultPath, "HOSTNAME=h", "A=1", "TERM=xterm"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
	got = processEnv(&container.Config{Hostname: "h", Env: []string{"PATH=/x"}})
	if !reflect.DeepEqual(got, []string{"HOSTNAME=h", "PATH=/x"}) {
		t.Errorf("got %v", got)
	}
}

func TestParseSignal(t *testing.T) {
	cases := []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{
		{"SIGTERM", syscall.SIGTERM, true}, {"term", syscall.SIGTERM, true}, {"9", syscall.SIGKILL, true},
		{"SIGUSR1", syscall.SIGUSR1, true}, {"0", 0, false}, {"NOPE", 0, false}, {"99", 0, false},
	}
	for _, c := range cases {
		got, err := parseSignal(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("parseSignal(%q) = %v, %v", c.in, got, err)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	cases := map[time.Duration]string{
		0: "Less than a second", time.Second: "1 second", 5 * time.Second: "5 seconds",
		70 * time.Second: "About a minute", 5 * time.Minute: "5 minutes", 61 * time.Minute: "About an hour",
		5 * time.Hour: "5 hours", 72 * time.Hour: "3 days",
	}
	for d, want := range cases {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestContainerFilter(t *testing.T) {
	s := &containersSupervisor{byID: map[string]*containerEntry{}, names: map[string]string{}}
	now := time.Now()
	recs := []*persistence.ContainerRecord{
		{ID: "aaa111", Name: "web", Created: now, Image: "nginx", Config: &container.Config{Labels: map[string]string{"tier": "front"}}, State: persistence.ContainerState{Status: "running"}},
		{ID: "bbb222", Name: "db", Created: now.Add(time.Second), Image: "pg", Config: &container.Config{Labels: map[string]string{}}, State: persistence.ContainerState{Status: "exited", ExitCode: 3}},
	}
	for _, r := range recs {
		s.byID[r.ID] = &containerEntry{snap: *r}
		s.names[r.Name] = r.ID
	}
	cases := []struct {
		filters map[string][]string
		want    string
		err     bool
	}{
		{map[string][]string{"name": {"we"}}, "web", false},
		{map[string][]string{"label": {"tier=front"}}, "web", false},
		{map[string][]string{"label": {"tier"}}, "web", false},
		{map[string][]string{"status": {"exited"}}, "db", false},
		{map[string][]string{"exited": {"3"}}, "db", false},
		{map[string][]string{"id": {"bbb"}}, "db", false},
		{map[string][]string{"ancestor": {"nginx"}}, "web", false},
		{map[string][]string{"since": {"web"}}, "db", false},
		{map[string][]string{"before": {"db"}}, "web", false},
		{map[string][]string{"status": {"sleeping"}}, "", true},
		{map[string][]string{"exited": {"x"}}, "", true},
		{map[string][]string{"bogus": {"x"}}, "", true},
	}
	for _, c := range cases {
		f, err := newContainerFilter(c.filters, s)
		if c.err {
			if messages.KindOf(err) != messages.KindInvalidParameter {
				t.Errorf("%v: want invalid parameter, got %v", c.filters, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", c.filters, err)
		}
		var got []string
		for _, r := range recs {
			if f.match(r, nil) {
				got = append(got, r.Name)
			}
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("%v matched %v, want %s", c.filters, got, c.want)
		}
	}
}

func TestResolve(t *testing.T) {
	s := &containersSupervisor{byID: map[string]*containerEntry{"abc123": {}, "abd456": {}}, names: map[string]string{"web": "abc123"}}
	cases := []struct {
		ref  string
		want string
		kind messages.ErrorKind
	}{
		{"abc123", "abc123", 0}, {"web", "abc123", 0}, {"/web", "abc123", 0}, {"abd", "abd456", 0},
		{"ab", "", messages.KindInvalidParameter}, {"zzz", "", messages.KindNotFound}, {"", "", messages.KindNotFound},
	}
	for _, c := range cases {
		got, err := s.resolve(c.ref)
		if c.want != "" && (err != nil || got != c.want) {
			t.Errorf("resolve(%q) = %q, %v", c.ref, got, err)
		}
		if c.want == "" && messages.KindOf(err) != c.kind {
			t.Errorf("resolve(%q) err %v, want kind %v", c.ref, err, c.kind)
		}
	}
}

func TestCapabilities(t *testing.T) {
	cases := []struct {
		name string
		hc   *container.HostConfig
		want []string // nil: default
		has  []string
		not  []string
	}{
		{"default", &container.HostConfig{}, nil, nil, nil},
		{"privileged", &container.HostConfig{Privileged: true}, []string{"ALL"}, nil, nil},
		{"add", &container.HostConfig{CapAdd: []string{"cap_net_admin"}}, []string{}, []string{"NET_ADMIN", "CHOWN"}, nil},
		{"drop", &container.HostConfig{CapDrop: []string{"CHOWN"}}, []string{}, []string{"KILL"}, []string{"CHOWN"}},
		{"drop all add one", &container.HostConfig{CapDrop: []string{"ALL"}, CapAdd: []string{"KILL"}}, []string{"KILL"}, nil, nil},
		{"add all", &container.HostConfig{CapAdd: []string{"ALL"}}, []string{"ALL"}, nil, nil},
	}
	for _, c := range cases {
		got := capabilities(c.hc)
		switch {
		case c.want == nil && got != nil:
			t.Errorf("%s: got %v, want default (nil)", c.name, got)
		case len(c.want) > 0 && strings.Join(got, ",") != strings.Join(c.want, ","):
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
		joined := "," + strings.Join(got, ",") + ","
		for _, h := range c.has {
			if !strings.Contains(joined, ","+h+",") {
				t.Errorf("%s: %v lacks %s", c.name, got, h)
			}
		}
		for _, n := range c.not {
			if strings.Contains(joined, ","+n+",") {
				t.Errorf("%s: %v has %s", c.name, got, n)
			}
		}
	}
}

func TestRestartOnDaemonStart(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := func(policy container.RestartPolicyMode, startedAt time.Time, stoppedByUser bool) *persistence.ContainerRecord {
		return &persistence.ContainerRecord{
			HostConfig:    &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: policy}},
			State:         persistence.ContainerState{Status: container.StateExited, StartedAt: startedAt},
			StoppedByUser: stoppedByUser,
		}
	}
	cases := []struct {
		name       string
		rec        *persistence.ContainerRecord
		wasRunning bool
		want       bool
	}{
		{"no policy", rec("", started, false), true, false},
		{"always", rec(container.RestartPolicyAlways, started, false), true, true},
		{"always, stopped by the user", rec(container.RestartPolicyAlways, started, true), false, true},
		{"unless-stopped", rec(container.RestartPolicyUnlessStopped, started, false), true, true},
		{"unless-stopped, stopped by the user", rec(container.RestartPolicyUnlessStopped, started, true), false, false},
		{"on-failure, cut short", rec(container.RestartPolicyOnFailure, started, false), true, true},
		{"on-failure, had exited", rec(container.RestartPolicyOnFailure, started, false), false, false},
		// Created and never started (a daemon killed before the start's
		// record was written leaves this too): stays created.
		{"always, never started", rec(container.RestartPolicyAlways, time.Time{}, false), false, false},
		{"unless-stopped, never started", rec(container.RestartPolicyUnlessStopped, time.Time{}, false), false, false},
	}
	for _, c := range cases {
		if got := restartOnDaemonStart(c.rec, c.wasRunning); got != c.want {
			t.Errorf("%s: restartOnDaemonStart = %v, want %v", c.name, got, c.want)
		}
	}
}
