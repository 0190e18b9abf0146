package agent

import (
	"context"
	"errors"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/guest/wire"
)

// initPaths are what the agent itself puts in every rootfs (mount points
// for the kernel filesystems and the files it binds over /etc). dockerd
// keeps their like in an init layer below the container's, so docker diff
// never lists them; neither do we.
var initPaths = map[string]bool{
	"/proc": true, "/sys": true, "/dev": true, "/.dockerenv": true,
	"/etc/hosts": true, "/etc/hostname": true, "/etc/resolv.conf": true, "/etc/mtab": true,
}

// Changes implements wire.Handler: it walks the writable layer against
// the image's layers (top first), as overlayfs merges them. A path only in
// the writable layer is added, a whiteout over an image path deleted,
// anything else there modified; a directory counts as modified when
// something beneath it changed or its own mode or owner did (its mtime
// changes with every copy-up, so it is not a sign).
func (a *Agent) Changes(ctx context.Context, emit func(wire.Change) error) error {
	if a.upper == nil {
		return nil // read-only rootfs: nothing can differ
	}
	if a.lowersErr != nil {
		return a.lowersErr
	}
	lowers := make([]int, len(a.lowers))
	for i, f := range a.lowers {
		lowers[i] = int(f.Fd())
	}
	w := changeWalk{ctx: ctx, emit: emit}
	_, err := w.dir(int(a.upper.Fd()), lowers, "/")
	return err
}

type changeWalk struct {
	ctx  context.Context
	emit func(wire.Change) error
}

// dir reports the changes under the upper directory ufd, whose image
// counterparts are the directories lowers (top first; -1 where a layer has
// none). It says whether it reported anything.
func (w *changeWalk) dir(ufd int, lowers []int, dirPath string) (bool, error) {
	names, err := readNames(ufd)
	if err != nil {
		return false, err
	}
	found := false
	for _, name := range names {
		if err := w.ctx.Err(); err != nil {
			return found, err
		}
		p := path.Join(dirPath, name)
		if initPaths[p] {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(ufd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone since the listing
		}
		lower, inImage := lookupLower(lowers, name)
		if isWhiteout(&st) {
			if inImage {
				if err := w.emit(wire.Change{Path: p, Kind: wire.ChangeDeleted}); err != nil {
					return found, err
				}
				found = true
			}
			continue
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if !inImage || !isDir || lower.Mode&unix.S_IFMT != unix.S_IFDIR {
			kind := wire.ChangeModified
			if !inImage {
				kind = wire.ChangeAdded
			}
			if err := w.emit(wire.Change{Path: p, Kind: kind}); err != nil {
				return found, err
			}
			found = true
			if isDir { // all of it is new
				if _, err := w.subdir(ufd, name, nil, p); err != nil {
					return found, err
				}
			}
			continue
		}
		fd, err := openDir(ufd, name)
		if err != nil {
			continue // gone since the listing
		}
		opaque := isOpaque(fd)
		var sub []int
		if !opaque {
			sub = openLowerDirs(lowers, name)
		}
		below, err := w.dir(fd, sub, p)
		closeAll(sub)
		unix.Close(fd)
		if err != nil {
			return found, err
		}
		if below || opaque || st.Mode != lower.Mode || st.Uid != lower.Uid || st.Gid != lower.Gid {
			if err := w.emit(wire.Change{Path: p, Kind: wire.ChangeModified}); err != nil {
				return found, err
			}
			found = true
		}
		found = found || below
	}
	return found, nil
}

// subdir walks the upper directory name inside ufd (dir reports what);
// with no lowers, everything in it is reported as added.
func (w *changeWalk) subdir(ufd int, name string, lowers []int, p string) (bool, error) {
	fd, err := openDir(ufd, name)
	if err != nil {
		return false, nil // gone since the listing
	}
	defer unix.Close(fd)
	return w.dir(fd, lowers, p)
}

// lookupLower finds name in the image's layers, top first: the first layer
// that has it decides, and a whiteout there means the image has none.
func lookupLower(lowers []int, name string) (unix.Stat_t, bool) {
	for _, fd := range lowers {
		if fd < 0 {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		return st, !isWhiteout(&st)
	}
	return unix.Stat_t{}, false
}

// openLowerDirs opens name in each layer as overlayfs would merge it: a
// layer whose entry is not a directory (a whiteout among them) or is an
// opaque directory hides every layer below it.
func openLowerDirs(lowers []int, name string) []int {
	sub := make([]int, len(lowers))
	for i := range sub {
		sub[i] = -1
	}
	for i, fd := range lowers {
		if fd < 0 {
			continue
		}
		d, err := openDir(fd, name)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			break // not a directory, or a symlink: it hides the rest
		}
		sub[i] = d
		if isOpaque(d) {
			break
		}
	}
	return sub
}

// openDir opens the directory name in dirfd, never through a symlink.
func openDir(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

func closeAll(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// isWhiteout tells overlayfs's mark for a deleted entry: a character
// device 0:0.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// isOpaque tells a directory (open as fd) that hides the layers below it.
func isOpaque(fd int) bool {
	buf := make([]byte, 4)
	n, err := unix.Fgetxattr(fd, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

func readNames(dfd int) ([]string, error) {
	d, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(d), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}
