package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 10), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "b"), make([]byte, 5), 0o644)
	os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "sub", "hard"))
	os.Symlink("xx", filepath.Join(dir, "l"))
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := &Agent{upper: f}
	u, err := a.Usage(context.Background())
	if err != nil || u.WritableBytes != 17 {
		t.Fatalf("usage %+v %v, want 17 bytes (a hard link counted once)", u, err)
	}
	if u, err := (&Agent{}).Usage(context.Background()); err != nil || u.WritableBytes != 0 {
		t.Fatalf("no writable layer: %+v %v", u, err)
	}
}
