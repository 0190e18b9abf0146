//go:build unix

package ext4

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// AddDir applies the host directory dir to the tree at its root, as one
// layer: what is in dir is added over what the tree has, and overlayfs
// whiteouts (a 0:0 character device, a directory with the xattr
// trusted.overlay.opaque=y) remove what lower layers put there, as the
// layer store unpacks them. Hard links within dir stay hard links. The
// files are read when the image is written.
func (t *Tree) AddDir(dir string) error {
	links := map[[2]uint64]string{} // (dev, ino) -> first path in the tree
	root, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("ext4 tree: %w", err)
	}
	if !root.IsDir() {
		return fmt.Errorf("ext4 tree: %s is not a directory", dir)
	}
	re, err := hostEntry(dir, root)
	if err != nil {
		return err
	}
	if err := t.SetRoot(re); err != nil {
		return err
	}
	if opaque(dir) {
		t.Clear("/")
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("ext4 tree: %w", err)
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := "/" + filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("ext4 tree: %w", err)
		}
		st, _ := info.Sys().(*syscall.Stat_t)
		if st == nil {
			return fmt.Errorf("ext4 tree: %s: no stat", p)
		}
		if info.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			return t.Remove(name) // an overlayfs whiteout
		}
		if !info.IsDir() && st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
			if first, ok := links[key]; ok {
				return t.Link(name, first)
			}
			links[key] = name
		}
		e, err := hostEntry(p, info)
		if err != nil {
			return err
		}
		if info.IsDir() && opaque(p) {
			t.Remove(name)
		}
		return t.Add(name, e)
	})
}

// hostEntry turns a host file's lstat into an Entry; a regular file's
// content is opened when the image is written.
func hostEntry(p string, info fs.FileInfo) (Entry, error) {
	st := info.Sys().(*syscall.Stat_t)
	e := Entry{
		Mode: uint32(st.Mode),
		UID:  st.Uid,
		GID:  st.Gid,
		// Access times are not kept: they differ by OS in stat, and an
		// image's say nothing.
		MTime: info.ModTime(),
	}
	x, err := hostXattrs(p)
	if err != nil {
		return Entry{}, err
	}
	e.Xattrs = x
	switch e.fileType() {
	case TypeRegular:
		e.Size = info.Size()
		e.Open = func() (io.ReadCloser, error) { return os.Open(p) }
	case TypeSymlink:
		target, err := os.Readlink(p)
		if err != nil {
			return Entry{}, fmt.Errorf("ext4 tree: %w", err)
		}
		e.Target = target
	case TypeChar, TypeBlock:
		e.Major, e.Minor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	}
	return e, nil
}

// hostXattrs reads p's extended attributes, less the layer store's own
// overlayfs markers (a flattened image has no use for them).
func hostXattrs(p string) (map[string][]byte, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		return nil, nil // none, or a filesystem without them
	}
	names := make([]byte, size)
	if size, err = unix.Llistxattr(p, names); err != nil {
		return nil, fmt.Errorf("ext4 tree: list xattrs of %s: %w", p, err)
	}
	var out map[string][]byte
	for _, name := range strings.Split(string(names[:size]), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		n, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, fmt.Errorf("ext4 tree: xattr %s of %s: %w", name, p, err)
		}
		v := make([]byte, n)
		if n, err = unix.Lgetxattr(p, name, v); err != nil {
			return nil, fmt.Errorf("ext4 tree: xattr %s of %s: %w", name, p, err)
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[name] = v[:n]
	}
	return out, nil
}

// opaque says whether dir is an overlayfs opaque directory.
func opaque(dir string) bool {
	var b [1]byte
	n, err := unix.Lgetxattr(dir, "trusted.overlay.opaque", b[:])
	return err == nil && n == 1 && b[0] == 'y'
}
