package messages

import (
	"io"
	"syscall"
	"time"

	"github.com/arcavm/arca/guest/wire"
)

// BuildStep is one process of a BuildKit build (a RUN) to run in a machine
// of the daemon's driver. The build engine has assembled its root
// filesystem on the host (RootDir, written in place) and the mounts' host
// paths; the machine is gone when Done receives the result.
type BuildStep struct {
	ID       string
	RootDir  string
	Mounts   []wire.Mount // Source: host paths
	Hostname string
	Hosts    []byte // /etc/hosts
	Args     []string
	Env      []string
	User     string
	Cwd      string
	Tty      bool
	// Privileged is RUN --security=insecure (the build was granted the
	// security.insecure entitlement).
	Privileged     bool
	ReadonlyRootfs bool
	// Network: "none" gives loopback only; "" the default network.
	Network string

	Stdin          io.Reader // nil: /dev/null
	Stdout, Stderr io.Writer
	Signal         <-chan syscall.Signal
	Resize         <-chan wire.WindowSize
	// Started is closed once the process runs.
	Started chan<- struct{}
	// Cancel ends the step: the machine is killed.
	Cancel <-chan struct{}
	// Done receives the result; it must have room for it.
	Done chan<- BuildStepResult
}

// BuildStepResult is how a build step ended: its exit code, or Err when it
// could not run at all.
type BuildStepResult struct {
	ExitCode int
	Err      error
}

// BuildCachePrune is POST /build/prune's parameters.
type BuildCachePrune struct {
	All           bool
	KeepDuration  time.Duration // the "until" filter
	Filters       []string      // BuildKit's filter syntax: "key==value"
	ReservedSpace int64
	MaxUsedSpace  int64
	MinFreeSpace  int64
}
