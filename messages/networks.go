package messages

import "github.com/moby/moby/api/types/network"

// Network requests go to the networks supervisor; connect and disconnect
// continue from there to the container's actor.

type CreateNetwork struct {
	Request network.CreateRequest
}

type CreateNetworkReply struct {
	ID      string
	Warning string
}

type InspectNetwork struct {
	Ref string // full ID, unique ID prefix or name
}

type InspectNetworkReply struct {
	Network network.Inspect
}

type ListNetworks struct {
	Filters map[string][]string
}

type ListNetworksReply struct {
	Networks []network.Summary
}

type RemoveNetwork struct {
	Ref string
}

type PruneNetworks struct {
	Filters map[string][]string
}

type PruneNetworksReply struct {
	Report network.PruneReport
}

// ConnectNetwork attaches a container to a network, also while it runs.
// The networks supervisor fills in NetworkID and NetworkName.
type ConnectNetwork struct {
	Ref                // the container
	Network     string // as the client gave it
	Endpoint    *network.EndpointSettings
	NetworkID   string
	NetworkName string
}

// DisconnectNetwork detaches a container from a network.
type DisconnectNetwork struct {
	Ref
	Network     string
	Force       bool
	NetworkID   string
	NetworkName string
}
