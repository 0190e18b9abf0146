package messages

import "github.com/moby/moby/api/types/volume"

// Volume requests go to the volumes actor.

type CreateVolume struct {
	Request volume.CreateRequest
}

type VolumeReply struct {
	Volume volume.Volume
}

type InspectVolume struct{ Name string }

type ListVolumes struct {
	Filters map[string][]string
}

type ListVolumesReply struct {
	Volumes []volume.Volume
}

type RemoveVolume struct {
	Name  string
	Force bool
}

type PruneVolumes struct {
	Filters map[string][]string
}

type PruneVolumesReply struct {
	Report volume.PruneReport
}

// VolumeRefs asks the containers supervisor which containers use which
// volumes (running or not, as dockerd counts them).
type VolumeRefs struct{}

type VolumeRefsReply struct {
	Refs map[string][]string // volume name -> container IDs
}

// VolumeDiskUsage asks the volumes actor for every volume with its
// UsageData (the space its data takes on the host, and how many
// containers use it).
type VolumeDiskUsage struct{}

type VolumeDiskUsageReply struct {
	Volumes []volume.Volume
}
