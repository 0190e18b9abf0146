package imagedisk

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// Layers held as tars (macOS's layer store) and as unpacked directories
// (Linux's) stack the same way into one image.
func TestFromLayers(t *testing.T) {
	testenv.RequireTool(t, "e2fsck")
	testenv.RequireTool(t, "debugfs")
	dir := t.TempDir()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, data string }{{"etc/os-release", "base\n"}, {"etc/motd", "hello\n"}} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(len(f.data)), Mode: 0o644})
		tw.Write([]byte(f.data))
	}
	tw.Close()
	base := filepath.Join(dir, "diff.tar")
	os.WriteFile(base, buf.Bytes(), 0o600)
	top := filepath.Join(dir, "top")
	os.MkdirAll(filepath.Join(top, "etc"), 0o755)
	os.WriteFile(filepath.Join(top, "etc", "os-release"), []byte("top\n"), 0o644)
	out := filepath.Join(dir, "image.ext4")
	if err := FromLayers(context.Background(), []string{base, top}, out); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("e2fsck", "-fn", out).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, b)
	}
	for file, want := range map[string]string{"/etc/os-release": "top\n", "/etc/motd": "hello\n"} {
		if got, _ := exec.Command("debugfs", "-R", "cat "+file, out).Output(); string(got) != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}
