package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Top lists the container's processes like `ps psArgs` would ("" gives
// docker top's default, `-ef`). Unsupported arguments match ErrInvalid.
func (c *Client) Top(ctx context.Context, psArgs string) (TopResult, error) {
	resp, err := c.call(ctx, request{Op: opTop, PsArgs: psArgs})
	if err != nil {
		return TopResult{}, fmt.Errorf("list processes: %w", err)
	}
	if resp.Top == nil {
		return TopResult{}, errors.New("list processes: agent sent no list")
	}
	return *resp.Top, nil
}

// Usage measures the container's writable layer (docker ps -s).
func (c *Client) Usage(ctx context.Context) (DiskUsage, error) {
	resp, err := c.call(ctx, request{Op: opUsage})
	if err != nil {
		return DiskUsage{}, fmt.Errorf("container disk usage: %w", err)
	}
	if resp.Usage == nil {
		return DiskUsage{}, errors.New("container disk usage: agent sent none")
	}
	return *resp.Usage, nil
}

// Stats takes one sample of the container's resource use.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	resp, err := c.call(ctx, request{Op: opStats})
	if err != nil {
		return Stats{}, fmt.Errorf("container stats: %w", err)
	}
	if resp.Stats == nil {
		return Stats{}, errors.New("container stats: agent sent none")
	}
	return *resp.Stats, nil
}

// Pause freezes every process of the container; it returns once they are
// frozen. The agent keeps answering; starting a process while paused
// fails with ErrConflict, and signals are delivered on Resume.
func (c *Client) Pause(ctx context.Context) error {
	if _, err := c.call(ctx, request{Op: opPause}); err != nil {
		return fmt.Errorf("pause container: %w", err)
	}
	return nil
}

// ConfigureNetwork replaces the machine's network configuration with cfg.
func (c *Client) ConfigureNetwork(ctx context.Context, cfg NetworkConfig) error {
	if _, err := c.call(ctx, request{Op: opNetwork, Network: &cfg}); err != nil {
		return fmt.Errorf("configure network: %w", err)
	}
	return nil
}

// Resume thaws what Pause froze.
func (c *Client) Resume(ctx context.Context) error {
	if _, err := c.call(ctx, request{Op: opResume}); err != nil {
		return fmt.Errorf("resume container: %w", err)
	}
	return nil
}

// ArchiveStat describes path in the container as Docker's
// X-Docker-Container-Path-Stat header does; a missing path matches
// ErrNotFound. A final symlink is not followed (LinkTarget says where it
// leads) unless path ends in "/" or "/.".
func (c *Client) ArchiveStat(ctx context.Context, path string) (PathStat, error) {
	resp, err := c.call(ctx, request{Op: opArchiveStat, Path: path})
	if err != nil {
		return PathStat{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if resp.Stat == nil {
		return PathStat{}, fmt.Errorf("stat %s: agent sent no stat", path)
	}
	return *resp.Stat, nil
}

// ArchiveGet returns path in the container as a tar stream, with Docker's
// rules: a file or symlink is one entry named after path's base; a
// directory is that name and everything below it, and "dir/." names the
// entries "./...", so that the client copies the contents. ctx bounds only
// the start; closing the reader early abandons the rest. A failure halfway
// is an error from Read, never a silently short archive.
func (c *Client) ArchiveGet(ctx context.Context, path string) (io.ReadCloser, PathStat, error) {
	st, err := c.open(ctx)
	if err != nil {
		return nil, PathStat{}, fmt.Errorf("archive %s: %w", path, err)
	}
	resp, err := roundTrip(ctx, st, request{Op: opArchiveGet, Path: path})
	if err == nil && resp.Stat == nil {
		err = errors.New("agent sent no stat")
	}
	if err != nil {
		st.Close()
		return nil, PathStat{}, fmt.Errorf("archive %s: %w", path, err)
	}
	return &archiveReader{st: st, cr: chunkReader{r: st}}, *resp.Stat, nil
}

// Export returns the container's filesystem (ExportRootfs, as docker
// export) or its writable layer as an image layer with OCI whiteouts
// (ExportLayer, for docker commit) as a tar stream. As with ArchiveGet,
// ctx bounds only the start and a failure halfway is an error from Read.
func (c *Client) Export(ctx context.Context, what ExportKind) (io.ReadCloser, error) {
	st, err := c.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", what, err)
	}
	if _, err := roundTrip(ctx, st, request{Op: opExport, Export: what}); err != nil {
		st.Close()
		return nil, fmt.Errorf("export %s: %w", what, err)
	}
	return &archiveReader{st: st, cr: chunkReader{r: st}}, nil
}

// Changes lists the paths of the container's rootfs that differ from its
// image, in the agent's order.
func (c *Client) Changes(ctx context.Context) ([]Change, error) {
	st, err := c.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("container changes: %w", err)
	}
	if _, err := roundTrip(ctx, st, request{Op: opChanges}); err != nil {
		st.Close()
		return nil, fmt.Errorf("container changes: %w", err)
	}
	// The list is read under the same deadline; what is left after a
	// failure is drained, since a stream cannot be reset.
	rd := &archiveReader{st: st, cr: chunkReader{r: st}}
	defer rd.Close()
	stop := context.AfterFunc(ctx, func() { st.SetReadDeadline(time.Now()) })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		st.SetReadDeadline(d)
	}
	dec := json.NewDecoder(rd)
	var out []Change
	for {
		var ch Change
		if err := dec.Decode(&ch); err == io.EOF {
			return out, nil
		} else if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				err = cerr
			}
			return nil, fmt.Errorf("container changes: %w", err)
		}
		out = append(out, ch)
	}
}

