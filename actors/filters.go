package actors

import (
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// containerFilter is docker ps's --filter, checked once up front so that a
// malformed filter is a 400 and not an empty list.
type containerFilter struct {
	f                 map[string][]string
	before, since     *persistence.ContainerRecord
	exited            []int
	statusWantsExited bool
}

var containerFilterKeys = map[string]bool{
	"id": true, "name": true, "label": true, "status": true, "ancestor": true, "exited": true,
	"before": true, "since": true, "network": true, "volume": true, "health": true, "is-task": true,
	"publish": true, "expose": true, "isolation": true,
}

var validStatuses = map[string]bool{
	"created": true, "restarting": true, "running": true, "removing": true, "paused": true, "exited": true, "dead": true,
}

func newContainerFilter(f map[string][]string, s *containersSupervisor) (*containerFilter, error) {
	cf := &containerFilter{f: f}
	for k, vals := range f {
		if !containerFilterKeys[k] {
			return nil, messages.InvalidParameter("invalid filter '%s'", k)
		}
		for _, v := range vals {
			switch k {
			case "status":
				if !validStatuses[v] {
					return nil, messages.InvalidParameter("invalid filter 'status=%s'", v)
				}
				if v != "running" && v != "paused" {
					cf.statusWantsExited = true
				}
			case "health":
				if v != "starting" && v != "healthy" && v != "unhealthy" && v != "none" {
					return nil, messages.InvalidParameter("Unrecognised filter value for health: %s", v)
				}
			case "exited":
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, messages.InvalidParameter("invalid filter 'exited=%s'", v)
				}
				cf.exited = append(cf.exited, n)
			case "before", "since":
				id, err := s.resolve(v)
				if err != nil {
					return nil, err
				}
				snap := s.byID[id].snap
				if k == "before" {
					cf.before = &snap
				} else {
					cf.since = &snap
				}
			}
		}
	}
	return cf, nil
}

// wantsStopped: some filters list stopped containers without -a.
func (cf *containerFilter) wantsStopped() bool {
	return len(cf.exited) > 0 || cf.statusWantsExited || cf.before != nil || cf.since != nil
}

func (cf *containerFilter) match(r *persistence.ContainerRecord, health *container.HealthSummary) bool {
	for k, vals := range cf.f {
		if len(vals) == 0 {
			continue
		}
		if k == "health" {
			status := container.NoHealthcheck
			if health != nil {
				status = health.Status
			}
			if !anyOf(vals, func(v string) bool { return string(status) == v }) {
				return false
			}
			continue
		}
		if !anyOf(vals, func(v string) bool { return matchOne(k, v, r) }) {
			return false
		}
	}
	if len(cf.exited) > 0 {
		if r.State.Status != container.StateExited || !anyOf(cf.exited, func(n int) bool { return r.State.ExitCode == n }) {
			return false
		}
	}
	if cf.before != nil && !r.Created.Before(cf.before.Created) {
		return false
	}
	if cf.since != nil && !r.Created.After(cf.since.Created) {
		return false
	}
	return true
}

func matchOne(key, v string, r *persistence.ContainerRecord) bool {
	switch key {
	case "id":
		return strings.HasPrefix(r.ID, v)
	case "name":
		return strings.Contains(r.Name, strings.TrimPrefix(v, "/"))
	case "label":
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := r.Config.Labels[k]
		return ok && (!hasValue || got == want)
	case "status":
		return string(r.State.Status) == v
	case "ancestor":
		// Digest.Encoded panics on a malformed digest: compare strings.
		id := strings.TrimPrefix(r.ImageID.String(), "sha256:")
		want := strings.TrimPrefix(v, "sha256:")
		return r.Image == v || (want != "" && id != "" && strings.HasPrefix(id, want)) ||
			strings.TrimSuffix(r.Image, ":latest") == strings.TrimSuffix(v, ":latest")
	case "network":
		return r.HostConfig != nil && string(r.HostConfig.NetworkMode) == v
	}
	return true // keys handled elsewhere or not yet meaningful here
}

func anyOf[T any](vals []T, f func(T) bool) bool {
	for _, v := range vals {
		if f(v) {
			return true
		}
	}
	return false
}
