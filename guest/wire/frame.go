package wire

import (
	"encoding/binary"
	"encoding/json"
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
	Op      op            `json:"op"`
	Version int           `json:"version,omitempty"`
	ID      string        `json:"id,omitempty"`
	Stream  string        `json:"stream,omitempty"`
	Setup   *SetupRequest `json:"setup,omitempty"`
	Process *ProcessSpec  `json:"process,omitempty"`
	Signal  int           `json:"signal,omitempty"`
	Size    *WindowSize   `json:"size,omitempty"`
}

// response answers a request; a start stream gets a second one carrying
// the exit status.
type response struct {
	Error   string      `json:"error,omitempty"`
	Kind    Kind        `json:"kind,omitempty"`
	Version int         `json:"version,omitempty"`
	Pid     int         `json:"pid,omitempty"`
	Exit    *ExitStatus `json:"exit,omitempty"`
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
