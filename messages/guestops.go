package messages

import (
	"io"

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

// The file operations (docker cp, diff, export, commit, and the classic
// builder's COPY --from) are requests to the container actor, which owns
// the agent session: it uses the running machine's agent, or boots one
// without a main process for a container that is not running, and
// answers with what the agent said. Copies that overlap share that
// machine; it is powered off once the last of them is done.
//
// Gone, when set, is closed by the requester once it is done with the
// reply or has given up waiting for it: the actor then ends the agent
// call and lets the files go, whether or not the reply was ever read.
// Set it: a request may wait for a start to end, and a reply that comes
// after its requester gave up would otherwise hold the files for good.

// FileRequest is embedded in every file operation.
type FileRequest struct {
	Ref
	Gone <-chan struct{}
}

// StatPath is HEAD /containers/{id}/archive.
type StatPath struct {
	FileRequest
	Path string
}

type StatPathReply struct{ Stat container.PathStat }

// GetArchive is GET /containers/{id}/archive: Path as a tar, by
// docker cp's rules.
type GetArchive struct {
	FileRequest
	Path string
}

// GetArchiveReply streams the archive. Closing Archive ends the agent
// call and releases the files; the requester must close it (or close
// Gone).
type GetArchiveReply struct {
	Stat    container.PathStat
	Archive io.ReadCloser
}

// PutArchive is PUT /containers/{id}/archive: Body, a tar, extracted
// into the directory Path. The reply (Accepted or an error) comes once
// the agent is done with Body; the actor never reads Body after that.
type PutArchive struct {
	FileRequest
	Path                 string
	Body                 io.Reader
	NoOverwriteDirNonDir bool
	CopyUIDGID           bool // owners from the container's configured user
}

// ContainerChanges is docker diff.
type ContainerChanges struct{ FileRequest }

// ContainerChangesReply is sorted by path, as dockerd sends it.
type ContainerChangesReply struct{ Changes []container.FilesystemChange }

// ExportKind says what ExportContainer reads.
type ExportKind uint8

const (
	ExportRootfs ExportKind = iota // the container's filesystem (docker export)
	ExportLayer                    // its writable layer with OCI whiteouts (commit)
)

// ExportContainer streams the container's files as a tar.
type ExportContainer struct {
	FileRequest
	Kind ExportKind
}

// ExportContainerReply: as GetArchiveReply, Archive must be closed.
type ExportContainerReply struct{ Archive io.ReadCloser }
