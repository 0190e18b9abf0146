package registry

import (
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
)

// Docker's words for the stages of one layer, which clients match on.
const (
	statusPullingFS    = "Pulling fs layer"
	statusWaiting      = "Waiting"
	statusDownloading  = "Downloading"
	statusVerifying    = "Verifying Checksum"
	statusDownloaded   = "Download complete"
	statusExtracting   = "Extracting"
	statusPullComplete = "Pull complete"
	statusExists       = "Already exists"
)

// progressInterval keeps a fast download from flooding the client: about ten
// updates a second per layer, as dockerd sends.
const progressInterval = 100 * time.Millisecond

// reporter hands progress to the caller one message at a time, though layers
// download in parallel.
type reporter struct {
	mu sync.Mutex
	fn func(jsonstream.Message)
}

func (r *reporter) send(m jsonstream.Message) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn(m)
}

// layer reports a stage with no counts; dockerd sends an empty
// progressDetail with those, and so do we.
func (r *reporter) layer(id, status string) {
	r.send(jsonstream.Message{ID: id, Status: status, Progress: &jsonstream.Progress{}})
}

func (r *reporter) counts(id, status string, current, total int64) {
	r.send(jsonstream.Message{ID: id, Status: status, Progress: &jsonstream.Progress{Current: current, Total: total}})
}

// progressReader reports bytes read through it as status messages, at most
// once per progressInterval, and calls atEOF once when the source is drained.
type progressReader struct {
	r       io.Reader
	rep     *reporter
	id      string
	status  string
	total   int64
	current int64
	last    time.Time
	atEOF   func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.current += int64(n)
	if n > 0 {
		if now := time.Now(); now.Sub(p.last) >= progressInterval {
			p.last = now
			p.rep.counts(p.id, p.status, p.current, p.total)
		}
	}
	if err == io.EOF && p.atEOF != nil {
		p.atEOF()
		p.atEOF = nil
	}
	return n, err
}
