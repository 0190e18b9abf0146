package qemu

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/vm"
	"golang.org/x/sys/unix"
)

// rootDir mounts an overlay of the busybox image's layers on the host, as
// BuildKit mounts a build step's snapshot, and returns its merged and
// upper directories. The base layer has /bin/somefile for a step to
// remove and /bin/fsprobe (testdata/fsprobe), a binary of its own.
func rootDir(t *testing.T) (merged, upper string) {
	t.Helper()
	layers := newImage(t)
	base, top := layers[0], layers[1]
	if err := os.WriteFile(filepath.Join(base, "bin/somefile"), []byte("in the base layer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(base, "bin/fsprobe"), "./testdata/fsprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fsprobe: %v\n%s", err, out)
	}
	dir := t.TempDir()
	merged, upper, work := filepath.Join(dir, "merged"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{merged, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+top+":"+base+",upperdir="+upper+",workdir="+work); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Errorf("unmount the root dir: %v", err)
		}
	})
	return merged, upper
}

// A machine whose root is a host directory (a build step's snapshot)
// runs from it and writes it in place, over 9p: the host sees the step's
// files, removals (the host's overlay whiteouts them), modes and owners;
// binaries run from it, the agent's /dev works and stays off it. Once
// restored from a template, once booted cold.
func TestRootDir(t *testing.T) {
	kit := testKit(t)
	for _, cold := range []bool{false, true} {
		name := "template"
		if cold {
			name = "cold"
		}
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			d, err := New(context.Background(), Config{Kit: kit, Agent: agentBin, Root: root, Accel: AccelTCG, ColdBoot: cold, Log: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			merged, upper := rootDir(t)
			spec := vm.MachineSpec{ID: "step", StateDir: filepath.Join(root, "containers", "step"), RootDir: merged, Hostname: "step"}
			m, c, ready := session(t, d, spec)
			t.Logf("boot to agent: %s", ready)
			console, _ := os.ReadFile(filepath.Join(spec.StateDir, consoleLog))
			if restored := strings.Contains(string(console), "resumed from template"); restored == cold {
				t.Errorf("restored from a template: %v; console:\n%s", restored, console)
			}

			if got := run(t, c, "step", nil, "sh", "-c", "echo built > /root/out && rm /bin/somefile && mkdir /d && chmod 700 /d"); got != (result{}) {
				t.Fatalf("build step: %+v", got)
			}
			for _, tc := range []struct {
				name string
				args []string
				want result
			}{
				{"read back", []string{"cat", "/root/out"}, result{out: "built\n"}},
				{"whiteout below", []string{"sh", "-c", "test -e /etc/gone; echo $?"}, result{out: "1\n"}},
				{"shared mapping", []string{"fsprobe", "mmap", "/root/mapped", "through a shared mapping"}, result{}},
				{"user xattr", []string{"fsprobe", "xattr", "/root/mapped", "user.arca", "6869"}, result{}},
				{"devices", []string{"sh", "-c", "echo x > /dev/null && head -c 7 /dev/urandom | wc -c && test -c /dev/zero && ls /dev/pts"}, result{out: "7\nptmx\n"}},
				{"owner", []string{"chown", "1234:5678", "/root/out"}, result{}},
				{"links", []string{"sh", "-c", "ln /root/out /root/hard && ln -s out /root/soft && cat /root/soft"}, result{out: "built\n"}},
				{"rename", []string{"sh", "-c", "echo new > /root/new && mv /root/new /etc/motd && cat /etc/motd"}, result{out: "new\n"}},
			} {
				if got := run(t, c, tc.name, nil, tc.args...); got != tc.want {
					t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
				}
			}
			// What qemu's 9p does not carry (docs/qemu.md, "A host
			// directory as the root"): file capabilities (its passthrough
			// model serves user.* xattrs and ACLs only) and, before qemu
			// 9.2, special files. Each is refused as known, or lands.
			isType := func(path string, mode uint32) func() error {
				return func() error {
					var st unix.Stat_t
					if err := unix.Lstat(filepath.Join(merged, path), &st); err != nil {
						return err
					}
					if st.Mode&unix.S_IFMT != mode {
						return fmt.Errorf("mode %o", st.Mode)
					}
					return nil
				}
			}
			for _, tc := range []struct {
				name    string
				args    []string
				refused string // the guest's or qemu's words for a known refusal
				landed  func() error
			}{
				{"file capability", []string{"fsprobe", "xattr", "/root/mapped", "security.capability", netBindCap}, "operation not supported", func() error {
					b := make([]byte, 64)
					n, err := unix.Lgetxattr(filepath.Join(merged, "root/mapped"), "security.capability", b)
					if err == nil && hex.EncodeToString(b[:n]) != netBindCap {
						err = fmt.Errorf("reads %x", b[:n])
					}
					return err
				}},
				{"fifo", []string{"mkfifo", "/root/fifo"}, "special file", isType("root/fifo", unix.S_IFIFO)},
				{"socket", []string{"fsprobe", "socket", "/root/sock"}, "special file", isType("root/sock", unix.S_IFSOCK)},
				{"device node", []string{"mknod", "/root/null", "c", "1", "3"}, "special file", isType("root/null", unix.S_IFCHR)},
			} {
				got := run(t, c, tc.name, nil, tc.args...)
				if got.code == 0 {
					if err := tc.landed(); err != nil {
						t.Errorf("%s: made in the guest, on the host: %v", tc.name, err)
					}
					continue
				}
				if says := got.err + m.(*machine).stderr.String(); strings.Contains(says, tc.refused) {
					t.Logf("%s: refused, as known: %s", tc.name, strings.TrimSpace(says))
				} else {
					t.Errorf("%s: %+v", tc.name, got)
				}
			}
			shutdownClean(t, c, m, 30*time.Second)

			if got, err := os.ReadFile(filepath.Join(merged, "root/out")); err != nil || string(got) != "built\n" {
				t.Errorf("host sees /root/out %q, %v", got, err)
			}
			if got, err := os.ReadFile(filepath.Join(merged, "root/mapped")); err != nil || string(got) != "through a shared mapping" {
				t.Errorf("host sees the mapped file %q, %v", got, err)
			}
			b := make([]byte, 64)
			if n, err := unix.Lgetxattr(filepath.Join(merged, "root/mapped"), "user.arca", b); err != nil || string(b[:n]) != "hi" {
				t.Errorf("host sees xattr user.arca as %q, %v", b[:max(n, 0)], err)
			}
			if got, err := os.ReadFile(filepath.Join(merged, "etc/motd")); err != nil || string(got) != "new\n" {
				t.Errorf("host sees the renamed file %q, %v", got, err)
			}
			if _, err := os.Lstat(filepath.Join(merged, "bin/somefile")); !os.IsNotExist(err) {
				t.Errorf("removed file still on the host: %v", err)
			}
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(upper, "bin/somefile"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Errorf("no whiteout in the snapshot's upper dir: %v, mode %o", err, st.Mode)
			}
			if fi, err := os.Stat(filepath.Join(merged, "d")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
				t.Errorf("host sees /d as %v, %v; want a 0700 directory", fi, err)
			}
			if err := unix.Stat(filepath.Join(merged, "root/out"), &st); err != nil || st.Uid != 1234 || st.Gid != 5678 || st.Nlink != 2 {
				t.Errorf("host sees /root/out owned %d:%d with %d links (%v), want 1234:5678 and 2", st.Uid, st.Gid, st.Nlink, err)
			}
			if l, err := os.Readlink(filepath.Join(merged, "root/soft")); err != nil || l != "out" {
				t.Errorf("host sees the symlink as %q, %v", l, err)
			}
			// /dev is the agent's tmpfs in the guest: only its mount point
			// reaches the host.
			if entries, err := os.ReadDir(filepath.Join(merged, "dev")); err != nil || len(entries) != 0 {
				t.Errorf("host's /dev in the root dir: %v, %v; want it empty", entries, err)
			}
			// No disks: the state dir holds the console log only.
			entries, _ := os.ReadDir(spec.StateDir)
			if len(entries) != 1 || entries[0].Name() != consoleLog {
				t.Errorf("state dir holds %v, want only %s", entries, consoleLog)
			}
		})
	}
}

// netBindCap is a file capability, as setcap cap_net_bind_service+ep
// writes it (struct vfs_cap_data, revision 2, effective).
const netBindCap = "0100000200040000000000000000000000000000"

// A root dir that is not one fails the boot before anything is made.
func TestRootDirInvalid(t *testing.T) {
	kit := testKit(t)
	root := t.TempDir()
	d := newDriver(t, kit, root)
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(root, "containers", "x")
	for _, dir := range []string{filepath.Join(root, "nowhere"), file, "relative/root"} {
		_, err := d.Boot(context.Background(), vm.MachineSpec{ID: "x", StateDir: state, RootDir: dir})
		if err == nil || !strings.Contains(err.Error(), "root dir") {
			t.Errorf("boot with root dir %s: %v", dir, err)
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("root dir %s: state dir made for a failed boot: %v", dir, err)
		}
	}
}
