package messages

import (
	"encoding/json"
	"log/slog"

	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
)

// RegistryAuth is what a client sent as X-Registry-Auth or POST /auth. It
// lives only for its request: it is never stored, logged or put in an
// event, and its String and GoString hide the secrets so that a %v of a
// message carrying it does not print them.
type RegistryAuth struct {
	Username      string
	Password      string
	IdentityToken string
	RegistryToken string
	ServerAddress string
}

// Empty reports whether no credentials were given.
func (a *RegistryAuth) Empty() bool {
	return a == nil || a.Username == "" && a.Password == "" && a.IdentityToken == "" && a.RegistryToken == ""
}

// Value receivers: a copy of the struct prints as safely as a pointer.
func (a RegistryAuth) String() string {
	return "RegistryAuth{" + a.ServerAddress + " user " + a.Username + " [redacted]}"
}

func (a RegistryAuth) GoString() string { return a.String() }

// MarshalJSON and LogValue keep the secrets out of JSON logs and slog too
// (a dead letter, say, is logged with its message).
func (a RegistryAuth) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

func (a RegistryAuth) LogValue() slog.Value { return slog.StringValue(a.String()) }

// PushImage asks the images actor to push Name (a normalized reference
// without tag, such as "127.0.0.1:5000/busybox") with Tag, or every local
// tag of that repository when Tag is empty. The immediate reply is
// Accepted or the error that stops it before it starts (no such image);
// progress then arrives on Progress, closed at the end.
type PushImage struct {
	Name     string
	Tag      string
	Auth     *RegistryAuth
	Progress chan ProgressEvent
}

// PushedImage tells the images actor that an image was pushed as Repo
// (normalized name) with manifest Digest, so that it lists that repo digest.
type PushedImage struct {
	ID     digest.Digest
	Repo   string
	Digest digest.Digest
}

// RegistryLogin checks credentials against a registry (POST /auth).
type RegistryLogin struct {
	Auth *RegistryAuth
}

type RegistryLoginReply struct {
	Status        string
	IdentityToken string
}

// DistributionInspect asks a registry what Name (normalized) resolves to
// (GET /distribution/{name}/json), with the client's credentials.
type DistributionInspect struct {
	Name string
	Auth *RegistryAuth
}

type DistributionInspectReply struct {
	Result registry.DistributionInspect
}
