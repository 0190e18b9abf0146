// Package buildcache holds the classic builder's cache rule, shared by
// the builder (which records each step's config) and the images actor
// (which answers a probe): a step can reuse a child of the current image
// when the config that child was made with matches the step's, as
// dockerd's local image cache (moby image/cache) decides.
package buildcache

import (
	"maps"
	"slices"
	"time"

	"github.com/moby/moby/api/types/container"
)

// Matches tells whether cached, the config an image was made with
// (dockerd's container_config), is the config of step: every field a
// Dockerfile step can change, with Cmd saying what the step did. The
// fields that name one container (Image, Hostname, Domainname) do not
// count. A nil and an empty list or map are the same, as a config read
// back from JSON may have either.
func Matches(cached, step *container.Config) bool {
	if cached == nil || step == nil {
		return false
	}
	return slices.Equal(cached.Cmd, step.Cmd) &&
		slices.Equal(cached.Entrypoint, step.Entrypoint) &&
		slices.Equal(cached.Env, step.Env) &&
		slices.Equal(cached.Shell, step.Shell) &&
		slices.Equal(cached.OnBuild, step.OnBuild) &&
		maps.Equal(cached.ExposedPorts, step.ExposedPorts) &&
		maps.Equal(cached.Volumes, step.Volumes) &&
		maps.Equal(cached.Labels, step.Labels) &&
		sameStdio(cached, step) &&
		cached.NetworkDisabled == step.NetworkDisabled &&
		cached.ArgsEscaped == step.ArgsEscaped &&
		cached.User == step.User &&
		cached.WorkingDir == step.WorkingDir &&
		cached.StopSignal == step.StopSignal &&
		sameStopTimeout(cached.StopTimeout, step.StopTimeout) &&
		sameHealthcheck(cached.Healthcheck, step.Healthcheck)
}

func sameStdio(a, b *container.Config) bool {
	return a.AttachStdin == b.AttachStdin && a.AttachStdout == b.AttachStdout && a.AttachStderr == b.AttachStderr &&
		a.Tty == b.Tty && a.OpenStdin == b.OpenStdin && a.StdinOnce == b.StdinOnce
}

func sameStopTimeout(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func sameHealthcheck(a, b *container.HealthConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.Test, b.Test) && a.Interval == b.Interval && a.Timeout == b.Timeout &&
		a.StartPeriod == b.StartPeriod && a.StartInterval == b.StartInterval && a.Retries == b.Retries
}

// Candidate is a child of the current image as a probe sees it.
type Candidate struct {
	ID      string
	Created time.Time
	// Config is what the child was made with; nil for an image not made
	// by a build step or a commit, which is never reused.
	Config *container.Config
}

// Newest is the ID of the most recently created candidate whose config
// matches step (dockerd keeps the most up to date match), or "" when
// none does. Equal times go to the lower ID, so the answer is stable.
func Newest(children []Candidate, step *container.Config) string {
	var best *Candidate
	for i := range children {
		c := &children[i]
		if !Matches(c.Config, step) {
			continue
		}
		if best == nil || c.Created.After(best.Created) || c.Created.Equal(best.Created) && c.ID < best.ID {
			best = c
		}
	}
	if best == nil {
		return ""
	}
	return best.ID
}
