package messages

// ActorNode is one node of the live actor tree, for `arca actors` and
// GET /arca/v1/actors.
type ActorNode struct {
	Path     string       `json:"path"`
	Kind     string       `json:"kind"`
	State    string       `json:"state"`
	Restarts int          `json:"restarts"`
	Children []*ActorNode `json:"children,omitempty"`
}

type ActorTree struct{}

type ActorTreeReply struct{ Root *ActorNode }
