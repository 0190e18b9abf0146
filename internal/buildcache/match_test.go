package buildcache

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func nop(comment string) []string { return []string{"/bin/sh", "-c", "#(nop) " + comment} }

func TestMatches(t *testing.T) {
	ten, eleven := 10, 11
	base := func() *container.Config {
		return &container.Config{
			Cmd:          nop("COPY file:abc in /app "),
			Env:          []string{"PATH=/bin", "A=1"},
			Labels:       map[string]string{"l": "v"},
			ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}},
			Volumes:      map[string]struct{}{"/data": {}},
			WorkingDir:   "/app",
			User:         "nobody",
			Shell:        []string{"/bin/sh", "-c"},
			OnBuild:      []string{"RUN x"},
			Entrypoint:   []string{"/e"},
			StopSignal:   "SIGTERM",
			StopTimeout:  &ten,
			Healthcheck:  &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second},
		}
	}
	tests := []struct {
		name   string
		change func(c *container.Config)
		want   bool
	}{
		{"same", func(*container.Config) {}, true},
		{"another container's name", func(c *container.Config) { c.Hostname, c.Image, c.Domainname = "h", "img", "d" }, true},
		{"another step", func(c *container.Config) { c.Cmd = nop("ENV A=1") }, false},
		{"a changed source", func(c *container.Config) { c.Cmd = nop("COPY file:abd in /app ") }, false},
		{"a build arg", func(c *container.Config) { c.Cmd = append([]string{"|1", "A=2"}, c.Cmd...) }, false},
		{"env", func(c *container.Config) { c.Env = []string{"PATH=/bin", "A=2"} }, false},
		{"env order", func(c *container.Config) { c.Env = []string{"A=1", "PATH=/bin"} }, false},
		{"a label value", func(c *container.Config) { c.Labels = map[string]string{"l": "w"} }, false},
		{"one more label", func(c *container.Config) { c.Labels["m"] = "v" }, false},
		{"a port", func(c *container.Config) { c.ExposedPorts = network.PortSet{network.MustParsePort("81/tcp"): {}} }, false},
		{"a volume", func(c *container.Config) { c.Volumes = map[string]struct{}{"/other": {}} }, false},
		{"workdir", func(c *container.Config) { c.WorkingDir = "/" }, false},
		{"user", func(c *container.Config) { c.User = "root" }, false},
		{"shell", func(c *container.Config) { c.Shell = []string{"/bin/bash", "-c"} }, false},
		{"onbuild", func(c *container.Config) { c.OnBuild = nil }, false},
		{"entrypoint", func(c *container.Config) { c.Entrypoint = nil }, false},
		{"stop signal", func(c *container.Config) { c.StopSignal = "SIGKILL" }, false},
		{"stop timeout", func(c *container.Config) { c.StopTimeout = &eleven }, false},
		{"no stop timeout", func(c *container.Config) { c.StopTimeout = nil }, false},
		{"healthcheck test", func(c *container.Config) { c.Healthcheck.Test = []string{"NONE"} }, false},
		{"healthcheck interval", func(c *container.Config) { c.Healthcheck.Interval = 2 * time.Second }, false},
		{"no healthcheck", func(c *container.Config) { c.Healthcheck = nil }, false},
		{"tty", func(c *container.Config) { c.Tty = true }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step := base()
			tt.change(step)
			if got := Matches(base(), step); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchesEmptyIsNil(t *testing.T) {
	a := &container.Config{Cmd: nop("ENV A=1"), Env: []string{}, Labels: map[string]string{}, Volumes: map[string]struct{}{}}
	b := &container.Config{Cmd: nop("ENV A=1")}
	if !Matches(a, b) || !Matches(b, a) {
		t.Error("empty and nil lists differ")
	}
	if Matches(nil, b) || Matches(a, nil) {
		t.Error("a missing config matches")
	}
}

func TestNewest(t *testing.T) {
	step := &container.Config{Cmd: nop("ENV A=1")}
	other := &container.Config{Cmd: nop("ENV A=2")}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		children []Candidate
		want     string
	}{
		{"none", nil, ""},
		{"no match", []Candidate{{ID: "a", Created: t0, Config: other}}, ""},
		{"not made here", []Candidate{{ID: "a", Created: t0}}, ""},
		{"the match", []Candidate{{ID: "a", Created: t0, Config: other}, {ID: "b", Created: t0, Config: step}}, "b"},
		{"the newest match", []Candidate{{ID: "a", Created: t0.Add(time.Hour), Config: step}, {ID: "b", Created: t0, Config: step}}, "a"},
		{"a tie goes to the lower ID", []Candidate{{ID: "b", Created: t0, Config: step}, {ID: "a", Created: t0, Config: step}}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Newest(tt.children, step); got != tt.want {
				t.Errorf("Newest = %q, want %q", got, tt.want)
			}
		})
	}
}
