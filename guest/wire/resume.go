package wire

import (
	"errors"
	"fmt"
	"io"
)

// A machine restored from a template (a snapshot of a booted guest, see
// docs/qemu.md) resumes where the template stopped: its agent waiting on
// the stream, before the session, for the host's Resume. The handshake is
// two frames outside the session: the template's agent writes a ready
// frame (the host snapshots it once it has read it), and each restored
// machine's host writes a Resume, which the agent reads before the
// session's first byte.

// Resume is what a restored machine must not share with its template or
// its siblings.
type Resume struct {
	// UnixNano is the host's clock: the guest's is the template's.
	UnixNano int64 `json:"unixNano"`
	// Seed is fresh randomness for the guest kernel: its random state is
	// the template's, the same in every machine restored from it.
	Seed []byte `json:"seed"`
	// TemplateMAC is the address the template's network card had, which
	// the restored card still reports: the agent gives that card the
	// address the host later configures it with.
	TemplateMAC string `json:"templateMAC,omitempty"`
}

// minSeed is the least randomness a Resume carries, in bytes: what the
// kernel's generator needs to be fully seeded.
const minSeed = 32

type readyFrame struct {
	Ready bool `json:"ready"`
}

// AwaitResume is the agent's half: it tells the host it is ready to be
// snapshotted, then waits for the Resume of the machine it has become.
func AwaitResume(rw io.ReadWriter) (Resume, error) {
	if err := writeFrame(rw, readyFrame{Ready: true}); err != nil {
		return Resume{}, fmt.Errorf("template ready: %w", err)
	}
	var r Resume
	if err := readFrame(rw, &r); err != nil {
		return Resume{}, fmt.Errorf("await resume: %w", err)
	}
	if len(r.Seed) < minSeed {
		return Resume{}, fmt.Errorf("await resume: %d bytes of seed, want %d", len(r.Seed), minSeed)
	}
	return r, nil
}

// ReadReady is the template host's half: it returns once the agent waits
// for its Resume, when the guest can be snapshotted.
func ReadReady(r io.Reader) error {
	var f readyFrame
	if err := readFrame(r, &f); err != nil {
		return fmt.Errorf("template ready: %w", err)
	}
	if !f.Ready {
		return errors.New("template ready: the agent sent no ready frame")
	}
	return nil
}

// WriteResume is a restored machine's host's half, written before the
// session starts on the same stream.
func WriteResume(w io.Writer, r Resume) error {
	if len(r.Seed) < minSeed {
		return fmt.Errorf("resume: %d bytes of seed, want %d", len(r.Seed), minSeed)
	}
	if err := writeFrame(w, r); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	return nil
}
