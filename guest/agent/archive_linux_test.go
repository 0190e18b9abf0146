package agent

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/internal/prereq"
	"golang.org/x/sys/unix"
)

// TestExtractHardlinks: a hard link's target must be a file already under
// the destination; otherwise the entry is a client error and nothing is
// made or removed.
func TestExtractHardlinks(t *testing.T) {
	type ent struct{ name, link string }
	cases := []struct {
		name    string
		entries []ent // link "" is a regular file
		bad     bool
		exists  []string
		absent  []string
	}{
		{"link to a file in the archive", []ent{{"a", ""}, {"b", "a"}}, false, []string{"dst/a", "dst/b"}, nil},
		{"absolute link outside", []ent{{"x/evil", "/etc/shadow"}}, true, []string{"dst/keep"}, []string{"dst/x"}},
		{"climbing link", []ent{{"evil", "../outside"}}, true, []string{"outside"}, []string{"dst/evil"}},
		{"link to a directory", []ent{{"d", "sub"}}, true, nil, []string{"dst/d"}},
		{"link over an existing file", []ent{{"keep", "/missing"}}, true, []string{"dst/keep"}, nil},
		{"link to itself", []ent{{"keep", "keep"}}, true, []string{"dst/keep"}, nil},
		{"link over its target's directory", []ent{{"sub/f", ""}, {"sub", "sub/f"}}, true, []string{"dst/sub/f"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"dst/sub", "etc"} {
				os.MkdirAll(filepath.Join(dir, d), 0o755)
			}
			for _, f := range []string{"dst/keep", "outside", "etc/shadow"} {
				os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
			}
			root, err := openRootDir(dir, "/proc")
			if err != nil {
				t.Fatal(err)
			}
			defer root.close()
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, e := range c.entries {
				if e.link == "" {
					tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
					tw.Write([]byte("y"))
				} else {
					tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeLink, Linkname: e.link})
				}
			}
			tw.Close()
			x := &extractor{root: root, dst: "/dst", uid: -1}
			err = x.run(tar.NewReader(&buf))
			if c.bad != (err != nil) || (err != nil && wire.KindOf(err) != wire.KindInvalid) {
				t.Fatalf("err %v (kind %q), want bad=%v as invalid", err, wire.KindOf(err), c.bad)
			}
			for _, p := range c.exists {
				if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
					t.Errorf("%s: %v", p, err)
				}
			}
			for _, p := range c.absent {
				if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
					t.Errorf("%s was made", p)
				}
			}
		})
	}
}

// TestExtractReadOnly: a write a read-only mount refuses is a client
// error in dockerd's words, for the root and for a volume.
func TestExtractReadOnly(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(dir, "dst", "vol")
	os.MkdirAll(vol, 0o755)
	if err := unix.Mount("tmpfs", vol, "tmpfs", unix.MS_RDONLY, ""); err != nil {
		prereq.Missing(t, "mount: %v", err)
	}
	defer unix.Unmount(vol, unix.MNT_DETACH)
	ro := t.TempDir()
	os.MkdirAll(filepath.Join(ro, "dst"), 0o755)
	if err := unix.Mount(ro, ro, "", unix.MS_BIND, ""); err != nil {
		prereq.Missing(t, "mount: %v", err)
	}
	defer unix.Unmount(ro, unix.MNT_DETACH)
	if err := unix.Mount("", ro, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		prereq.Missing(t, "mount: %v", err)
	}
	for _, c := range []struct{ root, dst, want string }{
		{dir, "/dst/vol", "mounted volume is marked read-only"},
		{ro, "/dst", "container rootfs is marked read-only"},
	} {
		root, err := openRootDir(c.root, "/proc")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
		tw.Write([]byte("y"))
		tw.Close()
		x := &extractor{root: root, dst: c.dst, uid: -1}
		err = x.run(tar.NewReader(&buf))
		root.close()
		if err == nil || err.Error() != c.want || wire.KindOf(err) != wire.KindInvalid {
			t.Errorf("%s: %v (kind %q), want invalid %q", c.dst, err, wire.KindOf(err), c.want)
		}
	}
}

// TestExtractErrnoKinds: what a destination cannot hold is the client's
// error, not the agent's.
func TestExtractErrnoKinds(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "dst"), 0o755)
	root, err := openRootDir(dir, "/proc")
	if err != nil {
		t.Fatal(err)
	}
	defer root.close()
	for _, name := range []string{strings.Repeat("n", 300), strings.Repeat("d/", 2100) + "f"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
		tw.Write([]byte("y"))
		tw.Close()
		x := &extractor{root: root, dst: "/dst", uid: -1}
		if err := x.run(tar.NewReader(&buf)); wire.KindOf(err) != wire.KindInvalid {
			t.Errorf("%.20s...: %v (kind %q), want invalid", name, err, wire.KindOf(err))
		}
	}
}
