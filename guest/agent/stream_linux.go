package agent

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/mdlayher/vsock"
)

// streamSpec is a parsed Config.Stream.
type streamSpec struct {
	kind string // "fd", "vsock" or "file"
	num  uint32 // fd or vsock port
	path string // file
}

// parseStream reads "fd:N" (an inherited socket: the sandbox passes one
// end of a socketpair), "vsock:PORT" (listen for the host's one
// connection) or "file:PATH" (a character device such as a virtio-serial
// port).
func parseStream(s string) (streamSpec, error) {
	kind, arg, ok := strings.Cut(s, ":")
	if !ok || arg == "" {
		return streamSpec{}, fmt.Errorf("stream %q: want fd:N, vsock:PORT or file:PATH", s)
	}
	switch kind {
	case "fd", "vsock":
		n, err := strconv.ParseUint(arg, 10, 32)
		if err != nil {
			return streamSpec{}, fmt.Errorf("stream %q: bad number: %w", s, err)
		}
		if kind == "fd" && n < 3 {
			return streamSpec{}, fmt.Errorf("stream %q: fds 0-2 are stdio", s)
		}
		return streamSpec{kind: kind, num: uint32(n)}, nil
	case "file":
		return streamSpec{kind: kind, path: arg}, nil
	}
	return streamSpec{}, fmt.Errorf("stream %q: unknown kind %q", s, kind)
}

// OpenStream connects to the host as Config.Stream says.
func OpenStream(s string) (io.ReadWriteCloser, error) {
	spec, err := parseStream(s)
	if err != nil {
		return nil, err
	}
	switch spec.kind {
	case "fd":
		f := os.NewFile(uintptr(spec.num), "host-stream")
		defer f.Close()
		// FileConn dups the descriptor into Go's poller, so that closing
		// the session interrupts a pending read.
		conn, err := net.FileConn(f)
		if err != nil {
			return nil, fmt.Errorf("stream fd %d: %w", spec.num, err)
		}
		return conn, nil
	case "vsock":
		l, err := vsock.Listen(spec.num, nil)
		if err != nil {
			return nil, fmt.Errorf("stream vsock port %d: %w", spec.num, err)
		}
		defer l.Close()
		conn, err := l.Accept()
		if err != nil {
			return nil, fmt.Errorf("stream vsock port %d: %w", spec.num, err)
		}
		return conn, nil
	default:
		f, err := os.OpenFile(spec.path, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("stream: %w", err)
		}
		return f, nil
	}
}
