package messages

import (
	"io"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
)

// AddLayerImage asks the images actor for a new image made of Parent's
// layers (none for an import) and one more read from Layer, as docker
// commit and docker import make one. The reply, once the image is
// stored and tagged, is AddLayerImageReply; Layer is read to its end
// before it, so the caller may close it then.
type AddLayerImage struct {
	Parent digest.Digest // "" for an import
	Layer  io.Reader     // a tar, possibly compressed
	// Config is what the image's config holds for running it: the
	// container's config merged and changed as dockerd's commit does.
	Config container.Config
	// History entry of the new layer.
	Author, Comment, CreatedBy string
	// OS and Architecture of an import (a commit keeps its parent's).
	OS, Architecture, Variant string
	Tag                       string // normalized reference, or ""
	// Container is set for a commit: the commit event is the container's.
	Container *container.InspectResponse
}

type AddLayerImageReply struct{ ID digest.Digest }
