package containerlog

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readAll renders what a snapshot reads as "std:log" pieces.
func readAll(t *testing.T, s *Snapshot, f Filter) string {
	t.Helper()
	var sb strings.Builder
	must(t, s.Read(f, func(e Entry) error {
		sb.WriteString(e.Stream[:3] + ":" + e.Log)
		return nil
	}))
	return sb.String()
}

func TestWriteRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName("c"))
	w, err := OpenWriter(p, Options{})
	must(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, w.Write(1, []byte("a\nb\npartial"), t0))
	must(t, w.Write(2, []byte("err\n"), t0.Add(time.Second)))
	must(t, w.Write(1, []byte("c\n"), t0.Add(2*time.Second)))
	mid, err := w.Snapshot()
	must(t, err)
	defer mid.Close()
	must(t, w.Write(1, []byte("late\n"), t0.Add(3*time.Second)))
	must(t, w.Close())
	full, err := OpenSnapshot(p, 1)
	must(t, err)
	defer full.Close()

	all := Filter{Stdout: true, Stderr: true, Tail: -1}
	cases := []struct {
		name string
		snap *Snapshot
		f    Filter
		want string
	}{
		{"all", full, all, "std:a\nstd:b\nstd:partialstd:err\nstd:c\nstd:late\n"},
		{"stderr only", full, Filter{Stderr: true, Tail: -1}, "std:err\n"},
		{"tail 2", full, Filter{Stdout: true, Stderr: true, Tail: 2}, "std:c\nstd:late\n"},
		{"tail stderr", full, Filter{Stderr: true, Tail: 3}, "std:err\n"},
		{"tail, then the filter", full, Filter{Stderr: true, Tail: 2}, ""},
		{"tail since", full, Filter{Stdout: true, Stderr: true, Tail: 3, Since: t0.Add(2 * time.Second)}, "std:c\nstd:late\n"},
		{"tail more than there is", full, Filter{Stdout: true, Stderr: true, Tail: 100}, "std:a\nstd:b\nstd:partialstd:err\nstd:c\nstd:late\n"},
		{"tail 0", full, Filter{Stdout: true, Stderr: true, Tail: 0}, ""},
		{"snapshot ends where it was taken", mid, all, "std:a\nstd:b\nstd:partialstd:err\nstd:c\n"},
		{"snapshot tail", mid, Filter{Stdout: true, Stderr: true, Tail: 1}, "std:c\n"},
		{"since", full, Filter{Stdout: true, Stderr: true, Tail: -1, Since: t0.Add(2 * time.Second)}, "std:c\nstd:late\n"},
		{"until", full, Filter{Stdout: true, Stderr: true, Tail: -1, Until: t0}, "std:a\nstd:b\nstd:partial"},
	}
	for _, c := range cases {
		if got := readAll(t, c.snap, c.f); got != c.want {
			t.Errorf("%s: got %q want %q", c.name, got, c.want)
		}
	}
}

func TestAppendEntriesIsEncodingJSON(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 21, 0, 0, 123456000, time.FixedZone("x", 3600))
	for _, s := range []string{
		"plain\n", "", "quote \" back \\ slash", "tab\tcr\r", "\x00\x01\x1f\x7f",
		"<html> & </html>", "caf\xc3\xa9 ✓", "bad \xff\xfe utf8", "cut \xe2\x82", "sep \u2028 \u2029",
	} {
		got := string(AppendEntries(nil, 2, []byte(s), t0))
		want := ""
		if s != "" {
			b, err := json.Marshal(Entry{Log: s, Stream: "stderr", Time: t0.UTC()})
			must(t, err)
			want = string(b) + "\n"
		}
		if got != want {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	cases := []struct {
		cfg  map[string]string
		want Options
		err  string
	}{
		{nil, Options{MaxFiles: 1}, ""},
		{map[string]string{"max-size": "10k"}, Options{MaxSize: 10000, MaxFiles: 1}, ""},
		{map[string]string{"max-size": "1m", "max-file": "3"}, Options{MaxSize: 1000000, MaxFiles: 3}, ""},
		{map[string]string{"max-size": "1g", "max-file": "2", "compress": "true"}, Options{MaxSize: 1000000000, MaxFiles: 2, Compress: true}, ""},
		{map[string]string{"max-size": "100"}, Options{MaxSize: 100, MaxFiles: 1}, ""},
		{map[string]string{"tag": "x", "labels": "a", "env": "B"}, Options{MaxFiles: 1}, ""},
		{map[string]string{"max-size": "abc"}, Options{}, "invalid size: 'abc'"},
		{map[string]string{"max-size": "0"}, Options{}, "max-size must be a positive number"},
		{map[string]string{"max-size": "-1k"}, Options{}, "invalid size: '-1k'"},
		{map[string]string{"max-file": "0"}, Options{}, "max-file cannot be less than 1"},
		{map[string]string{"max-file": "two"}, Options{}, `strconv.Atoi: parsing "two": invalid syntax`},
		{map[string]string{"compress": "true", "max-size": "1m"}, Options{}, "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{map[string]string{"compress": "maybe"}, Options{}, `strconv.ParseBool: parsing "maybe": invalid syntax`},
		{map[string]string{"max-buffer-size": "1m"}, Options{}, "unknown log opt 'max-buffer-size' for json-file log driver"},
	}
	for _, c := range cases {
		got, err := ParseOptions(c.cfg)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%v: error %v, want %q", c.cfg, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%v: got %+v, %v; want %+v", c.cfg, got, err, c.want)
		}
	}
}

