// Package socketpair makes connected pairs of unix sockets that no child
// process inherits by accident.
package socketpair

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// New makes a connected pair of unix sockets of sotype (unix.SOCK_STREAM,
// unix.SOCK_DGRAM), both close-on-exec: a child gets one only when handed
// it explicitly. macOS has no SOCK_CLOEXEC, hence the fork lock, so no
// child started meanwhile inherits them.
func New(sotype int, nameA, nameB string) (a, b *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := unix.Socketpair(unix.AF_UNIX, sotype, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), nameA), os.NewFile(uintptr(fds[1]), nameB), nil
}
