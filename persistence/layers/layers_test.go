package layers

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/prereq"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func TestChainID(t *testing.T) {
	tests := []struct {
		name           string
		parent, diffID digest.Digest
		want           digest.Digest
	}{
		{"base layer is its diff id", "", "sha256:bbbb", "sha256:bbbb"},
		// sha256 of "sha256:aaaa sha256:bbbb", computed with sha256sum
		{"child", "sha256:aaaa", "sha256:bbbb", "sha256:2c4d8760379f05d0ad1ed610712309f0114e7345e6e6a351494cff030ffdf197"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChainID(tt.parent, tt.diffID); got != tt.want {
				t.Errorf("ChainID = %s, want %s", got, tt.want)
			}
		})
	}
	ids := ChainIDs([]digest.Digest{"sha256:aaaa", "sha256:bbbb"})
	if ids[0] != "sha256:aaaa" || ids[1] != tests[1].want {
		t.Errorf("ChainIDs = %v", ids)
	}
}

func tarOf(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if h.Typeflag == tar.TypeReg && h.Size == 0 && h.Linkname != "" {
			// test shorthand: Linkname carries a regular file's content
			h.Size = int64(len(h.Linkname))
		}
		content := ""
		if h.Typeflag == tar.TypeReg {
			content = h.Linkname
			h.Linkname = ""
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if content != "" {
			if _, err := tw.Write([]byte(content)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(name, content string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Linkname: content, Mode: mode}
}

func dir(name string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}
}

func symlink(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}
}

func hardlink(name, target string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "unpacking owners, devices and trusted xattrs needs root")
	}
}

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func lstat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func TestUnpackPreservesEverything(t *testing.T) {
	needRoot(t)
	s, _ := openStore(t)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	suid := file("usr/bin/su", "setuid", 0o4755)
	suid.Uid, suid.Gid = 1000, 1001
	suid.ModTime = mtime
	withXattr := file("etc/cap", "capable", 0o644)
	withXattr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.note":                "kept",
		"SCHILY.xattr.trusted.overlay.redirect": "/elsewhere",
	}
	etc := dir("etc/", 0o750)
	etc.ModTime = mtime
	link := symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
	link.Uid, link.Gid = 7, 8
	link.ModTime = mtime
	tarball := tarOf(t,
		dir("./", 0o755),
		etc,
		file("etc/hosts", "127.0.0.1 localhost\n", 0o644),
		withXattr,
		link,
		hardlink("etc/hosts.hard", "etc/hosts"),
		suid,
		&tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3},
		&tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop0", Mode: 0o660, Devmajor: 7, Devminor: 0},
		&tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o620},
		file("deep/implicit/parents/f", "x", 0o600),
	)
	chain := digest.FromBytes(tarball)
	size, err := s.Unpack(chain, bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	want := int64(len("127.0.0.1 localhost\n") + len("capable") + len("setuid") + 1)
	if size != want {
		t.Errorf("size = %d, want %d", size, want)
	}
	if got, err := s.Size(chain); err != nil || got != want {
		t.Errorf("Size = %d, %v", got, err)
	}
	root := s.Dir(chain)
	if !s.Has(chain) || filepath.Base(root) != "diff" {
		t.Fatalf("Has = false or Dir = %s", root)
	}

	fi := lstat(t, filepath.Join(root, "usr/bin/su"))
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 || st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("su: mode %v owner %d:%d", fi.Mode(), st.Uid, st.Gid)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("su mtime %v", fi.ModTime())
	}
	if fi := lstat(t, filepath.Join(root, "etc")); fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(mtime) {
		t.Errorf("etc: mode %v mtime %v (children must not disturb it)", fi.Mode(), fi.ModTime())
	}
	fi = lstat(t, filepath.Join(root, "etc/localtime"))
	st = fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSymlink == 0 || st.Uid != 7 || st.Gid != 8 || !fi.ModTime().Equal(mtime) {
		t.Errorf("symlink: %v %d:%d %v", fi.Mode(), st.Uid, st.Gid, fi.ModTime())
	}
	if target, _ := os.Readlink(filepath.Join(root, "etc/localtime")); target != "/usr/share/zoneinfo/UTC" {
		t.Errorf("symlink target %q", target)
	}
	a := lstat(t, filepath.Join(root, "etc/hosts")).Sys().(*syscall.Stat_t)
	b := lstat(t, filepath.Join(root, "etc/hosts.hard")).Sys().(*syscall.Stat_t)
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hardlink: inodes %d %d nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	for name, want := range map[string]struct {
		mode         os.FileMode
		major, minor uint32
	}{
		"dev/null":  {os.ModeDevice | os.ModeCharDevice | 0o666, 1, 3},
		"dev/loop0": {os.ModeDevice | 0o660, 7, 0},
		"run/fifo":  {os.ModeNamedPipe | 0o620, 0, 0},
	} {
		fi := lstat(t, filepath.Join(root, name))
		rdev := uint64(fi.Sys().(*syscall.Stat_t).Rdev)
		if fi.Mode() != want.mode || unix.Major(rdev) != want.major || unix.Minor(rdev) != want.minor {
			t.Errorf("%s: mode %v dev %d:%d", name, fi.Mode(), unix.Major(rdev), unix.Minor(rdev))
		}
	}
	if v := getxattr(t, filepath.Join(root, "etc/cap"), "user.note"); v != "kept" {
		t.Errorf("user.note = %q", v)
	}
	if v := getxattr(t, filepath.Join(root, "etc/cap"), "trusted.overlay.redirect"); v != "" {
		t.Errorf("overlay xattr from the tar was applied: %q", v)
	}
	if fi := lstat(t, filepath.Join(root, "deep/implicit")); !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("implicit parent: %v", fi.Mode())
	}
}

