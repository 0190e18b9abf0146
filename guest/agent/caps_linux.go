package agent

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// forkWithCaps runs fork on a fresh OS thread whose capability bounding
// set holds only keep, so the child (root or not) can never gain more. The
// bounding set is per thread and cannot grow back; so the thread is
// thrown away afterwards, by ending its goroutine while still locked.
func forkWithCaps(keep capSet, ns *netNS, fork func() (int, error)) (int, error) {
	type result struct {
		pid int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		// The child is born in the thread's network namespace.
		if err := ns.enter(); err != nil {
			ch <- result{err: err}
			return
		}
		if err := limitThreadCaps(keep); err != nil {
			ch <- result{err: err}
			return
		}
		pid, err := fork()
		ch <- result{pid, err}
	}()
	r := <-ch
	return r.pid, r.err
}

// limitThreadCaps drops from this thread's bounding set every capability
// outside keep, and empties its inheritable and ambient sets, which could
// otherwise carry capabilities across exec. Its own effective set is
// untouched: it still needs them to chroot and switch user.
func limitThreadCaps(keep capSet) error {
	for c := 0; c < 64; c++ {
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err != nil {
			break // past the kernel's last capability
		}
		if keep.has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear inheritable capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	return nil
}
