package layers

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/arcavm/arca/internal/tarentry"

	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	// aufs bookkeeping (".wh..wh.plnk", ".wh..wh.aufs") means nothing to
	// overlayfs; the opaque marker is the one such name that does
	whiteoutMetaPrefix = ".wh..wh."
	opaqueMarker       = ".wh..wh..opq"
	xattrPAXPrefix     = "SCHILY.xattr."
	overlayXattrPrefix = "trusted.overlay."
)

type dirTimes struct {
	rel          string
	atime, mtime unix.Timespec
}

// unpacker writes one layer tar into a directory it alone owns. Every entry
// is created with *at calls relative to a directory fd reached by walking
// real directories with O_NOFOLLOW, so no symlink in the tar, wherever it
// points, is ever followed.
type unpacker struct {
	rootPath string
	root     int // fd of rootPath
	buf      []byte
	dirs     []dirTimes // applied last: creating children changes a dir's mtime
}

// A layer is held unpacked, in overlayfs form.
const (
	payloadName  = "diff"
	payloadIsDir = true
)

// unpackTar unpacks the tar r into the new directory dir.
func unpackTar(dir string, r io.Reader) (int64, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, err
	}
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(root)
	u := &unpacker{rootPath: dir, root: root, buf: make([]byte, 128<<10)}

	var size int64
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read tar: %w", err)
		}
		n, err := u.entry(hdr, tr)
		if err != nil {
			return 0, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		size += n
	}
	// in tar order, so a repeated directory entry's last word wins
	for _, d := range u.dirs {
		if err := u.applyDirTimes(d); err != nil {
			return 0, err
		}
	}
	return size, nil
}

// cleanName turns a tar entry name into a path relative to the layer root.
// Rooted names are taken as relative to the layer, as Docker does; names
// that climb out of it are refused.
func cleanName(name string) (string, error) {
	p := path.Clean(name)
	p = strings.TrimLeft(p, "/")
	if p == "" {
		p = "."
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("path %q escapes the layer", name)
	}
	return p, nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) (int64, error) {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return 0, err
	}
	for _, c := range strings.Split(rel, "/") {
		if strings.HasPrefix(c, whiteoutMetaPrefix) && c != opaqueMarker {
			return 0, nil
		}
	}
	parent, base, err := u.openParent(rel)
	if err != nil {
		return 0, err
	}
	defer unix.Close(parent)

	if base == opaqueMarker {
		if err := unix.Fsetxattr(parent, overlayXattrPrefix+"opaque", []byte("y"), 0); err != nil {
			return 0, fmt.Errorf("mark opaque: %w", err)
		}
		return 0, nil
	}
	if name, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		return 0, u.whiteout(parent, name)
	}

	var size int64
	switch hdr.Typeflag {
	case tar.TypeDir:
		isDir, err := u.removeExisting(parent, rel, base, true)
		if err != nil {
			return 0, err
		}
		if !isDir {
			if err := unix.Mkdirat(parent, base, 0o700); err != nil {
				return 0, fmt.Errorf("mkdir: %w", err)
			}
		}
	case tar.TypeReg, tar.TypeGNUSparse:
		if tarentry.Sparse(hdr) {
			return 0, fmt.Errorf("%s is a sparse file, which Arca does not unpack (its size is the archive's word only)", hdr.Name)
		}
		if _, err := u.removeExisting(parent, rel, base, false); err != nil {
			return 0, err
		}
		if err := u.writeFile(parent, base, r); err != nil {
			return 0, err
		}
		size = hdr.Size
	case tar.TypeSymlink:
		if _, err := u.removeExisting(parent, rel, base, false); err != nil {
			return 0, err
		}
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return 0, fmt.Errorf("symlink: %w", err)
		}
	case tar.TypeLink:
		if _, err := u.removeExisting(parent, rel, base, false); err != nil {
			return 0, err
		}
		// the inode and its metadata are the target's; nothing more to set
		return 0, u.hardlink(parent, base, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if _, err := u.removeExisting(parent, rel, base, false); err != nil {
			return 0, err
		}
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(parent, base, kind|0o600, int(dev)); err != nil {
			return 0, fmt.Errorf("mknod: %w", err)
		}
	case tar.TypeXGlobalHeader:
		return 0, nil
	default:
		return 0, fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	return size, u.setMetadata(parent, rel, base, hdr)
}

