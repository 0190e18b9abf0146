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
	// Layer is a tar, possibly compressed; nil adds no layer (a build
	// step that only changes the config).
	Layer io.Reader
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
	// Build is set for a build step: no commit or import event.
	Build bool
	// ContainerConfig is the config the build step's or the committed
	// container ran with, kept in the image config as dockerd's
	// container_config: what the classic builder's cache matches.
	ContainerConfig *container.Config
}

type AddLayerImageReply struct{ ID digest.Digest }