func getxattr(t *testing.T, p, name string) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func TestWhiteouts(t *testing.T) {
	needRoot(t)
	s, _ := openStore(t)
	tarball := tarOf(t,
		dir("etc/", 0o755),
		file("etc/.wh.shadow", "", 0o600),
		dir("var/cache/", 0o755),
		file("var/cache/.wh..wh..opq", "", 0o600),
		file("var/cache/new", "fresh", 0o644),
		file("kept", "same layer", 0o644),
		file(".wh.kept", "", 0o600),
		dir(".wh..wh.plnk/", 0o700),
		file(".wh..wh.plnk/1234.5", "aufs", 0o600),
	)
	chain := digest.FromBytes(tarball)
	if _, err := s.Unpack(chain, bytes.NewReader(tarball)); err != nil {
		t.Fatal(err)
	}
	root := s.Dir(chain)
	fi := lstat(t, filepath.Join(root, "etc/shadow"))
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeCharDevice == 0 || st.Rdev != 0 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("whiteout: mode %v rdev %d owner %d:%d", fi.Mode(), st.Rdev, st.Uid, st.Gid)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/.wh.shadow")); err == nil {
		t.Error(".wh. file kept as is")
	}
	if v := getxattr(t, filepath.Join(root, "var/cache"), "trusted.overlay.opaque"); v != "y" {
		t.Errorf("opaque xattr = %q", v)
	}
	if _, err := os.Lstat(filepath.Join(root, "var/cache/.wh..wh..opq")); err == nil {
		t.Error("opaque marker kept as a file")
	}
	if _, err := os.Lstat(filepath.Join(root, "var/cache/new")); err != nil {
		t.Error("same-layer child of an opaque dir lost")
	}
	if fi := lstat(t, filepath.Join(root, "kept")); !fi.Mode().IsRegular() {
		t.Error("a whiteout hid a file of its own layer")
	}
	if _, err := os.Lstat(filepath.Join(root, ".wh..wh.plnk")); err == nil {
		t.Error("aufs metadata unpacked")
	}
}

func TestHostileTars(t *testing.T) {
	needRoot(t)
	outside := t.TempDir() // stands for the host: nothing may change here
	hostFile := filepath.Join(outside, "passwd")
	if err := os.WriteFile(hostFile, []byte("root:x:0:0"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		entries []*tar.Header
		wantErr string
	}{
		{"dotdot file", []*tar.Header{file("../escape", "x", 0o644)}, "escapes"},
		{"dotdot inside", []*tar.Header{file("a/../../escape", "x", 0o644)}, "escapes"},
		{"dotdot dir", []*tar.Header{dir("../../x/", 0o755)}, "escapes"},
		{"write through absolute symlink", []*tar.Header{
			symlink("evil", outside), file("evil/pwned", "x", 0o644)}, "symlink"},
		{"write through relative symlink", []*tar.Header{
			symlink("evil", "../../../../../../../.."+outside), file("evil/pwned", "x", 0o644)}, "symlink"},
		{"dir through symlink", []*tar.Header{
			symlink("evil", outside), dir("evil/sub/", 0o755)}, "symlink"},
		{"hardlink to host file", []*tar.Header{hardlink("h", hostFile)}, "no such file"},
		{"hardlink escaping", []*tar.Header{hardlink("h", "../../../../../../.."+hostFile)}, "escapes"},
		{"hardlink through symlink", []*tar.Header{
			symlink("s", outside), hardlink("h", "s/passwd")}, "symlink"},
		{"whiteout through symlink", []*tar.Header{
			symlink("s", outside), file("s/.wh.passwd", "", 0o600)}, "symlink"},
		{"opaque through symlink", []*tar.Header{
			symlink("s", outside), file("s/.wh..wh..opq", "", 0o600)}, "symlink"},
		{"device through symlink", []*tar.Header{
			symlink("s", outside), {Typeflag: tar.TypeChar, Name: "s/null", Devmajor: 1, Devminor: 3}}, "symlink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, storeDir := openStore(t)
			tarball := tarOf(t, tt.entries...)
			chain := digest.FromBytes(tarball)
			_, err := s.Unpack(chain, bytes.NewReader(tarball))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
			if s.Has(chain) {
				t.Error("a failed unpack left a layer")
			}
			entries, _ := os.ReadDir(storeDir)
			if len(entries) != 0 {
				t.Errorf("left %d entries in the store", len(entries))
			}
			assertUntouched(t, outside, hostFile)
		})
	}
}