func TestMergeDefaults(t *testing.T) {
	got := MergeDefaults(map[string]string{"max-size": "1m"}, map[string]string{"max-size": "5m", "max-file": "3"})
	if len(got) != 2 || got["max-size"] != "1m" || got["max-file"] != "3" {
		t.Errorf("got %v", got)
	}
	if got := MergeDefaults(nil, nil); got == nil || len(got) != 0 {
		t.Errorf("nil merge: %v", got)
	}
}

// line is the i-th test entry's log text: fixed width, so every entry
// encodes to the same number of bytes.
func line(i int) string { return fmt.Sprintf("line %06d\n", i) }

// entrySize is how many bytes line(i) takes in the file.
var entrySize = int64(len(AppendEntries(nil, 1, []byte(line(0)), t0)))

// t0 stamps the test entries: one time, so all encode alike.
var t0 = time.Unix(1700000000, 0)

// rotationFiles lists dir's files with their sizes.
func rotationFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	out := map[string]int64{}
	for _, e := range ents {
		info, err := e.Info()
		must(t, err)
		out[e.Name()] = info.Size()
	}
	return out
}

func TestRotation(t *testing.T) {
	const n = 1000
	cases := []struct {
		name     string
		opts     Options
		files    []string // beside the current file, c-json.log
		compress bool
	}{
		{"unbounded", Options{MaxFiles: 1}, nil, false},
		{"one file", Options{MaxSize: 20 * entrySize, MaxFiles: 1}, nil, false},
		{"three files", Options{MaxSize: 20 * entrySize, MaxFiles: 3}, []string{"c-json.log.1", "c-json.log.2"}, false},
		{"size between entries", Options{MaxSize: 20*entrySize + 7, MaxFiles: 2}, []string{"c-json.log.1"}, false},
		{"compressed", Options{MaxSize: 20 * entrySize, MaxFiles: 3, Compress: true}, []string{"c-json.log.1.gz", "c-json.log.2.gz"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, FileName("c"))
			w, err := OpenWriter(p, c.opts)
			must(t, err)
			for i := range n {
				// Several entries per write, as a pump's reads carry.
				if i%4 == 0 {
					var b strings.Builder
					for j := i; j < min(i+4, n); j++ {
						b.WriteString(line(j))
					}
					must(t, w.Write(1, []byte(b.String()), t0))
				}
			}
			must(t, w.Close())

			files := rotationFiles(t, dir)
			want := append([]string{"c-json.log"}, c.files...)
			if len(files) != len(want) {
				t.Fatalf("files %v, want %v", files, want)
			}
			for _, name := range want {
				size, ok := files[name]
				if !ok {
					t.Fatalf("files %v, want %v", files, want)
				}
				// A file goes past max-size by at most the entry that
				// reached it.
				if c.opts.MaxSize > 0 && !strings.HasSuffix(name, ".gz") && size >= c.opts.MaxSize+entrySize {
					t.Errorf("%s is %d bytes, max-size %d", name, size, c.opts.MaxSize)
				}
			}

			// What is kept reads back in order and ends with the last entry.
			s, err := OpenSnapshot(p, c.opts.MaxFiles)
			must(t, err)
			defer s.Close()
			got := readAll(t, s, Filter{Stdout: true, Tail: -1})
			kept := strings.Count(got, "\n")
			if c.opts.MaxSize == 0 {
				if kept != n {
					t.Fatalf("kept %d entries of %d", kept, n)
				}
			} else if lo, hi := int64(c.opts.MaxFiles-1)*c.opts.MaxSize/entrySize, int64(c.opts.MaxFiles)*(c.opts.MaxSize/entrySize+1); int64(kept) <= lo || int64(kept) > hi {
				t.Fatalf("kept %d entries, want (%d, %d]", kept, lo, hi)
			}
			var want2 strings.Builder
			for i := n - kept; i < n; i++ {
				want2.WriteString("std:" + line(i))
			}
			if got != want2.String() {
				t.Errorf("read back:\n%s\nwant\n%s", got, want2.String())
			}

			// A tail longer than the current file reaches into rotated ones.
			tail := kept - 3
			got = readAll(t, s, Filter{Stdout: true, Tail: tail})
			var want3 strings.Builder
			for i := n - tail; i < n; i++ {
				want3.WriteString("std:" + line(i))
			}
			if got != want3.String() {
				t.Errorf("tail %d:\n%s\nwant\n%s", tail, got, want3.String())
			}
		})
	}
}

