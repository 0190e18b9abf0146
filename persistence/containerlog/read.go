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
	"slices"
	"time"
)

// Filter selects entries for reading.
type Filter struct {
	Stdout, Stderr bool
	Since, Until   time.Time // zero: unbounded
	Tail           int       // < 0: all; else the last Tail entries, then filtered
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

// Snapshot is a log's files, opened at one moment: the rotated ones oldest
// first, then the current one up to the size it had. Open descriptors keep
// their data however the writer rotates meanwhile, so reading a snapshot
// needs no lock.
type Snapshot struct {
	parts []part
}

type part struct {
	f    readAtCloser
	size int64 // plain files: bytes to read
	gz   bool
}

type readAtCloser interface {
	io.ReaderAt
	io.Closer
}

// OpenSnapshot opens a log no Writer holds (its whole current file).
func OpenSnapshot(path string, maxFiles int) (*Snapshot, error) {
	return openSnapshot(path, maxFiles, -1)
}

func openSnapshot(path string, maxFiles int, size int64) (*Snapshot, error) {
	s := &Snapshot{}
	add := func(name string, gz bool, size int64) (bool, error) {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("open container log: %w", err)
		}
		if size < 0 {
			st, err := f.Stat()
			if err != nil {
				f.Close()
				return false, fmt.Errorf("stat container log: %w", err)
			}
			size = st.Size()
		}
		s.parts = append(s.parts, part{f: f, size: size, gz: gz})
		return true, nil
	}
	for i := maxFiles - 1; i >= 1; i-- {
		// The plain name first: a compression under way removes it only
		// once the .gz is complete.
		ok, err := add(rotated(path, i, false), false, -1)
		if err == nil && !ok {
			_, err = add(rotated(path, i, true), true, -1)
		}
		if err != nil {
			s.Close()
			return nil, err
		}
	}
	if _, err := add(path, false, size); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the snapshot's files.
func (s *Snapshot) Close() error {
	if s == nil {
		return nil
	}
	for _, p := range s.parts {
		p.f.Close()
	}
	s.parts = nil
	return nil
}

// Read calls fn for each entry that passes the filter, oldest first. A Tail
// picks the last Tail entries before the filter applies, as dockerd does;
// it reads the files backwards from their end and stops once it has them,
// so the cost follows Tail, not the log's size. Lines that
// do not decode (a torn last line after a crash) are skipped.
func (s *Snapshot) Read(f Filter, fn func(Entry) error) error {
	if s == nil || f.Tail == 0 {
		return nil
	}
	if f.Tail < 0 {
		for _, p := range s.parts {
			if err := p.forward(f, fn); err != nil {
				return err
			}
		}
		return nil
	}
	// As dockerd: the last Tail entries, then the filter on them.
	every := Filter{Stdout: true, Stderr: true}
	var rev []Entry // newest first
	for i := len(s.parts) - 1; i >= 0 && len(rev) < f.Tail; i-- {
		p := s.parts[i]
		var err error
		if p.gz {
			err = p.tailForward(every, f.Tail, &rev)
		} else {
			err = p.backward(every, f.Tail, &rev)
		}
		if err != nil {
			return err
		}
	}
	for i := len(rev) - 1; i >= 0; i-- {
		if !f.keep(&rev[i]) {
			continue
		}
		if err := fn(rev[i]); err != nil {
			return err
		}
	}
	return nil
}

func (p part) reader() (io.Reader, func(), error) {
	if !p.gz {
		return io.NewSectionReader(p.f, 0, p.size), func() {}, nil
	}
	zr, err := gzip.NewReader(io.NewSectionReader(p.f, 0, p.size))
	if err != nil {
		return nil, nil, fmt.Errorf("read compressed container log: %w", err)
	}
	return zr, func() { zr.Close() }, nil
}

// decode reads one line; ok is false for a line to skip.
func decode(line []byte, f Filter) (Entry, bool) {
	var e Entry
	if len(line) == 0 || json.Unmarshal(line, &e) != nil {
		return e, false
	}
	return e, f.keep(&e)
}

func (p part) forward(f Filter, fn func(Entry) error) error {
	r, done, err := p.reader()
	if err != nil {
		return err
	}
	defer done()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, rerr := br.ReadSlice('\n')
		if errors.Is(rerr, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it whole.
			long := append([]byte(nil), line...)
			for errors.Is(rerr, bufio.ErrBufferFull) {
				line, rerr = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if e, ok := decode(bytes.TrimSuffix(line, []byte("\n")), f); ok {
			if err := fn(e); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("read container log: %w", rerr)
		}
	}
}

// backward appends passing entries to rev, newest first, until rev holds
// want, reading a plain file in blocks from its end.
func (p part) backward(f Filter, want int, rev *[]Entry) error {
	const block = 64 << 10
	var carry []byte // the start of a line whose beginning is further back
	end := p.size
	for end > 0 {
		start := max(end-block, 0)
		buf := make([]byte, end-start, end-start+int64(len(carry)))
		if _, err := p.f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read container log: %w", err)
		}
		buf = append(buf, carry...)
		end = start
		// Every line of buf but the first is whole; the first is whole only
		// at the file's start.
		for {
			i := bytes.LastIndexByte(buf[:max(len(buf)-1, 0)], '\n')
			if i < 0 {
				break
			}
			if e, ok := decode(bytes.TrimSuffix(buf[i+1:], []byte("\n")), f); ok {
				*rev = append(*rev, e)
				if len(*rev) >= want {
					return nil
				}
			}
			buf = buf[:i+1]
		}
		if end == 0 {
			if e, ok := decode(bytes.TrimSuffix(buf, []byte("\n")), f); ok {
				*rev = append(*rev, e)
			}
			return nil
		}
		carry = slices.Clone(buf)
	}
	return nil
}

// tailForward is backward for a compressed file, which cannot be read from
// its end: it decompresses the whole file (at most max-size and one entry),
// keeping only the last entries it needs.
func (p part) tailForward(f Filter, want int, rev *[]Entry) error {
	n := want - len(*rev)
	ring := make([]Entry, 0, min(n, 1024))
	head := 0 // with a full ring, the oldest entry's index
	err := p.forward(f, func(e Entry) error {
		if len(ring) < n {
			ring = append(ring, e)
			return nil
		}
		ring[head] = e
		head = (head + 1) % n
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(ring) - 1; i >= 0; i-- {
		*rev = append(*rev, ring[(head+i)%len(ring)])
	}
	return nil
}
