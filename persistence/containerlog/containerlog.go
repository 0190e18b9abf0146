// Package containerlog is the on-host format of a container's output: one
// JSON object per line, as Docker's json-file driver writes it, so the file
// is readable by the same tools. The daemon owns these files; they are never
// read from inside a guest.
package containerlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// Entry is one line of a container log.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"` // "stdout" or "stderr"
	Time   time.Time `json:"time"`
}

// StreamName maps Docker's stream numbers to json-file's names.
func StreamName(stream int) string {
	if stream == 2 {
		return "stderr"
	}
	return "stdout"
}

// StreamNumber is StreamName's inverse.
func StreamNumber(name string) int {
	if name == "stderr" {
		return 2
	}
	return 1
}

// Writer appends entries to a log file. It is not safe for concurrent use:
// a container has exactly one writer, its output pump.
type Writer struct {
	f    *os.File
	size int64
	buf  []byte
}

// OpenWriter opens path for appending, creating it if needed.
func OpenWriter(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat container log: %w", err)
	}
	return &Writer{f: f, size: st.Size()}, nil
}

// Size is the file's size after the last Write: the offset from which a
// follower continues.
func (w *Writer) Size() int64 { return w.size }

// Write appends data as one entry per line (a trailing partial line is an
// entry of its own, as json-file does).
func (w *Writer) Write(stream int, data []byte, t time.Time) error {
	w.buf = w.buf[:0]
	name := StreamName(stream)
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		data = data[len(line):]
		b, err := json.Marshal(Entry{Log: string(line), Stream: name, Time: t.UTC()})
		if err != nil {
			return fmt.Errorf("encode log entry: %w", err)
		}
		w.buf = append(append(w.buf, b...), '\n')
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write container log: %w", err)
	}
	return nil
}

func (w *Writer) Close() error { return w.f.Close() }

// Filter selects entries for reading.
type Filter struct {
	Stdout, Stderr bool
	Since, Until   time.Time // zero: unbounded
	Tail           int       // < 0: all
}

func (f Filter) keep(e *Entry) bool {
	if e.Stream == "stderr" && !f.Stderr || e.Stream != "stderr" && !f.Stdout {
		return false
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && e.Time.After(f.Until) {
		return false
	}
	return true
}

// Read calls fn for each entry of path up to byte offset limit (< 0: the
// whole file) that passes the filter, in order. Tail keeps only the last N.
func Read(path string, limit int64, f Filter, fn func(Entry) error) error {
	file, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	defer file.Close()
	var r io.Reader = file
	if limit >= 0 {
		r = io.LimitReader(file, limit)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ring []Entry // only for Tail
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue // a torn last line after a crash: skip it
		}
		if !f.keep(&e) {
			continue
		}
		if f.Tail >= 0 {
			if f.Tail == 0 {
				continue
			}
			if len(ring) == f.Tail {
				ring = ring[1:]
			}
			ring = append(ring, e)
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read container log: %w", err)
	}
	for _, e := range ring {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}
