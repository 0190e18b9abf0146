package ext4

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/prereq"
	"golang.org/x/sys/unix"
)

// needTools skips without root (mknod, chown, loop mounts) or
// e2fsprogs, except in CI, where make test installs them.
func needTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		prereq.Missing(t, "needs root: device nodes, owners, loop mounts")
	}
	for _, tool := range []string{"e2fsck", "debugfs", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("no %s (scripts/deps.sh installs e2fsprogs)", tool)
			}
			prereq.Missing(t, "no %s", tool)
		}
	}
}

// hostTree makes a directory with every kind of entry the writer keeps:
// a few thousand small files, a directory too big for its direct blocks,
// files past the single and into the double indirect blocks, a 70 MiB
// sparse file, fast and slow symlinks, hard links, devices, a fifo, a
// socket, owners, setuid, setgid and sticky bits, and exact mtimes.
func hostTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	rng := rand.New(rand.NewPCG(7, 7))
	for d := range 30 {
		sub := filepath.Join(dir, "many", fmt.Sprintf("d%02d", d))
		must(os.MkdirAll(sub, 0o755))
		for f := range 100 {
			data := make([]byte, rng.IntN(6000))
			fill(rng, data)
			must(os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", f)), data, 0o644))
		}
	}
	// 2000 entries: the directory itself needs more than 12 blocks.
	wide := filepath.Join(dir, "wide")
	must(os.Mkdir(wide, 0o755))
	for i := range 2000 {
		must(os.WriteFile(filepath.Join(wide, fmt.Sprintf("entry-with-a-longish-name-%04d", i)), []byte{byte(i)}, 0o600))
	}
	for name, size := range map[string]int{"indirect": 100 << 10, "double": 5 << 20} {
		data := make([]byte, size)
		fill(rng, data)
		must(os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	sparse, err := os.Create(filepath.Join(dir, "sparse"))
	must(err)
	for _, off := range []int64{0, 1 << 20, 40 << 20, 70<<20 - 5} {
		_, err := sparse.WriteAt([]byte("data!"), off)
		must(err)
	}
	must(sparse.Close())
	must(os.Symlink("hosts", filepath.Join(dir, "etc/fast")))
	must(os.Symlink("/"+strings.Repeat("very-long-target/", 10), filepath.Join(dir, "etc/slow")))
	must(os.WriteFile(filepath.Join(dir, "etc/hosts"), []byte("127.0.0.1 localhost\n"), 0o644))
	must(os.Link(filepath.Join(dir, "etc/hosts"), filepath.Join(dir, "etc/hosts.hard")))
	must(os.Link(filepath.Join(dir, "etc/hosts"), filepath.Join(dir, "many/d00/hosts.hard")))
	must(os.Mkdir(filepath.Join(dir, "dev"), 0o755))
	must(unix.Mknod(filepath.Join(dir, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(filepath.Join(dir, "dev/big"), unix.S_IFBLK|0o660, int(unix.Mkdev(259, 300000))))
	must(unix.Mkfifo(filepath.Join(dir, "dev/fifo"), 0o644))
	sock := filepath.Join(dir, "dev/sock")
	must(unix.Mknod(sock, unix.S_IFSOCK|0o755, 0))
	must(os.WriteFile(filepath.Join(dir, "suid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(filepath.Join(dir, "suid"), 0o755|fs.ModeSetuid|fs.ModeSetgid))
	must(os.Mkdir(filepath.Join(dir, "tmp"), 0o755))
	must(os.Chmod(filepath.Join(dir, "tmp"), 0o777|fs.ModeSticky))
	must(os.Lchown(filepath.Join(dir, "etc/hosts"), 1000, 70000))
	must(os.Lchown(filepath.Join(dir, "etc/slow"), 123, 456))
	must(os.Lchown(filepath.Join(dir, "dev"), 5, 6))
	// Extended attributes of every namespace ext4 indexes, a file
	// capability, and a POSIX ACL (stored in ext4's own ACL format).
	for _, x := range []struct {
		path, name string
		value      []byte
	}{
		{"etc/hosts", "user.comment", []byte("hello")},
		{"etc/hosts", "trusted.note", []byte{}},
		{"suid", "security.capability", []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"tmp", "user." + strings.Repeat("n", 200), bytes.Repeat([]byte("v"), 1000)},
		{"etc/hosts.acl", "system.posix_acl_access", posixACL()},
	} {
		p := filepath.Join(dir, x.path)
		if _, err := os.Lstat(p); err != nil {
			must(os.WriteFile(p, []byte("acl\n"), 0o640))
		}
		must(unix.Lsetxattr(p, x.name, x.value, 0))
	}
	// Exact mtimes, nanoseconds and pre-1970 included.
	must(filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ts := []unix.Timespec{{Sec: 1600000000, Nsec: 123456789}, {Sec: 1600000000 + rng.Int64N(1e8), Nsec: rng.Int64N(1e9)}}
		if strings.HasSuffix(p, "f001") {
			ts[1] = unix.Timespec{Sec: -86400 * 365, Nsec: 5}
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	}))
	return dir
}

// posixACL is user::rw- user:1000:r-- group::r-- mask::r-- other::---
// as the xattr interface writes it.
func posixACL() []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 2)
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, 6, 0xFFFFFFFF}, {0x02, 4, 1000}, {0x04, 4, 0xFFFFFFFF}, {0x10, 4, 0xFFFFFFFF}, {0x20, 0, 0xFFFFFFFF}} {
		b = le.AppendUint16(b, e.tag)
		b = le.AppendUint16(b, e.perm)
		b = le.AppendUint32(b, e.id)
	}
	return b
}

// entryInfo is what the test compares of one entry.
type entryInfo struct {
	Mode       uint32
	UID, GID   uint32
	Size       int64
	Hash       string // regular files
	Target     string
	Rdev       uint64
	MTime      time.Time
	Nlink      uint64
	HardLinkOf string // the first path with the same inode, for Nlink > 1
	Xattrs     string // name=hex value, sorted
}

// describe walks dir and records every entry (lost+found aside).
func describe(t *testing.T, dir string) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	first := map[uint64]string{}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == filepath.Join(dir, "lost+found") {
			return filepath.SkipDir
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		e := entryInfo{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Rdev: st.Rdev,
			MTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), Nlink: st.Nlink}
		x, err := hostXattrs(p)
		if err != nil {
			t.Fatal(err)
		}
		var xs []string
		for k, v := range x {
			xs = append(xs, k+"="+hex.EncodeToString(v))
		}
		sort.Strings(xs)
		e.Xattrs = strings.Join(xs, " ")
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			e.Size = st.Size
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			e.Hash = hex.EncodeToString(h.Sum(nil))
			if st.Nlink > 1 {
				if f, ok := first[st.Ino]; ok {
					e.HardLinkOf = f
				} else {
					first[st.Ino] = rel
				}
			}
		case syscall.S_IFLNK:
			e.Size = st.Size
			e.Target, _ = os.Readlink(p)
		}
		out[rel] = e
	}
	return out
}

