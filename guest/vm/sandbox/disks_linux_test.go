package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/internal/prereq"
)

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/x":            "/var/lib/x",
		`/tmp/a\040b/mnt`:       "/tmp/a b/mnt",
		`/tmp/tab\011here`:      "/tmp/tab\there",
		`/tmp/back\134slash`:    `/tmp/back\slash`,
		`/tmp/trailing\04`:      `/tmp/trailing\04`,
		`/tmp/not\999an-escape`: `/tmp/not\999an-escape`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDisksAttachAndRelease: an image is mounted beside itself as ext4,
// detached with no loop device left, and a mount a killed daemon left is
// released by ReleaseStaleDisks. Needs root and mkfs.ext4.
func TestDisksAttachAndRelease(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "needs root for loop devices")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		prereq.Missing(t, "no mkfs.ext4")
	}
	vols := t.TempDir()
	image := filepath.Join(vols, "v", "disk.ext4")
	os.MkdirAll(filepath.Dir(image), 0o755)
	if out, err := exec.Command("sh", "-c", "truncate -s 32M "+image+" && mkfs.ext4 -q -F "+image).CombinedOutput(); err != nil {
		t.Fatalf("make image: %v %s", err, out)
	}
	spec := vm.MachineSpec{Disks: []vm.Disk{{Image: image}}}
	ds, err := attachDisks(spec)
	if err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(filepath.Dir(image), DiskMountDir)
	if len(ds) != 1 || ds[0].target != mnt || !mounted(t, mnt) || loops(t, image) != 1 {
		t.Fatalf("attached %+v: mounted %v, loops %d", ds, mounted(t, mnt), loops(t, image))
	}
	os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o644)
	if err := detachDisks(ds); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) || loops(t, image) != 0 {
		t.Errorf("after detach: mounted %v, loops %d", mounted(t, mnt), loops(t, image))
	}
	// As a killed daemon leaves it: attached and mounted, no one to undo it.
	if _, err := attachDisks(spec); err != nil {
		t.Fatal(err)
	}
	if err := ReleaseStaleDisks(vols); err != nil {
		t.Fatal(err)
	}
	if mounted(t, mnt) || loops(t, image) != 0 {
		t.Errorf("after ReleaseStaleDisks: mounted %v, loops %d", mounted(t, mnt), loops(t, image))
	}
	// The data was written back to the image.
	if out, err := exec.Command("debugfs", "-R", "cat /f", image).Output(); err == nil && string(out) != "x" {
		t.Errorf("image holds %q", out)
	}
}

func mounted(t *testing.T, dir string) bool {
	mps, err := mountPoints()
	if err != nil {
		t.Fatal(err)
	}
	for _, mp := range mps {
		if mp == dir {
			return true
		}
	}
	return false
}

func loops(t *testing.T, image string) int {
	out, err := exec.Command("losetup", "-a").CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v %s", err, out)
	}
	return strings.Count(string(out), "("+image+")")
}
