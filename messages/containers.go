package messages

import (
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/arcavm/arca/persistence/containerlog"
)

// ContainerRef is implemented by every message addressed to one container.
// The containers supervisor resolves the reference (full ID, unique ID
// prefix or name) and forwards the message to that container's actor.
type ContainerRef interface {
	ContainerRef() string
}

// Ref is embedded in messages addressed to one container.
type Ref struct{ ID string }

func (r Ref) ContainerRef() string { return r.ID }

// CreateContainer asks the containers supervisor for a new container.
type CreateContainer struct {
	Name             string
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
	Platform         string
}

type CreateContainerReply struct {
	ID       string
	Warnings []string
}

type StartContainer struct{ Ref }

type StopContainer struct {
	Ref
	Signal  string
	Timeout *time.Duration // nil: the container's StopTimeout, else 10 s
}

type KillContainer struct {
	Ref
	Signal string
}

type RemoveContainer struct {
	Ref
	Force         bool
	RemoveVolumes bool
}

// WaitContainer replies with WaitReply once the condition holds. The reply
// comes back later, so the requester must use a deadline it can afford.
type WaitContainer struct {
	Ref
	Condition container.WaitCondition
}

type WaitReply struct {
	ExitCode int64
	Error    string
}

// WaitContainerStream is what the HTTP layer sends instead of
// WaitContainer: it gets an immediate Accepted reply (so response headers
// can go out at once, as dockerd does) and the outcome on Result.
type WaitContainerStream struct {
	Ref
	Condition container.WaitCondition
	Result    chan<- WaitReply // buffered, capacity 1
}

type InspectContainer struct {
	Ref
	Size bool
}

type InspectContainerReply struct {
	Container container.InspectResponse
}

type ListContainers struct {
	All     bool
	Limit   int
	Size    bool
	Filters map[string][]string
}

type ListContainersReply struct {
	Containers []container.Summary
}

// AttachContainer subscribes to a container's streams. The reply carries
// the subscription; the caller owns it and must Close it.
type AttachContainer struct {
	Ref
	Stdin, Stdout, Stderr bool
	Logs, Stream          bool
	DetachKeys            string
}

type AttachReply struct {
	Tty        bool
	StdinOnce  bool
	DetachKeys string // as requested, else the container's default
	// Log, for logs=1, is the container's log as it was (its stdout and
	// stderr entries as Stdout and Stderr ask), to send before Output,
	// which continues exactly where it ends. The caller reads and closes it.
	Log            *containerlog.Snapshot
	Stdout, Stderr bool
	// Output delivers frames until the run ends (or the subscription is
	// closed); Frames are delivered in order. Nil for stream=0.
	Output OutputSubscription
	// Stdin, if requested and the container has OpenStdin, forwards to the
	// process's stdin (the current run or, before start, the next).
	Stdin io.WriteCloser
}

// OutputSubscription is an attached reader of a container's output.
type OutputSubscription interface {
	// Next blocks for the next frame; ok is false when the stream ended.
	Next() (f Frame, ok bool)
	Close()
}

// Frame is one chunk of a container's output.
type Frame struct {
	Stream int // 1 stdout, 2 stderr
	Data   []byte
	Time   time.Time
}

type ContainerLogs struct {
	Ref
	Follow     bool
	Stdout     bool
	Stderr     bool
	Since      time.Time
	Until      time.Time
	Timestamps bool
	Tail       int // -1: all
}

type LogsReply struct {
	Tty bool
	// Log is the container's log files as they were when the request was
	// served (nil: there is no log), for the caller to read on its own
	// goroutine and then Close. If Follow, Live continues from exactly
	// where it ends.
	Log  *containerlog.Snapshot
	Live OutputSubscription // nil unless Follow and the container runs
}

// ImagesInUse asks the containers supervisor which containers use which
// images (for rmi and image prune).
type ImagesInUse struct{}

// ImagesInUseReply maps an image ID to the IDs of the containers using
// it, sorted; a paused container counts as running.
type ImagesInUseReply struct {
	Running map[string][]string
	Stopped map[string][]string
}

// ContainerCounts is for /info.
type ContainerCounts struct{}

type ContainerCountsReply struct {
	Total, Running, Paused, Stopped int
}

// Accepted is the immediate reply to a request whose result travels on a
// channel supplied with it.
type Accepted struct{}

// ResizeContainer resizes the TTY of the container's main process.
type ResizeContainer struct {
	Ref
	Height, Width uint16
}

// RestartContainer stops (if running) and starts a container.
type RestartContainer struct {
	Ref
	Signal  string
	Timeout *time.Duration
}

// RenameContainer is handled by the containers supervisor (names are its)
// and then by the container.
type RenameContainer struct {
	Ref
	Name string
}

// PruneContainers removes stopped containers matching Filters (until,
// label, label!).
type PruneContainers struct{ Filters map[string][]string }

type PruneContainersReply struct {
	Deleted []string
}
