package vz

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// The disks a Mac makes are ones e2fsck finds clean, holding what the
// agent mounts: the image's files, and upper and work on the writable one.
func TestExt4Disks(t *testing.T) {
	testenv.RequireTool(t, "e2fsck")
	testenv.RequireTool(t, "debugfs")
	dir := t.TempDir()
	base, top := filepath.Join(dir, "base"), filepath.Join(dir, "top")
	os.MkdirAll(filepath.Join(base, "etc"), 0o755)
	os.WriteFile(filepath.Join(base, "etc", "os-release"), []byte("base\n"), 0o644)
	os.MkdirAll(filepath.Join(top, "etc"), 0o755)
	os.WriteFile(filepath.Join(top, "etc", "os-release"), []byte("top\n"), 0o644)
	image, rw := filepath.Join(dir, "image.ext4"), filepath.Join(dir, "rw.ext4")
	ctx := context.Background()
	if err := (Ext4Disks{}).ImageDisk(ctx, []string{base, top}, image); err != nil {
		t.Fatal(err)
	}
	if err := (Ext4Disks{}).WritableDisk(ctx, rw, 64<<20); err != nil {
		t.Fatal(err)
	}
	for _, disk := range []string{image, rw} {
		if out, err := exec.Command("e2fsck", "-fn", disk).CombinedOutput(); err != nil {
			t.Errorf("e2fsck %s: %v\n%s", filepath.Base(disk), err, out)
		}
	}
	if out, _ := exec.Command("debugfs", "-R", "cat /etc/os-release", image).Output(); string(out) != "top\n" {
		t.Errorf("image disk /etc/os-release = %q, want the top layer's", out)
	}
	if st, _ := os.Stat(rw); st == nil || st.Size() < 64<<20 {
		t.Errorf("writable disk size %v, want 64 MiB", st)
	}
	out, _ := exec.Command("debugfs", "-R", "ls -l /", rw).Output()
	for _, want := range []string{"40755", "upper", "40700", "work"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("writable disk root lacks %s:\n%s", want, out)
		}
	}
}
