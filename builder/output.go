package builder

import (
	"encoding/json"
	"io"
	"sync"
)

// Output writes dockerd's build progress: JSON lines of stream text, the
// image ID as aux, and an error that ends the build. Quiet keeps only
// the aux (and the ID as text) and the error.
type Output struct {
	mu    sync.Mutex
	enc   *json.Encoder
	flush func() error
	quiet bool
	err   error // the first write error: the client is gone
}

func NewOutput(w io.Writer, flush func() error, quiet bool) *Output {
	return &Output{enc: json.NewEncoder(w), flush: flush, quiet: quiet}
}

type message struct {
	Stream      string       `json:"stream,omitempty"`
	Aux         any          `json:"aux,omitempty"`
	ErrorDetail *errorDetail `json:"errorDetail,omitempty"`
	Error       string       `json:"error,omitempty"`
}

type errorDetail struct {
	Message string `json:"message"`
}

func (o *Output) send(m message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return
	}
	if err := o.enc.Encode(m); err != nil {
		o.err = err
		return
	}
	if o.flush != nil {
		o.err = o.flush()
	}
}

// Stream is progress text, shown unless quiet.
func (o *Output) Stream(s string) {
	if !o.quiet {
		o.send(message{Stream: s})
	}
}

// Aux is the built image's ID; quiet, it is also the one stream line, as
// dockerd sends it and `docker build -q` prints it.
func (o *Output) Aux(id string) {
	o.send(message{Aux: struct{ ID string }{id}})
	if o.quiet {
		o.send(message{Stream: id + "\n"})
	}
}

// Error ends the stream with a failure, as the CLI shows it.
func (o *Output) Error(err error) {
	o.send(message{ErrorDetail: &errorDetail{Message: err.Error()}, Error: err.Error()})
}

// Gone is the write error once the client has gone.
func (o *Output) Gone() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Writer is a RUN step's output as stream text.
func (o *Output) Writer() io.Writer { return streamWriter{o} }

type streamWriter struct{ o *Output }

func (w streamWriter) Write(p []byte) (int, error) {
	w.o.Stream(string(p))
	return len(p), nil
}
