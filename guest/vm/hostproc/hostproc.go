// Package hostproc holds what the drivers share about the host processes
// behind machines (the sandbox's agent, qemu): starting them so that they
// die with the daemon, and reading their logs for error messages.
package hostproc

import (
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
)

// StartOnSteadyThread starts cmd from an OS thread that never exits.
// Pdeathsig fires when the *thread* that forked the child ends, and Go
// retires threads now and then (any goroutine that exits while locked to
// its thread takes the thread with it), which would kill a healthy machine.
func StartOnSteadyThread(cmd *exec.Cmd) error {
	steady.once.Do(func() {
		steady.reqs = make(chan startReq)
		go func() {
			runtime.LockOSThread() // and never unlock: the thread stays
			for r := range steady.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	steady.reqs <- startReq{cmd: cmd, done: done}
	return <-done
}

var steady struct {
	once sync.Once
	reqs chan startReq
}

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

// Tail reads the last n bytes of a file, for error messages.
func Tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}
