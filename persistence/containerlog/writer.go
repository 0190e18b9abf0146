package containerlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// FileName is the log file's name in a container's directory, as dockerd
// names it (<id>-json.log); rotated files add .1, .2, ... (.1.gz with
// compress), .1 being the newest.
func FileName(id string) string { return id + "-json.log" }

// rotated is the name of the i-th rotated file of path.
func rotated(path string, i int, gz bool) string {
	p := path + "." + strconv.Itoa(i)
	if gz {
		p += ".gz"
	}
	return p
}

// bufSize bounds what a Writer holds in memory before writing it out.
const bufSize = 64 << 10

// Writer appends entries to a log file and rotates it as dockerd's
// json-file driver does: before an entry is written, a file that has
// reached MaxSize becomes .1 (older ones shift up, the oldest beyond
// MaxFiles goes) and a new file starts. A file thus exceeds MaxSize by at
// most one entry. Writes are buffered: Flush, Snapshot and Close write them
// out. It is not safe for concurrent use: its owner serialises calls.
type Writer struct {
	path string
	opts Options
	f    *os.File
	bw   *bufio.Writer
	size int64 // of the current file, buffered bytes included
	last time.Time
	// compressed is closed when the last rotation's compression is done;
	// the next rotation waits for it, so names never shift under it.
	compressed chan struct{}
}

// OpenWriter opens path for appending, creating it if needed.
func OpenWriter(path string, opts Options) (*Writer, error) {
	if opts.MaxFiles < 1 {
		opts.MaxFiles = 1
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat container log: %w", err)
	}
	return &Writer{path: path, opts: opts, f: f, bw: bufio.NewWriterSize(f, bufSize), size: st.Size()}, nil
}

// Path is the file being written.
func (w *Writer) Path() string { return w.path }

// Write appends data as one entry per line, stamped t.
func (w *Writer) Write(stream int, data []byte, t time.Time) error {
	return w.WriteEncoded(AppendEntries(nil, stream, data, t), t)
}

// WriteEncoded appends lines made by AppendEntries (so its owner can encode
// outside its lock), rotating between entries as needed. t is the time of
// the last entry, kept in a compressed file's header as dockerd does.
func (w *Writer) WriteEncoded(lines []byte, t time.Time) error {
	w.last = t
	for len(lines) > 0 {
		if w.opts.MaxSize > 0 && w.size >= w.opts.MaxSize {
			if err := w.rotate(); err != nil {
				return err
			}
		}
		chunk := lines
		if w.opts.MaxSize > 0 {
			// Up to the entry that reaches MaxSize; the rest waits for the
			// rotation the next turn makes.
			if room := int(w.opts.MaxSize - w.size); len(lines) > room {
				if end := bytes.IndexByte(lines[room-1:], '\n'); end >= 0 {
					chunk = lines[:room+end]
				}
			}
		}
		n, err := w.bw.Write(chunk)
		w.size += int64(n)
		if err != nil {
			w.dropBuffer()
			return fmt.Errorf("write container log: %w", err)
		}
		lines = lines[len(chunk):]
	}
	return nil
}

// Flush writes buffered entries to the file.
func (w *Writer) Flush() error {
	if err := w.bw.Flush(); err != nil {
		w.dropBuffer()
		return fmt.Errorf("write container log: %w", err)
	}
	return nil
}

// dropBuffer forgets what a failed write left buffered: a bufio.Writer
// keeps failing after one error, and a disk that was full and has room
// again should get the output that comes next.
func (w *Writer) dropBuffer() {
	w.bw.Reset(w.f)
	if st, err := w.f.Stat(); err == nil {
		w.size = st.Size()
	}
}

// Buffered reports whether entries wait for a Flush.
func (w *Writer) Buffered() bool { return w.bw.Buffered() > 0 }

func (w *Writer) rotate() error {
	if err := w.Flush(); err != nil {
		return err
	}
	if w.compressed != nil {
		<-w.compressed
		w.compressed = nil
	}
	w.f.Close()
	// Readers holding the old file open keep reading it: it is renamed or
	// unlinked, never truncated.
	if w.opts.MaxFiles < 2 {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate container log: %w", err)
		}
	} else {
		gz := w.opts.Compress
		if err := os.Remove(rotated(w.path, w.opts.MaxFiles-1, gz)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate container log: %w", err)
		}
		for i := w.opts.MaxFiles - 1; i > 1; i-- {
			if err := os.Rename(rotated(w.path, i-1, gz), rotated(w.path, i, gz)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("rotate container log: %w", err)
			}
		}
		if err := os.Rename(w.path, rotated(w.path, 1, false)); err != nil {
			return fmt.Errorf("rotate container log: %w", err)
		}
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	w.f = f
	w.bw.Reset(f)
	w.size = 0
	if w.opts.Compress && w.opts.MaxFiles >= 2 {
		done := make(chan struct{})
		w.compressed = done
		go func(name string, last time.Time) {
			defer close(done)
			_ = compressFile(name, last) // on failure the plain .1 stays, still read
		}(rotated(w.path, 1, false), w.last)
	}
	return nil
}

// gzipMeta is dockerd's gzip header extra of a compressed log file.
type gzipMeta struct {
	LastTime time.Time `json:"lastTime,omitempty"`
}

// compressFile writes name.gz and then removes name, so a reader finds a
// complete copy under one of the two names at every moment.
func compressFile(name string, last time.Time) (err error) {
	in, err := os.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(name), ".compress-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := gzip.NewWriter(tmp)
	zw.Header.Extra, _ = json.Marshal(gzipMeta{LastTime: last})
	if _, err = io.Copy(zw, in); err != nil {
		return err
	}
	if err = zw.Close(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Chmod(tmp.Name(), 0o640); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), name+".gz"); err != nil {
		return err
	}
	return os.Remove(name)
}

// Snapshot flushes and opens every file of the log, so that what it reads
// is exactly what was written until now, however the files rotate after.
func (w *Writer) Snapshot() (*Snapshot, error) {
	if err := w.Flush(); err != nil {
		return nil, err
	}
	return openSnapshot(w.path, w.opts.MaxFiles, w.size)
}

// Close flushes, waits for a compression under way and closes the file.
func (w *Writer) Close() error {
	err := w.Flush()
	if w.compressed != nil {
		<-w.compressed
		w.compressed = nil
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}
