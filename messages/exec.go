package messages

import (
	"io"

	"github.com/moby/moby/api/types/container"
)

// ExecRef is implemented by messages addressed to one exec instance; the
// containers supervisor routes them to the exec's container.
type ExecRef interface{ ExecRef() string }

// Exec is embedded in messages addressed to one exec instance.
type Exec struct{ ExecID string }

func (e Exec) ExecRef() string { return e.ExecID }

// CreateExec is addressed to a container; the supervisor assigns ExecID
// before forwarding, so it can route the exec's later messages.
type CreateExec struct {
	Ref
	ExecID string
	Config container.ExecCreateRequest
}

type CreateExecReply struct{ ID string }

type StartExec struct {
	Exec
	// Check only validates (the reply is Accepted): the HTTP layer checks,
	// upgrades the connection, and only then starts the process, so that
	// no output can arrive before the client has read the upgrade.
	Check       bool
	Detach      bool
	Tty         bool
	ConsoleSize *[2]uint
}

// StartExecReply carries an attached exec's streams. Done is closed once
// the exit code is recorded, so a client that saw the output end can
// inspect the exit code right away.
type StartExecReply struct {
	// StartError, when set, is why the process did not start: dockerd has
	// already upgraded the connection by then and writes it to stdout.
	StartError string
	Tty        bool
	Stdin      io.WriteCloser
	Stdout     io.Reader
	Stderr     io.Reader
	Done       <-chan struct{}
}

type InspectExec struct{ Exec }

type InspectExecReply struct{ Exec container.ExecInspectResponse }

type ResizeExec struct {
	Exec
	Height, Width uint16
}
