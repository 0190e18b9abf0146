package agent

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// The main goroutine keeps the main thread to itself. Threads are moved
// into the container's namespace and thrown away; Go cannot end the main
// thread, only park it where it is, and the host finds the machine's
// namespace by the agent's pid, which is the main thread's (the sandbox
// moves the underlay link there). So no goroutine but main may ever run
// on it.
func init() { runtime.LockOSThread() }

// netNS is the network namespace the container's processes live in. It
// holds loopback and the WireGuard interfaces and nothing else: the
// machine's own link to the underlay, and the sockets WireGuard sends its
// packets on, stay in the agent's namespace, out of the container's
// sight and reach.
type netNS struct {
	fd int
}

// newNetNS creates the namespace on a thread of its own, which is then
// thrown away, and brings its loopback up.
func newNetNS() (*netNS, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("container network namespace: %w", err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: fmt.Errorf("container network namespace: %w", err)}
			return
		}
		if err := loopbackUp(); err != nil {
			unix.Close(fd)
			ch <- result{err: fmt.Errorf("container loopback: %w", err)}
			return
		}
		ch <- result{fd: fd}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return &netNS{fd: r.fd}, nil
}

// do runs fn on a thread inside the namespace: sockets, TUN devices and
// sysfs mounts made there belong to it. The thread is thrown away after,
// so no goroutine of the agent ever runs in the wrong namespace. A nil
// netNS (the kernel refused one) runs fn where the agent is.
func (ns *netNS) do(fn func() error) error {
	if ns == nil {
		return fn()
	}
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		if err := ns.enter(); err != nil {
			ch <- err
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// enter moves the calling thread, which must be locked and must never be
// unlocked, into the namespace.
func (ns *netNS) enter() error {
	if ns == nil {
		return nil
	}
	if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter container network namespace: %w", err)
	}
	return nil
}

func (ns *netNS) close() {
	if ns != nil {
		unix.Close(ns.fd)
	}
}
