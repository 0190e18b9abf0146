package messages

import (
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
)

// DiskUsage asks for system df's figures, for the kinds of object set.
type DiskUsage struct {
	Images, Containers, Volumes, BuildCache bool
}

// DiskUsageReply is system df in dockerd's words; a kind not asked for
// stays nil.
type DiskUsageReply struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}