// openParent walks to the directory holding rel's last component, creating
// missing directories (tars often omit them) and refusing symlinks on the way.
// It returns a fd the caller closes and the last component ("." for the root).
func (u *unpacker) openParent(rel string) (int, string, error) {
	cur, err := unix.Openat(u.root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("open layer root: %w", err)
	}
	if rel == "." {
		return cur, ".", nil
	}
	parts := strings.Split(rel, "/")
	for i, c := range parts[:len(parts)-1] {
		next, err := unix.Openat(cur, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(cur, c, 0o755); err == nil {
				next, err = unix.Openat(cur, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if err != nil {
			prefix := strings.Join(parts[:i+1], "/")
			var st unix.Stat_t
			if unix.Fstatat(cur, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = errors.New("it is a symlink, which is never followed while unpacking")
			}
			unix.Close(cur)
			return -1, "", fmt.Errorf("parent %q: %w", prefix, err)
		}
		unix.Close(cur)
		cur = next
	}
	return cur, parts[len(parts)-1], nil
}

// removeExisting clears the way for a new entry. A directory is kept when
// keepDir is set (a dir entry over a dir only updates its metadata); anything
// else, a symlink above all, is removed rather than written through.
func (u *unpacker) removeExisting(parent int, rel, base string, keepDir bool) (isDir bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if keepDir {
			return true, nil
		}
		if rel == "." {
			return false, errors.New("cannot replace the layer root")
		}
		// the walk to here went through real directories only, and no one
		// else writes this private tree, so the path names what parent does
		if err := os.RemoveAll(filepath.Join(u.rootPath, rel)); err != nil {
			return false, fmt.Errorf("replace directory: %w", err)
		}
		return false, nil
	}
	if err := unix.Unlinkat(parent, base, 0); err != nil {
		return false, fmt.Errorf("replace: %w", err)
	}
	return false, nil
}

func (u *unpacker) writeFile(parent int, base string, r io.Reader) error {
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	if _, err := io.CopyBuffer(f, r, u.buf); err != nil {
		f.Close()
		return fmt.Errorf("write: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// hardlink links to an entry already unpacked in this layer. The target is
// resolved like any entry name, inside the layer, without following symlinks;
// linkat without AT_SYMLINK_FOLLOW links a symlink itself, not what it names.
func (u *unpacker) hardlink(parent int, base, linkname string) error {
	target, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	if target == "." {
		return fmt.Errorf("hardlink target %q is the layer root", linkname)
	}
	tparent, tbase, err := u.openParent(target)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	defer unix.Close(tparent)
	if err := unix.Linkat(tparent, tbase, parent, base, 0); err != nil {
		return fmt.Errorf("hardlink to %q: %w", linkname, err)
	}
	return nil
}

// whiteout turns ".wh.NAME" into overlayfs's mark of a deleted NAME: a 0:0
// character device. A NAME this very layer already holds stays, since a
// whiteout hides only what lies below.
func (u *unpacker) whiteout(parent int, name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout name %q", whiteoutPrefix+name)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		return nil
	}
	if err := unix.Mknodat(parent, name, unix.S_IFCHR, int(unix.Mkdev(0, 0))); err != nil {
		return fmt.Errorf("whiteout %q: %w", name, err)
	}
	if err := unix.Fchownat(parent, name, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("whiteout %q: %w", name, err)
	}
	return nil
}

func (u *unpacker) setMetadata(parent int, rel, base string, hdr *tar.Header) error {
	if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	isLink := hdr.Typeflag == tar.TypeSymlink
	if !isLink {
		// after chown, which clears set-id bits
		if err := unix.Fchmodat(parent, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	for key, value := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, xattrPAXPrefix)
		// overlayfs's own attributes (opaque, redirect, metacopy) come only
		// from whiteout conversion, never from a layer's say-so
		if !ok || strings.HasPrefix(name, overlayXattrPrefix) {
			continue
		}
		p := fmt.Sprintf("/proc/self/fd/%d/%s", parent, base)
		if err := unix.Lsetxattr(p, name, []byte(value), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				continue // the host file system cannot hold it; as Docker, go on
			}
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	mtime := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	atime := mtime
	if !hdr.AccessTime.IsZero() {
		atime = unix.NsecToTimespec(hdr.AccessTime.UnixNano())
	}
	if hdr.Typeflag == tar.TypeDir {
		u.dirs = append(u.dirs, dirTimes{rel: rel, atime: atime, mtime: mtime})
		return nil
	}
	if err := unix.UtimesNanoAt(parent, base, []unix.Timespec{atime, mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// applyDirTimes skips a directory that a later entry replaced, with a file
// or with a symlink on its path: its times no longer belong to anything.
func (u *unpacker) applyDirTimes(d dirTimes) error {
	parent, base, err := u.openParent(d.rel)
	if err != nil {
		return nil
	}
	defer unix.Close(parent)
	var st unix.Stat_t
	if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	if err := unix.UtimesNanoAt(parent, base, []unix.Timespec{d.atime, d.mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("dir times %q: %w", d.rel, err)
	}
	return nil
}

// syncTree makes an unpacked layer durable before it is renamed into place;
// one syncfs is far cheaper than an fsync per file.
func syncTree(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}
