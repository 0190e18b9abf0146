package persistence

import (
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"
)

// ContainerRecord is what survives a daemon crash of one container: its
// configuration as created, and the last state the daemon acknowledged.
type ContainerRecord struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"` // without the leading "/"
	Created    time.Time             `json:"created"`
	Image      string                `json:"image"` // as the user gave it
	ImageID    digest.Digest         `json:"imageID"`
	Path       string                `json:"path"`
	Args       []string              `json:"args"`
	Config     *container.Config     `json:"config"`
	HostConfig *container.HostConfig `json:"hostConfig"`
	State      ContainerState        `json:"state"`
	// RestartCount counts restarts by policy since the last user start.
	RestartCount int `json:"restartCount"`
	// Networks are the container's endpoints as configured (create,
	// connect, disconnect), keyed by network name; addresses given here
	// are the fixed ones the user asked for, not the ones of a run.
	Networks map[string]*network.EndpointSettings `json:"networks,omitempty"`
	// Mounts are the volumes, binds and tmpfs mounts resolved at create,
	// in mount order.
	Mounts []Mount `json:"mounts,omitempty"`
	// StoppedByUser is set by stop/kill through the API, so that
	// unless-stopped does not bring it back after a daemon restart.
	StoppedByUser bool `json:"stoppedByUser,omitempty"`
	// SizeRw is the writable layer's size as the last run ended.
	SizeRw int64 `json:"sizeRw,omitempty"`
}

// ContainerState mirrors Docker's State; times are zero when unset.
type ContainerState struct {
	Status     container.ContainerState `json:"status"` // created, running, paused, restarting, removing, exited, dead
	Pid        int                      `json:"pid,omitempty"`
	ExitCode   int                      `json:"exitCode"`
	Error      string                   `json:"error,omitempty"`
	OOMKilled  bool                     `json:"oomKilled,omitempty"`
	StartedAt  time.Time                `json:"startedAt"`
	FinishedAt time.Time                `json:"finishedAt"`
}