func assertUntouched(t *testing.T, outside, hostFile string) {
	t.Helper()
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("host dir now holds %d entries", len(entries))
	}
	fi := lstat(t, hostFile)
	if st := fi.Sys().(*syscall.Stat_t); st.Nlink != 1 {
		t.Errorf("host file gained links: %d", st.Nlink)
	}
	if b, _ := os.ReadFile(hostFile); string(b) != "root:x:0:0" {
		t.Errorf("host file changed: %q", b)
	}
	if v := getxattr(t, outside, "trusted.overlay.opaque"); v != "" {
		t.Error("host dir marked opaque")
	}
}

// A symlink as the last component is replaced, never written through.
func TestSymlinkReplacedNotFollowed(t *testing.T) {
	needRoot(t)
	outside := t.TempDir()
	hostFile := filepath.Join(outside, "passwd")
	if err := os.WriteFile(hostFile, []byte("root:x:0:0"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		entry *tar.Header
		isDir bool
	}{
		{"file over symlink", file("passwd", "owned", 0o644), false},
		{"dir over symlink", dir("passwd/", 0o755), true},
		{"device over symlink", &tar.Header{Typeflag: tar.TypeChar, Name: "passwd", Devmajor: 1, Devminor: 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			tarball := tarOf(t, symlink("passwd", hostFile), tt.entry)
			chain := digest.FromBytes(tarball)
			if _, err := s.Unpack(chain, bytes.NewReader(tarball)); err != nil {
				t.Fatal(err)
			}
			fi := lstat(t, filepath.Join(s.Dir(chain), "passwd"))
			if fi.Mode()&os.ModeSymlink != 0 || fi.IsDir() != tt.isDir {
				t.Errorf("entry is %v", fi.Mode())
			}
			assertUntouched(t, outside, hostFile)
		})
	}
}

func TestReplaceDirWithFile(t *testing.T) {
	needRoot(t)
	s, _ := openStore(t)
	tarball := tarOf(t, dir("a/", 0o755), dir("a/b/", 0o755), file("a/b/c", "x", 0o644), file("a", "now a file", 0o644))
	chain := digest.FromBytes(tarball)
	if _, err := s.Unpack(chain, bytes.NewReader(tarball)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.Dir(chain), "a")); string(b) != "now a file" {
		t.Errorf("a = %q", b)
	}
}

func TestTruncatedTarLeavesNothing(t *testing.T) {
	needRoot(t)
	s, storeDir := openStore(t)
	tarball := tarOf(t, file("big", strings.Repeat("x", 10000), 0o644))
	chain := digest.FromBytes(tarball)
	if _, err := s.Unpack(chain, bytes.NewReader(tarball[:3000])); err == nil {
		t.Fatal("truncated tar unpacked")
	}
	if s.Has(chain) {
		t.Error("layer present")
	}
	if entries, _ := os.ReadDir(storeDir); len(entries) != 0 {
		t.Errorf("%d entries left", len(entries))
	}
}

// The diff ID covers the whole stream, the tar's trailing zero blocks
// included: Unpack must read to the end.
func TestUnpackDrainsStream(t *testing.T) {
	needRoot(t)
	s, _ := openStore(t)
	tarball := tarOf(t, file("f", "x", 0o644))
	tarball = append(tarball, make([]byte, 8192)...) // extra padding, as some tools write
	d := digest.SHA256.Digester()
	chain := digest.FromBytes(tarball)
	if _, err := s.Unpack(chain, io.TeeReader(bytes.NewReader(tarball), d.Hash())); err != nil {
		t.Fatal(err)
	}
	if d.Digest() != digest.FromBytes(tarball) {
		t.Error("stream not read to its end")
	}
}

func TestConcurrentUnpackSameChain(t *testing.T) {
	needRoot(t)
	s, storeDir := openStore(t)
	var entries []*tar.Header
	for i := range 200 {
		entries = append(entries, file("d/f"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+hex.EncodeToString([]byte{byte(i)}), "content", 0o644))
	}
	tarball := tarOf(t, entries...)
	chain := digest.FromBytes(tarball)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Unpack(chain, bytes.NewReader(tarball))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if !s.Has(chain) {
		t.Fatal("layer missing")
	}
	left, _ := os.ReadDir(storeDir)
	if len(left) != 1 {
		t.Errorf("want only the layer in the store, got %d entries", len(left))
	}
	files, _ := os.ReadDir(filepath.Join(s.Dir(chain), "d"))
	if len(files) != 200 {
		t.Errorf("got %d files", len(files))
	}
}

