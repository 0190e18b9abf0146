package messages

// ActorNode is one node of the live actor tree, for `arca actors` and
// GET /arca/v1/actors.
type ActorNode struct {
	Path     string `json:"path"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
	// LastStart is a container's last start, step by step.
	LastStart *StartTimings `json:"lastStart,omitempty"`
	// Detail is what an actor says of its thing beyond kind and state:
	// a container's name, a network's members, a pull's progress.
	Detail   *NodeDetail  `json:"detail,omitempty"`
	Children []*ActorNode `json:"children,omitempty"`
}

// NodeDetail is an actor's own account of its thing, for the live page.
// Every field is optional; which are set depends on the kind.
type NodeDetail struct {
	Name  string `json:"name,omitempty"`  // container or network name
	Image string `json:"image,omitempty"` // a container's image, as given
	// RestartCount is a container's restarts by its restart policy (the
	// actor's own restarts are ActorNode.Restarts).
	RestartCount int    `json:"restartCount,omitempty"`
	ExitCode     int    `json:"exitCode,omitempty"`
	Subnet       string `json:"subnet,omitempty"` // a network's
	// Kernel names the guest kernel the containers' machines boot (the
	// containers supervisor's; "" on the sandbox).
	Kernel string `json:"kernel,omitempty"`
	// Members are a network's running members.
	Members []NetworkMember `json:"members,omitempty"`
	// Ref and Layers are an image pull's reference and per-layer bytes.
	Ref    string          `json:"ref,omitempty"`
	Layers []LayerProgress `json:"layers,omitempty"`
}

// NetworkMember is one container on a network.
type NetworkMember struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	IP   string `json:"ip,omitempty"`
}

// LayerProgress is how far a pull has come with one layer.
type LayerProgress struct {
	ID      string `json:"id"`
	Status  string `json:"status,omitempty"`
	Current int64  `json:"current"`
	Total   int64  `json:"total"`
}

// Equal tells whether two details say the same (nil equals nil only).
func (d *NodeDetail) Equal(o *NodeDetail) bool {
	if d == nil || o == nil {
		return d == o
	}
	if d.Name != o.Name || d.Image != o.Image || d.RestartCount != o.RestartCount || d.ExitCode != o.ExitCode ||
		d.Subnet != o.Subnet || d.Kernel != o.Kernel || d.Ref != o.Ref || len(d.Members) != len(o.Members) || len(d.Layers) != len(o.Layers) {
		return false
	}
	for i := range d.Members {
		if d.Members[i] != o.Members[i] {
			return false
		}
	}
	for i := range d.Layers {
		if d.Layers[i] != o.Layers[i] {
			return false
		}
	}
	return true
}

// StartTimings is how long each step of a container's start took, in
// milliseconds, in order: the driver booting its machine, the agent
// answering on its stream, the rootfs and mounts set up, the networks
// configured, the main process started; and the whole.
type StartTimings struct {
	BootMs    float64 `json:"bootMs"`
	AgentMs   float64 `json:"agentMs"`
	SetupMs   float64 `json:"setupMs"`
	NetworkMs float64 `json:"networkMs"`
	ProcessMs float64 `json:"processMs"`
	TotalMs   float64 `json:"totalMs"`
}

type ActorTree struct{}

type ActorTreeReply struct{ Root *ActorNode }

// WatchActorTree subscribes to the live tree: the introspection actor
// answers with the tree as it is (ActorTreeReply) and from then on puts
// the whole tree on Updates after each change, at most every few tenths
// of a second. A subscriber that falls behind sees only the newest tree:
// Updates should have room for one. UnwatchActorTree ends it; the
// introspection actor never closes the channel.
type WatchActorTree struct{ Updates chan *ActorNode }

// UnwatchActorTree ends a WatchActorTree with the same channel.
type UnwatchActorTree struct{ Updates chan *ActorNode }
