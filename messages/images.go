package messages

import (
	"io"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/arcavm/arca/persistence"
)

// PullImage asks the images actor to pull Ref (already normalized). Progress
// messages in Docker's shape arrive on Progress, which the images actor
// closes when the pull has ended; the last message carries the error, if
// any. The immediate reply is Accepted.
type PullImage struct {
	Ref      string
	Platform string
	Progress chan<- jsonstream.Message
}

// ResolveImage finds an image by name, ID, ID prefix or digest reference.
type ResolveImage struct{ Name string }

type ResolveImageReply struct {
	Image *persistence.ImageRecord
}

type ListImages struct {
	All     bool
	Filters map[string][]string
}

type ListImagesReply struct{ Images []image.Summary }

type InspectImage struct{ Name string }

type InspectImageReply struct{ Image image.InspectResponse }

type ImageHistory struct{ Name string }

type ImageHistoryReply struct{ History []image.HistoryResponseItem }

type TagImage struct {
	Source string
	Target string // normalized reference with tag
}

type RemoveImage struct {
	Name    string
	Force   bool
	NoPrune bool
}

type RemoveImageReply struct{ Deleted []image.DeleteResponse }

// LoadImages hands a tar stream to the images actor. Progress lines are
// sent on Progress, which is closed when the load ends.
type LoadImages struct {
	Tar      io.Reader
	Progress chan<- jsonstream.Message
}

// SaveImages resolves names to images; the reply writes the tar.
type SaveImages struct{ Names []string }

type SaveImagesReply struct {
	// WriteTo streams the archive; it reads only immutable blobs.
	WriteTo func(w io.Writer) error
}

type ImageCount struct{}

type ImageCountReply struct{ Count int }
