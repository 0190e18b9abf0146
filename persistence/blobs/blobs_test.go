package blobs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestPutAndRead(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"small", "hello blob"},
		{"larger", strings.Repeat("abcdefgh", 100000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			d := digest.FromString(tt.content)
			if s.Has(d) {
				t.Fatal("Has before Put")
			}
			n, err := s.Put(strings.NewReader(tt.content), d)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(tt.content)) {
				t.Errorf("Put size = %d, want %d", n, len(tt.content))
			}
			if !s.Has(d) {
				t.Error("Has after Put = false")
			}
			size, err := s.Size(d)
			if err != nil || size != int64(len(tt.content)) {
				t.Errorf("Size = %d, %v", size, err)
			}
			rc, err := s.Open(d)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if string(got) != tt.content {
				t.Error("content differs")
			}
			if want := filepath.Join(filepath.Dir(s.Path(d)), d.Encoded()); s.Path(d) != want || filepath.Base(filepath.Dir(want)) != "sha256" {
				t.Errorf("Path = %s", s.Path(d))
			}
		})
	}
}

func TestPutMismatch(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := digest.FromString("expected")
	got := digest.FromString("actual")
	_, err = s.Put(strings.NewReader("actual"), want)
	if err == nil {
		t.Fatal("Put with wrong digest succeeded")
	}
	if !strings.Contains(err.Error(), want.String()) || !strings.Contains(err.Error(), got.String()) {
		t.Errorf("error %q should name both digests", err)
	}
	if s.Has(want) || s.Has(got) {
		t.Error("mismatched blob was stored")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "sha256"))
	if len(entries) != 0 {
		t.Errorf("left %d files behind", len(entries))
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	f.n--
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestPutReadError(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if _, err := s.Put(&failingReader{n: 3}, digest.FromString("x")); err == nil {
		t.Fatal("expected error")
	}
	if _, _, err := s.PutUnverified(&failingReader{n: 3}); err == nil {
		t.Fatal("expected error")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "sha256"))
	if len(entries) != 0 {
		t.Errorf("left %d files behind", len(entries))
	}
}

func TestPutUnverified(t *testing.T) {
	s, _ := Open(t.TempDir())
	d, n, err := s.PutUnverified(strings.NewReader("legacy layer"))
	if err != nil {
		t.Fatal(err)
	}
	if d != digest.FromString("legacy layer") || n != 12 {
		t.Errorf("got %s %d", d, n)
	}
	if !s.Has(d) {
		t.Error("not stored")
	}
}

func TestNotFoundAndDelete(t *testing.T) {
	s, _ := Open(t.TempDir())
	d := digest.FromString("gone")
	if _, err := s.Open(d); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open missing: %v", err)
	}
	if _, err := s.Size(d); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Size missing: %v", err)
	}
	if err := s.Delete(d); err != nil {
		t.Errorf("Delete missing: %v", err)
	}
	if _, err := s.Put(strings.NewReader("gone"), d); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(d); err != nil {
		t.Fatal(err)
	}
	if s.Has(d) {
		t.Error("still there after Delete")
	}
}

func TestInvalidDigests(t *testing.T) {
	s, _ := Open(t.TempDir())
	bad := []digest.Digest{
		"",
		"sha256:../../etc/passwd",
		"sha512:" + digest.Digest(strings.Repeat("a", 128)),
		"sha256:abc",
	}
	for _, d := range bad {
		if s.Path(d) != "" {
			t.Errorf("Path(%q) = %q", d, s.Path(d))
		}
		if s.Has(d) {
			t.Errorf("Has(%q)", d)
		}
		if _, err := s.Put(strings.NewReader(""), d); err == nil {
			t.Errorf("Put(%q) succeeded", d)
		}
		if _, err := s.Open(d); err == nil {
			t.Errorf("Open(%q) succeeded", d)
		}
	}
}

func TestConcurrentPutSameDigest(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	content := bytes.Repeat([]byte("concurrent"), 50000)
	d := digest.FromBytes(content)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Put(bytes.NewReader(content), d)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "sha256"))
	if len(entries) != 1 {
		t.Errorf("want exactly one file, got %d", len(entries))
	}
}

func TestOpenSweepsTempFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o700); err != nil {
		t.Fatal(err)
	}
	litter := filepath.Join(dir, "sha256", tempPrefix+"123")
	if err := os.WriteFile(litter, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(litter); !errors.Is(err, fs.ErrNotExist) {
		t.Error("temp file survived Open")
	}
}
