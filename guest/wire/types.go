// Package wire is the protocol between the host and the agent that runs as
// PID 1 inside every machine. One yamux session runs over the machine's byte
// stream: the host is the yamux client, the agent the server. Each call opens
// a stream, writes one request frame and reads one response frame; a
// process's stdin, stdout and stderr each get their own stream, and its exit
// status arrives on the stream that started it.
//
// The host side is Client; the agent side is Serve with a Handler.
package wire

import (
	"github.com/arcavm/arca/guest/vm"
)

// ProtocolVersion changes whenever a host and an agent of different versions
// could misunderstand each other. Ping fails on a mismatch.
const ProtocolVersion = 1

// SetupRequest prepares the container inside the machine: its root
// filesystem, the kernel filesystems in it and the files Docker provides.
type SetupRequest struct {
	Rootfs   vm.RootfsSpec `json:"rootfs"`
	Hostname string        `json:"hostname"`
	// Hosts becomes /etc/hosts; nil gives a loopback-only file.
	Hosts []byte `json:"hosts"`
	// ResolvConf becomes /etc/resolv.conf; nil leaves the image's file
	// (an empty slice gives an empty file).
	ResolvConf []byte `json:"resolvConf"`
}

// ProcessSpec is a process to start in the container: its main process or
// an exec.
type ProcessSpec struct {
	// ID names the process for Signal and Resize; unique per machine.
	ID   string   `json:"id"`
	Args []string `json:"args"`
	// Env is passed as given, plus HOME from the user's passwd entry when
	// absent and TERM=xterm with a tty when absent.
	Env []string `json:"env,omitempty"`
	// Cwd is created if missing, as Docker does for WorkingDir; "" is /.
	Cwd string `json:"cwd,omitempty"`
	// User is "", "uid", "name", "uid:gid", "name:group" and so on, looked up
	// in the container's /etc/passwd and /etc/group.
	User string `json:"user,omitempty"`
	// Tty gives the process a pty; Stdout then carries everything.
	Tty bool `json:"tty,omitempty"`
	// Stdin attaches a stdin stream; without it stdin is /dev/null.
	Stdin bool `json:"stdin,omitempty"`
	// Main marks the container's main process: when it exits every other
	// process in the container is killed, as when a pid namespace dies.
	Main bool `json:"main,omitempty"`
	// ConsoleSize is the pty's initial size; zero keeps the kernel's.
	ConsoleSize WindowSize `json:"consoleSize,omitzero"`
	// Capabilities bounds what the process may ever hold, by name
	// ("CAP_NET_ADMIN", "NET_ADMIN" or "ALL"); nil is Docker's default set,
	// empty is none.
	// The host folds CapAdd, CapDrop and Privileged into it.
	Capabilities []string `json:"capabilities"`
}

// WindowSize is a terminal size in characters.
type WindowSize struct {
	Height uint16 `json:"height"`
	Width  uint16 `json:"width"`
}

// ExitStatus is how a process ended. A process killed by signal N has
// Signal N and Code 128+N, as Docker reports it.
type ExitStatus struct {
	Code      int  `json:"code"`
	Signal    int  `json:"signal,omitempty"`
	OOMKilled bool `json:"oomKilled,omitempty"`
}

// DefaultCapabilities is Docker's default capability set for a container,
// without the "CAP_" prefix.
var DefaultCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}
