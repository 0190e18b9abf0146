package ext4

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/arcavm/arca/internal/testenv"
	"github.com/arcavm/arca/persistence/layers"
)

// tarLayer writes a layer tar of hdrs (a regular file's content is its
// name repeated to its Size) and returns its path.
func tarLayer(t *testing.T, hdrs []*tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.ModTime.IsZero() {
			h.ModTime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte(h.Name), int(h.Size)/len(h.Name)+1)[:h.Size])
		}
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "layer.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

// sameTree reports where a and b differ below dir, content included
// (atimes and the root's own metadata aside: the unpacked root is a
// directory the store made).
func sameTree(t *testing.T, dir string, a, b *node) {
	t.Helper()
	if dir != "/" {
		ea, eb := a.Entry, b.Entry
		if ea.Mode != eb.Mode || ea.UID != eb.UID || ea.GID != eb.GID || !ea.MTime.Equal(eb.MTime) ||
			ea.Size != eb.Size || ea.Target != eb.Target || ea.Major != eb.Major || ea.Minor != eb.Minor {
			t.Errorf("%s: unpacked %+v, from the tar %+v", dir, ea, eb)
			return
		}
		if fmt.Sprint(ea.Xattrs) != fmt.Sprint(eb.Xattrs) {
			t.Errorf("%s: xattrs %q vs %q", dir, ea.Xattrs, eb.Xattrs)
		}
		if ea.fileType() == TypeRegular && ea.Size > 0 {
			read := func(e Entry) []byte {
				r, err := e.Open()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				b, _ := io.ReadAll(r)
				return b
			}
			if !bytes.Equal(read(ea), read(eb)) {
				t.Errorf("%s: contents differ", dir)
			}
		}
	}
	var na, nb []string
	for k := range a.children {
		na = append(na, k)
	}
	for k := range b.children {
		nb = append(nb, k)
	}
	slices.Sort(na)
	slices.Sort(nb)
	if !slices.Equal(na, nb) {
		t.Errorf("%s: unpacked has %q, from the tar %q", dir, na, nb)
		return
	}
	for _, k := range na {
		sameTree(t, filepath.Join(dir, k), a.children[k], b.children[k])
	}
}

// A tree made straight from layer tars (as on a Mac) is the one made from
// the same layers unpacked by the layer store (as on Linux): whiteouts,
// opaque directories, hard links, devices, owners, modes, xattrs.
func TestAddTarFile(t *testing.T) {
	testenv.RequireRoot(t)
	d := func(name string, mode int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}
	}
	f := func(name string, size, mode int64, uid int) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: mode, Uid: uid, Gid: uid}
	}
	base := []*tar.Header{
		d("etc/", 0o755), f("etc/passwd", 300, 0o644, 0), f("etc/shadow", 40, 0o640, 0), f("etc/gone", 5, 0o644, 0),
		d("var/", 0o755), d("var/cache/", 0o755), f("var/cache/stale", 9000, 0o644, 0), d("var/cache/sub/", 0o700),
		d("bin/", 0o755), f("bin/busybox", 70000, 0o4755, 0),
		{Typeflag: tar.TypeLink, Name: "bin/sh", Linkname: "bin/busybox"},
		{Typeflag: tar.TypeSymlink, Name: "bin/ls", Linkname: "busybox"},
		d("dev/", 0o755), {Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Typeflag: tar.TypeFifo, Name: "dev/fifo", Mode: 0o600},
		d("home/", 0o755), d("home/user/", 0o750), f("home/user/.profile", 12, 0o644, 1000),
		{Typeflag: tar.TypeReg, Name: "bin/ping", Mode: 0o755, Size: 10,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
	}
	top := []*tar.Header{
		d("etc/", 0o755), {Typeflag: tar.TypeReg, Name: "etc/.wh.gone"}, f("etc/passwd", 350, 0o644, 0),
		d("var/", 0o755), d("var/cache/", 0o755), {Typeflag: tar.TypeReg, Name: "var/cache/.wh..wh..opq"}, f("var/cache/fresh", 3, 0o644, 0),
		d("home/", 0o755), {Typeflag: tar.TypeReg, Name: "home/.wh.user"},
		d("opt/", 0o755), f("opt/"+string(bytes.Repeat([]byte("n"), 150)), 1, 0o644, 0), // a PAX long name
	}
	tars := []string{tarLayer(t, base), tarLayer(t, top)}

	store, err := layers.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	unpacked, fromTar := NewTree(), NewTree()
	for i, p := range tars {
		b, _ := os.ReadFile(p)
		chain := digest.FromBytes(append(b, byte(i)))
		if _, err := store.Unpack(chain, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		if err := unpacked.AddDir(store.Dir(chain)); err != nil {
			t.Fatal(err)
		}
		if err := fromTar.AddTarFile(p); err != nil {
			t.Fatal(err)
		}
	}
	sameTree(t, "/", unpacked.root, fromTar.root)
	if sh, bb := fromTar.root.children["bin"].children["sh"], fromTar.root.children["bin"].children["busybox"]; sh != bb {
		t.Error("the hard link is a copy")
	}
	if _, err := fromTar.lookup("/home/user"); err == nil {
		t.Error("a whited-out directory is still there")
	}
	img := filepath.Join(t.TempDir(), "image.ext4")
	if err := WriteFile(img, fromTar, Options{}); err != nil {
		t.Fatal(err)
	}
	fsck(t, img)
}