type archiveReader struct {
	st   net.Conn
	cr   chunkReader
	once sync.Once
}

func (a *archiveReader) Read(b []byte) (int, error) {
	n, err := a.cr.Read(b)
	if err != nil {
		a.once.Do(func() { a.st.Close() })
	}
	return n, err
}

// Close abandons what is left: it is read and dropped in the background,
// since a stream cannot be reset and the agent must not block on it.
func (a *archiveReader) Close() error {
	a.once.Do(func() {
		a.st.Close()
		go io.Copy(io.Discard, a.st)
	})
	return nil
}

// ArchivePut extracts the tar archive into dir, an existing directory in
// the container; a missing one matches ErrNotFound and nothing is sent.
// Entries cannot land outside the container, whatever their names, links
// or the symlinks they meet.
func (c *Client) ArchivePut(ctx context.Context, dir string, tar io.Reader, opts ArchivePutOptions) error {
	st, err := c.open(ctx)
	if err != nil {
		return fmt.Errorf("extract to %s: %w", dir, err)
	}
	defer st.Close()
	if _, err := roundTrip(ctx, st, request{Op: opArchivePut, Path: dir, Put: &opts}); err != nil {
		return fmt.Errorf("extract to %s: %w", dir, err)
	}
	// The agent may answer before it has read everything (it failed):
	// then stop sending.
	stop := context.AfterFunc(ctx, func() { st.SetDeadline(time.Now()) })
	defer stop()
	final := make(chan error, 1)
	go func() {
		var resp response
		if err := readFrame(st, &resp); err != nil {
			final <- sessionError(err)
			return
		}
		final <- resp.err()
		st.SetWriteDeadline(time.Now())
	}()
	_, cerr := io.Copy(st, tar)
	var rerr error
	if cerr == nil {
		st.Close() // half-close: the end of the archive
		rerr = <-final
	} else {
		select {
		case rerr = <-final: // the agent's answer explains the failed write
		case <-time.After(time.Second):
			rerr = cerr
		}
	}
	if rerr == nil && ctx.Err() != nil {
		rerr = ctx.Err()
	}
	if rerr == nil && cerr != nil {
		rerr = cerr
	}
	if rerr != nil {
		if cerr := ctx.Err(); cerr != nil {
			rerr = cerr
		}
		return fmt.Errorf("extract to %s: %w", dir, rerr)
	}
	return nil
}

// RunCapture runs spec to its end or for at most timeout, keeping the
// first 4 KiB of its output (stdout and stderr together), as a health
// check needs. A process still running at the timeout is killed and
// reported with exit code -1 and context.DeadlineExceeded.
func (c *Client) RunCapture(ctx context.Context, spec ProcessSpec, timeout time.Duration) (int, string, error) {
	spec.Stdin = false
	p, err := c.Start(ctx, spec)
	if err != nil {
		return -1, "", err
	}
	out := &capBuffer{max: 4096}
	var wg sync.WaitGroup
	for _, r := range []io.Reader{p.Stdout, p.Stderr} {
		if r != nil {
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(out, r) }()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		st, err := p.Wait()
		if err != nil {
			return -1, out.String(), err
		}
		return st.Code, out.String(), nil
	case <-timer.C:
	case <-ctx.Done():
	}
	kctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c.Signal(kctx, spec.ID, 9)
	cancel()
	p.Close()
	if err := ctx.Err(); err != nil {
		return -1, out.String(), err
	}
	return -1, out.String(), fmt.Errorf("run %s: %w after %v", spec.ID, context.DeadlineExceeded, timeout)
}

// capBuffer keeps the first max bytes written and discards the rest.
type capBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
