package underlay

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketPair makes a connected pair of unix datagram sockets, one
// Ethernet frame per datagram, both close-on-exec (a VM's process is
// handed its end explicitly). macOS has no SOCK_CLOEXEC, hence the fork
// lock.
func socketPair() (a, b *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	for _, fd := range fds {
		// Best effort: Linux caps them at its sysctl maximums, and a
		// smaller buffer only means earlier drops.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, nicSendBuf)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, nicRecvBuf)
	}
	return os.NewFile(uintptr(fds[0]), "underlay-switch"), os.NewFile(uintptr(fds[1]), "underlay-nic"), nil
}
