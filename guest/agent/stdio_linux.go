package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// procIO is a process's side of its stdio as the agent holds it: the
// descriptors the child gets, and the agent's ends that feed the host's
// streams.
type procIO struct {
	child   [3]int     // the child's stdin, stdout, stderr
	outputs []*os.File // agent ends to copy to the host, stdout first
	stdin   *os.File   // agent end that receives the host's stdin; nil if none
	tty     *os.File   // pty master; nil without a tty
}

// newPipeIO connects a process through pipes. Without attached stdin the
// child reads /dev/null. The agent's ends are non-blocking so Go's poller
// can interrupt them; the child's ends stay blocking, as programs expect.
func newPipeIO(r *rootDir, withStdin bool) (*procIO, error) {
	p := &procIO{child: [3]int{-1, -1, -1}}
	var err error
	if withStdin {
		p.child[0], p.stdin, err = pipe(false)
	} else {
		p.child[0], err = r.open("/dev/null", unix.O_RDONLY, 0)
		if err != nil {
			// A container that broke its /dev still gets an empty stdin.
			var w *os.File
			p.child[0], w, err = pipe(false)
			if w != nil {
				w.Close()
			}
		}
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("stdin: %w", err)
	}
	for i := 1; i <= 2; i++ {
		var out *os.File
		p.child[i], out, err = pipe(true)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("stdout/stderr: %w", err)
		}
		p.outputs = append(p.outputs, out)
	}
	return p, nil
}

// pipe returns the child's end as a raw blocking descriptor and the
// agent's end as a pollable file; childWrites says which way data flows.
func pipe(childWrites bool) (int, *os.File, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return -1, nil, fmt.Errorf("pipe: %w", err)
	}
	child, agent := fds[0], fds[1]
	if childWrites {
		child, agent = fds[1], fds[0]
	}
	if err := unix.SetNonblock(agent, true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return -1, nil, fmt.Errorf("pipe: %w", err)
	}
	return child, os.NewFile(uintptr(agent), "pipe"), nil
}

// newTtyIO allocates a pty from the container's devpts instance, so the
// process sees its terminal as /dev/pts/N, owned by uid.
func newTtyIO(r *rootDir, uid uint32, size wire.WindowSize) (*procIO, error) {
	mfd, err := r.open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open pty master: %w", err)
	}
	master := os.NewFile(uintptr(mfd), "ptmx")
	fail := func(what string, err error) (*procIO, error) {
		master.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return fail("unlock pty", err)
	}
	// TIOCGPTPEER opens the peer through the master itself, not by a path
	// the container could have tampered with.
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return fail("open pty slave", errno)
	}
	slave := int(sfd)
	if err := unix.Fchown(slave, int(uid), -1); err != nil {
		unix.Close(slave)
		return fail("chown pty", err)
	}
	if size.Height > 0 && size.Width > 0 {
		if err := setWinsize(mfd, size); err != nil {
			unix.Close(slave)
			return fail("size pty", err)
		}
	}
	dup := func() int {
		fd, err := unix.FcntlInt(uintptr(slave), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return -1
		}
		return fd
	}
	p := &procIO{child: [3]int{slave, dup(), dup()}, outputs: []*os.File{master}, tty: master}
	if p.child[1] < 0 || p.child[2] < 0 {
		p.close()
		return nil, fmt.Errorf("dup pty slave: out of descriptors")
	}
	return p, nil
}

func setWinsize(fd int, size wire.WindowSize) error {
	return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: size.Height, Col: size.Width})
}

// closeChild closes the agent's copies of the child's descriptors, so
// that the outputs reach EOF when the process (and its children) are gone.
func (p *procIO) closeChild() {
	seen := map[int]bool{}
	for i, fd := range p.child {
		if fd >= 0 && !seen[fd] {
			unix.Close(fd)
			seen[fd] = true
		}
		p.child[i] = -1
	}
}

func (p *procIO) close() {
	p.closeChild()
	for _, f := range p.outputs {
		f.Close()
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
}

// copyOutput copies src to dst until EOF and closes dst. If the host stops
// taking output (its stream closed) the rest is drained and dropped, so the
// process never blocks on it. A read deadline on src (see procIO.finish)
// ends the copy after a last pass over what is buffered.
func copyOutput(dst io.WriteCloser, src *os.File) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				dst.Close()
				dst = discard{}
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				drainBuffered(dst, src, buf)
			}
			// EOF, or EIO from a pty master whose terminal has closed.
			return
		}
	}
}

// drainBuffered copies what src holds right now, without waiting for more.
func drainBuffered(dst io.Writer, src *os.File, buf []byte) {
	src.SetReadDeadline(time.Time{})
	rc, err := src.SyscallConn()
	if err != nil {
		return
	}
	var avail int
	// TIOCINQ is FIONREAD: bytes ready to read, in a pipe or a pty.
	rc.Control(func(fd uintptr) { avail, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	for avail > 0 {
		var n int
		var rerr error
		rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf[:min(avail, len(buf))])
			return true // never wait
		})
		if n <= 0 || rerr != nil {
			return
		}
		dst.Write(buf[:n])
		avail -= n
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) Close() error                { return nil }

// copyStdin feeds the host's stdin to the process; EOF closes the pipe so
// the process sees EOF too. On a tty there is nothing to close: the
// terminal stays, as with docker run -t.
func copyStdin(dst *os.File, src io.ReadCloser, isTty bool) {
	defer src.Close()
	io.Copy(dst, src)
	if !isTty {
		dst.Close()
	}
}

// outputDone waits for the copies, giving up on output after grace when
// grace > 0: a background child of an exec may hold the pipes open
// forever, and its exec must still end.
func outputDone(wg *sync.WaitGroup, outputs []*os.File, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	if grace <= 0 {
		<-done
		return
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	for _, f := range outputs {
		f.SetReadDeadline(time.Now())
	}
	<-done
}

// errnoOf digs the errno out of a fork/exec error.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}