func fsck(t *testing.T, image string) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", image).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
}

// mount mounts image read-only on a fresh directory, unmounted at cleanup.
func mount(t *testing.T, image string) string {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "loop,ro", image, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v\n%s", err, out)
		}
	})
	return mnt
}

// TestHostTree writes a host tree as an image, checks it with e2fsck and
// debugfs, mounts it, and reads back exactly the tree written; once as
// small as it goes and once as a several-group disk.
func TestHostTree(t *testing.T) {
	needTools(t)
	src := hostTree(t)
	want := describe(t, src)
	root := want["."]
	root.Nlink++ // the image's root also has lost+found
	want["."] = root
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"tight", Options{Label: "arca-test"}},
		{"1 GiB disk", Options{MinSize: 1 << 30, InodeRatio: 16384}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTree()
			if err := tr.AddDir(src); err != nil {
				t.Fatal(err)
			}
			image := filepath.Join(t.TempDir(), "image.ext4")
			start := time.Now()
			if err := WriteFile(image, tr, tc.opts); err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(image)
			var st unix.Stat_t
			unix.Stat(image, &st)
			t.Logf("%d entries: %d MiB image (%d MiB on disk) in %s", len(want), fi.Size()>>20, st.Blocks*512>>20,
				time.Since(start).Round(time.Millisecond))
			if tc.opts.MinSize > 0 && fi.Size() < tc.opts.MinSize {
				t.Errorf("image of %d bytes, asked for %d", fi.Size(), tc.opts.MinSize)
			}
			fsck(t, image)
			out, err := exec.Command("debugfs", "-R", "stat /dev/big", image).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Device major/minor number: 259:300000") {
				t.Errorf("debugfs stat /dev/big: %v\n%s", err, out)
			}
			got := describe(t, mount(t, image))
			for p, w := range want {
				g, ok := got[p]
				if !ok {
					t.Errorf("%s missing from the image", p)
					continue
				}
				if w.Mode&syscall.S_IFMT == syscall.S_IFDIR {
					g.Size, w.Size = 0, 0
				}
				if !g.MTime.Equal(w.MTime) {
					t.Errorf("%s: mtime %v, want %v", p, g.MTime, w.MTime)
				}
				g.MTime, w.MTime = time.Time{}, time.Time{}
				if g != w {
					t.Errorf("%s:\n got %+v\nwant %+v", p, g, w)
				}
			}
			for p := range got {
				if _, ok := want[p]; !ok {
					t.Errorf("%s in the image but not in the tree", p)
				}
			}
		})
	}
}

// TestLayers applies layers as the layer store unpacks them: whiteouts
// (0:0 character devices) and opaque directories remove what lower
// layers had, and upper layers replace files and merge directories.
func TestLayers(t *testing.T) {
	needTools(t)
	root := t.TempDir()
	lower, upper := filepath.Join(root, "lower"), filepath.Join(root, "upper")
	files := map[string]string{
		"lower/keep":            "lower",
		"lower/replaced":        "old",
		"lower/gone":            "whited out",
		"lower/dir/a":           "lower a",
		"lower/opaque/hidden":   "hidden",
		"lower/dirtofile/x":     "x",
		"upper/replaced":        "new",
		"upper/dir/b":           "upper b",
		"upper/opaque/visible":  "visible",
		"upper/dirtofile":       "now a file",
		"upper/fresh/deep/file": "deep",
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mknod(filepath.Join(upper, "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(upper, "opaque"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	tr := NewTree()
	for _, l := range []string{lower, upper} {
		if err := tr.AddDir(l); err != nil {
			t.Fatal(err)
		}
	}
	image := filepath.Join(root, "image.ext4")
	if err := WriteFile(image, tr, Options{}); err != nil {
		t.Fatal(err)
	}
	fsck(t, image)
	mnt := mount(t, image)
	var got []string
	filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(mnt, p)
		got = append(got, rel+"="+string(b))
		return nil
	})
	want := []string{"dir/a=lower a", "dir/b=upper b", "dirtofile=now a file", "fresh/deep/file=deep",
		"keep=lower", "opaque/visible=visible", "replaced=new"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("flattened:\n got %q\nwant %q", got, want)
	}
}
