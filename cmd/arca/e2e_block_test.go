package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// TestBlockVolume: a block volume is an ext4 filesystem of its own in the
// container, keeps its data from one container to the next, serves one
// running container at a time (409 for a second), and leaves no loop
// device or mount once its containers are gone; bad options are a 400.
func TestBlockVolume(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	n := testenv.Name(t)

	for _, opt := range []string{"size=1M", "size=lots", "fstype=xfs"} {
		if r := d.Docker(t, "volume", "create", "--driver", "block", "--opt", opt, n); r.Code == 0 || !strings.Contains(r.Stderr, "invalid") {
			t.Errorf("create --opt %s: %d %q", opt, r.Code, r.Stderr)
		}
	}
	if r := d.Docker(t, "volume", "inspect", n); r.Code == 0 {
		t.Fatalf("a refused create left a volume")
	}

	d.Docker(t, "volume", "create", "--driver", "block", "--opt", "size=64M", n).Must(t)
	defer d.Docker(t, "volume", "rm", "-f", n)
	if got := strings.TrimSpace(d.Docker(t, "volume", "inspect", "-f", "{{.Driver}} {{.Options.size}} {{.Mountpoint}}", n).Must(t).Stdout); !strings.HasPrefix(got, "block 64M ") {
		t.Errorf("inspect: %q", got)
	}
	image := filepath.Join(d.Root(), "volumes", n, "disk.ext4")
	if st, err := os.Stat(image); err != nil || st.Size() != 64<<20 {
		t.Fatalf("image: %v %v", st, err)
	}

	out := d.Docker(t, "run", "--rm", "-v", n+":/data", img, "sh", "-c", "echo kept > /data/f && grep ' /data ' /proc/mounts && stat -f -c %T /data").Must(t).Stdout
	if !strings.Contains(out, " /data ext4 ") || !strings.Contains(out, "ext2/ext3") {
		t.Errorf("the volume is not an ext4 mount: %q", out)
	}
	if out := d.Docker(t, "run", "--rm", "-v", n+":/data:ro", img, "cat", "/data/f").Must(t).Stdout; out != "kept\n" {
		t.Errorf("next container reads %q", out)
	}

	// One running container at a time.
	d.Docker(t, "run", "-d", "--name", n+"-a", "-v", n+":/data", img, "sleep", "300").Must(t)
	defer d.Docker(t, "rm", "-f", n+"-a")
	r := d.Docker(t, "run", "--name", n+"-b", "--mount", "type=volume,src="+n+",dst=/d", img, "true")
	defer d.Docker(t, "rm", "-f", n+"-b")
	if r.Code == 0 || !strings.Contains(r.Stderr, "block volume in use by running container") {
		t.Errorf("second user: %d %q", r.Code, r.Stderr)
	}
	if code, _, body := call(t, d, "POST", "/containers/"+n+"-b/start", ""); code != 409 || !strings.Contains(body, "block volume") {
		t.Errorf("start of the second user: %d %s", code, body)
	}
	if got := loopsBacking(t, image); got != 1 {
		t.Errorf("%d loop devices on the image while one container runs", got)
	}
	// -f too, as dockerd: force only makes a missing volume no error.
	for _, args := range [][]string{{"volume", "rm", n}, {"volume", "rm", "-f", n}} {
		if r := d.Docker(t, args...); r.Code == 0 || !strings.Contains(r.Stderr, "in use") {
			t.Errorf("%v in use: %d %q", args, r.Code, r.Stderr)
		}
	}
	d.Docker(t, "rm", "-f", n+"-a").Must(t)
	// Freed: the other container starts now.
	d.Docker(t, "start", "-a", n+"-b").Must(t)
	d.Docker(t, "rm", n+"-b").Must(t)
	if vline := lineWith(d.Docker(t, "system", "df", "-v").Must(t).Stdout, n+" "); !strings.HasPrefix(strings.Join(strings.Fields(vline), " "), n+" 0 ") {
		t.Errorf("df -v: %q", vline)
	}
	// The last machine may still be powering off: volume rm waits for it.
	d.Docker(t, "volume", "rm", n).Must(t)
	if got := loopsBacking(t, image); got != 0 {
		t.Errorf("%d loop devices left on the image", got)
	}
	if m := mountsUnder(t, filepath.Join(d.Root(), "volumes")); m != 0 {
		t.Errorf("%d mounts left under volumes/", m)
	}
	if _, err := os.Stat(filepath.Dir(image)); !os.IsNotExist(err) {
		t.Errorf("rm left the volume's directory: %v", err)
	}
	d.Docker(t, "volume", "rm", "-f", n).Must(t) // -f: a missing volume is no error
}

// TestBlockVolumeAfterKill9: the mounts and loop devices of a killed
// daemon's block volumes are released when it starts again.
func TestBlockVolumeAfterKill9(t *testing.T) {
	reg := testenv.SharedRegistry(t)
	img := testenv.PushBusybox(t, reg)
	d := testenv.StartDaemon(t, testenv.Options{AllowUnclean: true})
	d.Docker(t, "pull", "-q", img).Must(t)
	d.Docker(t, "volume", "create", "--driver", "block", "bv").Must(t)
	d.Docker(t, "run", "-d", "--name", "user", "-v", "bv:/data", img, "sleep", "300").Must(t)
	image := filepath.Join(d.Root(), "volumes", "bv", "disk.ext4")
	if loopsBacking(t, image) != 1 || mountsUnder(t, filepath.Join(d.Root(), "volumes")) != 1 {
		t.Fatalf("no loop device or mount while the container runs")
	}
	d.Kill9(t)
	// Nothing unmounted it: the restart must.
	if loopsBacking(t, image) != 1 {
		t.Fatalf("the killed daemon's loop device is gone before the restart: nothing to test")
	}
	d.Restart(t)
	if got := loopsBacking(t, image); got != 0 {
		t.Errorf("%d loop devices left after the restart", got)
	}
	if m := mountsUnder(t, filepath.Join(d.Root(), "volumes")); m != 0 {
		t.Errorf("%d mounts left under volumes/", m)
	}
	// The volume works again.
	if out := d.Docker(t, "run", "--rm", "-v", "bv:/data", img, "sh", "-c", "echo ok > /data/f; cat /data/f").Must(t).Stdout; out != "ok\n" {
		t.Errorf("after restart: %q", out)
	}
}

// loopsBacking counts the loop devices attached to image (losetup -a).
func loopsBacking(t *testing.T, image string) int {
	t.Helper()
	out, err := exec.Command("losetup", "-a").CombinedOutput()
	if err != nil {
		t.Fatalf("losetup -a: %v %s", err, out)
	}
	return strings.Count(string(out), "("+image+")")
}
