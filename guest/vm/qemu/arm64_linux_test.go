package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/vm"
)

// arm64Kit is the arm64 kit and the arm64 busybox beside it (both made
// by make kit-arm64): $ARCA_QEMU_ARM64_KIT or the default. Without them
// the test skips, except in CI, where make test builds them first.
func arm64Kit(t *testing.T) (*Kit, string) {
	t.Helper()
	busybox := func(k *Kit) string { return filepath.Join(filepath.Dir(k.Dir), "busybox", "busybox") }
	kit := kitOrSkip(t, "ARCA_QEMU_ARM64_KIT", DefaultARM64Kit, "make kit-arm64", func(k *Kit) string {
		if k.Arch != ArchARM64 {
			return "kit " + k.Dir + " is " + k.Arch + ", not arm64"
		}
		if _, err := exec.LookPath("qemu-system-aarch64"); err != nil {
			return "no qemu-system-aarch64 (Debian: qemu-system-arm)"
		}
		if _, err := os.Stat(busybox(k)); err != nil {
			return err.Error()
		}
		return ""
	})
	return kit, busybox(kit)
}

// arm64Image is a one-layer image of the arm64 busybox: the host cannot
// run it to ask for its applets, so the few the test uses are linked.
func arm64Image(t *testing.T, busybox string) []string {
	t.Helper()
	layer := filepath.Join(t.TempDir(), "layer")
	for _, d := range []string{"bin", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(layer, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(layer, "bin/busybox"), bb, 0o755))
	for _, applet := range []string{"sh", "cat", "uname", "echo", "sha256sum", "stat", "readlink", "ls", "sleep",
		"wget", "httpd", "nc", "head", "wc", "mkfifo"} { // the last for the network test
		must(os.Symlink("busybox", filepath.Join(layer, "bin", applet)))
	}
	must(os.WriteFile(filepath.Join(layer, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644))
	must(os.WriteFile(filepath.Join(layer, "etc/hello"), []byte("written by the Go ext4 writer\n"), 0o644))
	// A slow symlink (its target is longer than the inode's block map).
	must(os.Symlink("/etc/"+strings.Repeat("x", 80), filepath.Join(layer, "etc/long")))
	return []string{layer}
}

// TestARM64Boot boots the arm64 kit under qemu-system-aarch64 -M virt
// (TCG) with an image disk the Go ext4 writer made from Debian's arm64
// busybox, and runs container processes through the agent: the arm64
// kernel, its modules, the agent cross-built for arm64 and the disk fit
// together.
func TestARM64Boot(t *testing.T) {
	kit, busybox := arm64Kit(t)
	root := t.TempDir()
	d, err := New(context.Background(), Config{Kit: kit.Dir, Agent: arm64Agent(t, root), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if d.Acceleration() != "TCG" {
		t.Errorf("an arm64 guest on %s: acceleration %s, want TCG", "this host", d.Acceleration())
	}
	spec := vm.MachineSpec{ID: "arm", StateDir: filepath.Join(root, "containers", "arm"),
		Layers: arm64Image(t, busybox), Hostname: "arm"}
	m, c, ready := session(t, d, spec)
	t.Logf("arm64 under TCG, qemu start to agent answering: %s", ready)

	for _, tc := range []struct {
		name string
		args []string
		want result
	}{
		{"machine", []string{"uname", "-m"}, result{out: "aarch64\n"}},
		{"kernel", []string{"uname", "-r"}, result{out: kit.Release + "\n"}},
		{"file from the image", []string{"cat", "/etc/hello"}, result{out: "written by the Go ext4 writer\n"}},
		{"slow symlink", []string{"readlink", "/etc/long"}, result{out: "/etc/" + strings.Repeat("x", 80) + "\n"}},
		{"exit code", []string{"sh", "-c", "echo oops >&2; exit 7"}, result{err: "oops\n", code: 7}},
		{"writable layer", []string{"sh", "-c", "echo kept > /root/note && cat /root/note"}, result{out: "kept\n"}},
	} {
		if got := run(t, c, tc.name, nil, tc.args...); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}

	shutdownClean(t, c, m, 60*time.Second)

	// The image disk the guest mounted is a clean filesystem.
	images, _ := filepath.Glob(filepath.Join(root, "disks", "*.ext4"))
	if len(images) != 1 {
		t.Fatalf("image disks: %q, want one", images)
	}
	if out, err := exec.Command("e2fsck", "-fn", images[0]).CombinedOutput(); err != nil {
		t.Errorf("e2fsck of the image disk: %v\n%s", err, out)
	}
}
