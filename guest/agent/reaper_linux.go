package agent

import (
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// reaper is the one place that waits for children. As PID 1 the agent
// inherits every orphan and must reap them all, yet a wait4(-1) loop
// would steal the status of the processes it started; so it collects
// everything and hands each status to whoever registered that pid.
//
// Nothing else in the agent may wait for children (no exec.Cmd.Wait).
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	stop    chan struct{}
	sigs    chan os.Signal
}

func newReaper() *reaper {
	r := &reaper{
		waiters: map[int]chan unix.WaitStatus{},
		stop:    make(chan struct{}),
		sigs:    make(chan os.Signal, 1),
	}
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.run()
	return r
}

func (r *reaper) close() {
	signal.Stop(r.sigs)
	close(r.stop)
}

// start runs fork and registers the child it returns before the reaper can
// see it exit: the reaper waits on the same lock.
func (r *reaper) start(fork func() (int, error)) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := fork()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiters[pid] = ch
	return pid, ch, nil
}

func (r *reaper) run() {
	for {
		select {
		case <-r.sigs:
			r.reap()
		case <-r.stop:
			return
		}
	}
}

// reap collects every exited child; a signal may stand for several.
func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		}
	}
}

// exitStatus reports a wait status as Docker does: 128+N for signal N.
func exitStatus(ws unix.WaitStatus) (code, sig int) {
	switch {
	case ws.Exited():
		return ws.ExitStatus(), 0
	case ws.Signaled():
		return 128 + int(ws.Signal()), int(ws.Signal())
	}
	return 255, 0
}