// A snapshot reads what was written when it was taken, even after the
// files it opened were rotated away or unlinked.
func TestSnapshotSurvivesRotation(t *testing.T) {
	for _, maxFiles := range []int{1, 2} {
		p := filepath.Join(t.TempDir(), FileName("c"))
		w, err := OpenWriter(p, Options{MaxSize: 10 * entrySize, MaxFiles: maxFiles})
		must(t, err)
		for i := range 5 {
			must(t, w.Write(1, []byte(line(i)), t0))
		}
		s, err := w.Snapshot()
		must(t, err)
		for i := 5; i < 100; i++ {
			must(t, w.Write(1, []byte(line(i)), t0))
		}
		must(t, w.Close())
		got := readAll(t, s, Filter{Stdout: true, Tail: -1})
		s.Close()
		want := "std:" + line(0) + "std:" + line(1) + "std:" + line(2) + "std:" + line(3) + "std:" + line(4)
		if got != want {
			t.Errorf("max-file %d: got %q want %q", maxFiles, got, want)
		}
	}
}

// countingFile counts the bytes read from a file.
type countingFile struct {
	*os.File
	n int64
}

func (c *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.File.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// Tail reads a big file from its end: what it reads is about the tail,
// not the file.
func TestTailReadsFromTheEnd(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName("c"))
	w, err := OpenWriter(p, Options{})
	must(t, err)
	var chunk strings.Builder
	const n = 300000
	for i := range n {
		chunk.WriteString(line(i))
		if chunk.Len() > 32<<10 || i == n-1 {
			must(t, w.Write(1, []byte(chunk.String()), t0))
			chunk.Reset()
		}
	}
	// A line far longer than a read block, before the tail.
	must(t, w.Write(2, []byte(strings.Repeat("x", 200<<10)+"\n"), t0))
	must(t, w.Write(1, []byte("last\n"), t0))
	must(t, w.Close())
	f, err := os.Open(p)
	must(t, err)
	st, err := f.Stat()
	must(t, err)
	cf := &countingFile{File: f}
	s := &Snapshot{parts: []part{{f: cf, size: st.Size()}}}
	defer s.Close()

	// The last 3 entries, one of them stderr.
	got := readAll(t, s, Filter{Stdout: true, Tail: 3})
	if want := "std:" + line(n-1) + "std:last\n"; got != want {
		t.Errorf("tail 3: got %q want %q", got, want)
	}
	if cf.n > 1<<20 {
		t.Errorf("tail 3 read %d bytes of a %d-byte file", cf.n, st.Size())
	}
	cf.n = 0
	got = readAll(t, s, Filter{Stderr: true, Tail: 4})
	if len(got) != 4+200<<10+1 {
		t.Errorf("long line: got %d bytes", len(got))
	}
}

// A failed write (a full disk) does not stick: later output is tried anew.
func TestWriteErrorDoesNotStick(t *testing.T) {
	w, err := OpenWriter("/dev/full", Options{})
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	defer w.Close()
	if err := w.Write(1, []byte(strings.Repeat("x", 100<<10)+"\n"), t0); err == nil {
		t.Fatal("writing to /dev/full succeeded")
	}
	if err := w.Write(1, []byte("small\n"), t0); err != nil {
		t.Errorf("after a failure, a buffered write: %v", err)
	}
	if err := w.Flush(); err == nil {
		t.Error("flush to /dev/full succeeded")
	}
}