func TestRemove(t *testing.T) {
	needRoot(t)
	s, storeDir := openStore(t)
	tarball := tarOf(t, dir("ro/", 0o555), file("ro/f", "x", 0o444))
	chain := digest.FromBytes(tarball)
	if _, err := s.Unpack(chain, bytes.NewReader(tarball)); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(chain); err != nil {
		t.Fatal(err)
	}
	if s.Has(chain) {
		t.Error("still there")
	}
	if err := s.Remove(chain); err != nil {
		t.Errorf("removing a missing layer: %v", err)
	}
	if entries, _ := os.ReadDir(storeDir); len(entries) != 0 {
		t.Errorf("%d entries left", len(entries))
	}
}

func TestInvalidChainID(t *testing.T) {
	s, _ := openStore(t)
	for _, d := range []digest.Digest{"", "sha256:../../x", "md5:abcd"} {
		if s.Dir(d) != "" || s.Has(d) {
			t.Errorf("%q accepted", d)
		}
		if _, err := s.Unpack(d, bytes.NewReader(nil)); err == nil {
			t.Errorf("Unpack(%q) succeeded", d)
		}
		if err := s.Remove(d); err == nil {
			t.Errorf("Remove(%q) succeeded", d)
		}
	}
}

func TestOpenSweepsTemps(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, tempPrefix+"1", "diff"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("%d entries left", len(entries))
	}
}

func TestDecompress(t *testing.T) {
	plain := []byte("plain tar bytes, or anything else")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	var zs bytes.Buffer
	ze, _ := zstd.NewWriter(&zs)
	ze.Write(plain)
	ze.Close()
	// bz2.compress(b"hello bzip2") from Python
	bz, _ := hex.DecodeString("425a6839314159265359555a44f70000021980400010001264c0102000220069ea100305d3b62183c5dc914e14241556913dc0")
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"plain", plain, plain},
		{"gzip", gz.Bytes(), plain},
		{"zstd", zs.Bytes(), plain},
		{"bzip2", bz, []byte("hello bzip2")},
		{"plain starting like bzip2", []byte("BZh9 is a file name"), []byte("BZh9 is a file name")},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := Decompress(bytes.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got %q", got)
			}
		})
	}
	if _, err := Decompress(bytes.NewReader([]byte{0x1f, 0x8b, 0, 0})); err == nil {
		t.Error("broken gzip header accepted")
	}
}

func TestUnpackVerified(t *testing.T) {
	needRoot(t)
	tarball := tarOf(t, file("f", "content", 0o644))
	tests := []struct {
		name    string
		diffID  digest.Digest
		wantErr string
	}{
		{"matching diff id", digest.FromBytes(tarball), ""},
		{"lying diff id", digest.FromString("something else"), "diff id mismatch"},
		{"invalid diff id", "sha256:nope", "invalid diff id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, storeDir := openStore(t)
			chain := ChainID("", tt.diffID)
			if tt.diffID == "sha256:nope" {
				chain = digest.FromString("x")
			}
			_, err := s.UnpackVerified(chain, tt.diffID, bytes.NewReader(tarball))
			if tt.wantErr == "" {
				if err != nil || !s.Has(chain) {
					t.Fatalf("err %v, has %v", err, s.Has(chain))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if entries, _ := os.ReadDir(storeDir); len(entries) != 0 {
				t.Errorf("%d entries left", len(entries))
			}
		})
	}
}

// keepTar, the layer store of hosts that cannot unpack, keeps the tar
// byte for byte and counts its files; what is not a tar is refused (the
// store then drops the temporary directory it was kept in).
func TestKeepTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		size int
	}{{"a", 10}, {"dir/b", 5000}} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(f.size), Mode: 0o644})
		tw.Write(bytes.Repeat([]byte("x"), f.size))
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "a"})
	tw.Close()
	dir := t.TempDir()
	p := filepath.Join(dir, "diff.tar")
	n, err := keepTar(p, bytes.NewReader(buf.Bytes()))
	if err != nil || n != 5010 {
		t.Fatalf("keepTar = %d, %v; want 5010", n, err)
	}
	if kept, _ := os.ReadFile(p); !bytes.Equal(kept, buf.Bytes()) {
		t.Error("the kept tar differs from the stream")
	}
	bad := filepath.Join(dir, "bad.tar")
	if _, err := keepTar(bad, bytes.NewReader(bytes.Repeat([]byte("not a tar "), 100))); err == nil {
		t.Error("a stream that is no tar was kept")
	}
}
