package messages

import (
	"io"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/arcavm/arca/persistence"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// ProgressEvent is one line of a pull or load progress stream; Err, when
// set, ends the stream and keeps its kind for the status code.
type ProgressEvent struct {
	Message jsonstream.Message
	Err     error
}

// PullImage asks the images actor to pull Ref (already normalized). Progress
// arrives on Progress, which is closed when the pull has ended and the image
// is registered. The immediate reply is Accepted.
type PullImage struct {
	Ref      string
	Platform string
	// Auth, when set, is used for this pull only; a pull with credentials
	// neither joins nor is joined by another.
	Auth     *RegistryAuth
	Progress chan ProgressEvent
}

// ResolveImage finds an image by name, ID, ID prefix or digest reference.
type ResolveImage struct{ Name string }

type ResolveImageReply struct {
	Image  *persistence.ImageRecord
	Config *dockerspec.DockerOCIImage // parsed config blob; shared, read only
}

// ListImages lists images as dockerd does: without All, an untagged image
// that is another's parent (an intermediate image) is left out.
type ListImages struct {
	All     bool
	Filters map[string][]string
}

type ListImagesReply struct{ Images []image.Summary }

type InspectImage struct{ Name string }

type InspectImageReply struct {
	Image image.InspectResponse
	// Parent is dockerd's legacy Parent field, which the API type no
	// longer has; "" when the image has none.
	Parent string
}

type ImageHistory struct{ Name string }

type ImageHistoryReply struct{ History []image.HistoryResponseItem }

type TagImage struct {
	Source string
	Target string // normalized reference with tag
}

// RemoveImage is docker rmi: without NoPrune, the untagged parents
// nothing else needs go too.
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
	Quiet    bool
	Progress chan ProgressEvent
}

// SaveImages resolves names to images; the reply writes the tar.
type SaveImages struct{ Names []string }

type SaveImagesReply struct {
	// WriteTo streams the archive; it reads only immutable blobs.
	WriteTo func(w io.Writer) error
}

type ImageCount struct{}

type ImageCountReply struct{ Count int }

// ImageDiskUsage asks the images actor for system df's image figures.
type ImageDiskUsage struct{}

// ImageDiskUsageReply has the images with SharedSize computed and
// Containers 0 (the caller counts them); LayersSize counts each unpacked
// layer once.
type ImageDiskUsageReply struct {
	LayersSize int64
	Images     []image.Summary
}

// PruneImages removes images no container uses: dangling ones, or all of
// them when Filters["dangling"] is ["false"], with the untagged parents
// nothing else needs.
type PruneImages struct{ Filters map[string][]string }

type PruneImagesReply struct{ Report image.PruneReport }

// ProbeBuildCache asks for the classic builder's cache: the newest child
// of Parent made with a config that matches Config (the step's, its Cmd
// saying what the step does), as dockerd's local image cache finds one.
type ProbeBuildCache struct {
	Parent string // image ID
	Config container.Config
}

// ProbeBuildCacheReply names the cached image; "" on a miss.
type ProbeBuildCacheReply struct{ ID string }
