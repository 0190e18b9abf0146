package underlay

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/internal/socketpair"
)

// socketPair makes a connected pair of unix datagram sockets, one
// Ethernet frame per datagram, both close-on-exec (a VM's process is
// handed its end explicitly).
func socketPair() (a, b *os.File, err error) {
	a, b, err = socketpair.New(unix.SOCK_DGRAM, "underlay-switch", "underlay-nic")
	if err != nil {
		return nil, nil, err
	}
	for _, f := range []*os.File{a, b} {
		// Best effort: Linux caps them at its sysctl maximums, and a
		// smaller buffer only means earlier drops.
		fd := int(f.Fd())
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, nicSendBuf)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, nicRecvBuf)
	}
	return a, b, nil
}
