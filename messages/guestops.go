package messages

import (
	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/guest/wire"
)

type PauseContainer struct{ Ref }
type UnpauseContainer struct{ Ref }

type TopContainer struct {
	Ref
	PsArgs string
}

type TopReply struct{ Top container.TopResponse }

// StatsContainer asks for one sample from the guest.
type StatsContainer struct{ Ref }

// StatsReply is a sample; Running is false (and Stats zero) for a
// container that is not running.
type StatsReply struct {
	ID, Name string
	Running  bool
	Stats    wire.Stats
}

// AcquireFilesystem gets access to a container's files through its agent:
// the running machine's, or, for a stopped container, a machine booted for
// the purpose. Release the lease when done.
type AcquireFilesystem struct{ Ref }

// FilesystemLease is the reply to AcquireFilesystem.
type FilesystemLease interface {
	// Wait blocks until the agent is ready.
	Wait() (*wire.Client, error)
	Release()
}

type AcquireFilesystemReply struct {
	ID    string
	User  string // the container's configured user, for copyUIDGID
	Lease FilesystemLease
}
