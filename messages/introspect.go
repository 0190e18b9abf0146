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
	Children  []*ActorNode  `json:"children,omitempty"`
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
