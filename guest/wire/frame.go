package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/yamux"
)

// A frame is a 4-byte big-endian length and that many bytes of JSON. The
// length prefix (rather than a streaming decoder) guarantees that reading a
// header never consumes the raw bytes that follow it on the same stream.
const maxFrame = 1 << 20

type op string

const (
	opPing     op = "ping"
	opSetup    op = "setup"
	opStart    op = "start"
	opStdio    op = "stdio"
	opSignal   op = "signal"
	opResize   op = "resize"
	opShutdown op = "shutdown"
	opTop      op = "top"
	opStats    op = "stats"
	// opUsage measures the container's writable layer.
	opUsage  op = "usage"
	opPause  op = "pause"
	opResume op = "resume"
	// opNetwork replaces the machine's whole network configuration.
	opNetwork op = "network"
	// opDial connects to a port in the machine; the stream then carries
	// the connection (see dial.go).
	opDial op = "dial"
	// Archive ops: archiveGet's response is followed by the raw tar;
	// archivePut's first response (ready or an error) is followed by the
	// host's raw tar up to its half-close, then a second response.
	opArchiveStat op = "archiveStat"
	opArchiveGet  op = "archiveGet"
	opArchivePut  op = "archivePut"
	// opChanges lists how the rootfs differs from the image; the list
	// follows the response in chunks, as archiveGet's tar does.
	opChanges op = "changes"
	// opExport sends the container's filesystem, or its writable layer
	// as an image layer, as a tar in chunks after the response.
	opExport op = "export"
)

// Names of a process's stdio streams.
const (
	streamStdin  = "stdin"
	streamStdout = "stdout"
	streamStderr = "stderr"
)

// request is the first frame on every stream the host opens; only the
// fields of its op are set.
type request struct {
	Op      op                 `json:"op"`
	Version int                `json:"version,omitempty"`
	ID      string             `json:"id,omitempty"`
	Stream  string             `json:"stream,omitempty"`
	Setup   *SetupRequest      `json:"setup,omitempty"`
	Process *ProcessSpec       `json:"process,omitempty"`
	Signal  int                `json:"signal,omitempty"`
	Size    *WindowSize        `json:"size,omitempty"`
	PsArgs  string             `json:"psArgs,omitempty"`
	Path    string             `json:"path,omitempty"`
	Put     *ArchivePutOptions `json:"put,omitempty"`
	Network *NetworkConfig     `json:"network,omitempty"`
	Proto   string             `json:"proto,omitempty"`
	Port    int                `json:"port,omitempty"`
	Export  ExportKind         `json:"export,omitempty"`
}

// response answers a request; a start stream gets a second one carrying
// the exit status.
type response struct {
	Error   string      `json:"error,omitempty"`
	Kind    Kind        `json:"kind,omitempty"`
	Version int         `json:"version,omitempty"`
	Pid     int         `json:"pid,omitempty"`
	Exit    *ExitStatus `json:"exit,omitempty"`
	Top     *TopResult  `json:"top,omitempty"`
	Stats   *Stats      `json:"stats,omitempty"`
	Usage   *DiskUsage  `json:"usage,omitempty"`
	Stat    *PathStat   `json:"stat,omitempty"`
}

func (r *response) err() error {
	if r.Error == "" {
		return nil
	}
	return &Error{Kind: r.Kind, Msg: r.Error}
}

func errorResponse(err error) response {
	return response{Error: err.Error(), Kind: KindOf(err)}
}

func writeFrame(w io.Writer, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	if len(body) > maxFrame {
		return fmt.Errorf("encode frame: %d bytes exceeds the %d byte limit", len(body), maxFrame)
	}
	// One write, so a frame is never interleaved or half sent on error.
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("read frame: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("read frame: %d bytes exceeds the %d byte limit", n, maxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return fmt.Errorf("read frame: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode frame: %w", err)
	}
	return nil
}

func sessionConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	// No keepalive: a slow guest (qemu without KVM, on a busy host) may
	// miss a ping deadline, and a session closed for that kills the whole
	// container. A dead peer shows as a closed stream anyway: each driver
	// ends the machine with the daemon and the daemon watches its machines.
	cfg.EnableKeepAlive = false
	// The same slowness must not fail writes either; this only bounds a
	// write to a connection nobody drains.
	cfg.ConnectionWriteTimeout = time.Minute
	// A long exec whose stdin is already closed must not be reset, so
	// half-closed streams live as long as the session.
	cfg.StreamCloseTimeout = 0
	return cfg
}

// A tar from the agent travels as chunks: a 4-byte big-endian length and
// that many bytes, ended by a zero length and a response frame.
const chunkSize = 64 << 10

type chunkWriter struct {
	w   io.Writer
	err error
}

func (c *chunkWriter) Write(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n := 0
	for len(b) > 0 {
		part := b[:min(len(b), chunkSize)]
		buf := make([]byte, 4+len(part))
		binary.BigEndian.PutUint32(buf, uint32(len(part)))
		copy(buf[4:], part)
		if _, err := c.w.Write(buf); err != nil {
			c.err = fmt.Errorf("write chunk: %w", err)
			return n, c.err
		}
		n += len(part)
		b = b[len(part):]
	}
	return n, nil
}

// chunkReader undoes chunkWriter; it returns io.EOF after a clean end and
// the agent's error after a failed one.
type chunkReader struct {
	r    io.Reader
	left uint32
	err  error
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.left == 0 {
		var hdr [4]byte
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			c.err = fmt.Errorf("read archive: %w", sessionError(noEOF(err)))
			return 0, c.err
		}
		c.left = binary.BigEndian.Uint32(hdr[:])
		if c.left > chunkSize {
			c.err = fmt.Errorf("read archive: chunk of %d bytes exceeds %d", c.left, chunkSize)
			return 0, c.err
		}
		if c.left == 0 {
			var resp response
			if err := readFrame(c.r, &resp); err != nil {
				c.err = fmt.Errorf("read archive: %w", sessionError(err))
			} else if err := resp.err(); err != nil {
				c.err = fmt.Errorf("read archive: %w", err)
			} else {
				c.err = io.EOF
			}
			return 0, c.err
		}
	}
	if uint32(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.r.Read(b)
	c.left -= uint32(n)
	if err != nil && (c.left > 0 || !errors.Is(err, io.EOF)) {
		c.err = fmt.Errorf("read archive: %w", sessionError(noEOF(err)))
		return n, c.err
	}
	return n, nil
}

// noEOF turns a clean EOF into an unexpected one: inside the chunked
// stream, only the end mark is a clean end.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
