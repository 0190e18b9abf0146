package agent

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/guest/wire"
)

// OCI whiteouts: a deleted name, and a directory that hides what the
// layers below hold under it.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Export implements wire.Handler.
func (a *Agent) Export(ctx context.Context, what wire.ExportKind) (func(io.Writer) error, error) {
	switch what {
	case wire.ExportRootfs:
		return a.exportRootfs()
	case wire.ExportLayer:
		upper, proc := a.upper, a.procDir
		if proc == "" {
			proc = "/proc"
		}
		if upper == nil {
			return nil, wire.Errorf(wire.KindConflict, "container has no writable layer")
		}
		fd, err := unix.Openat(int(upper.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open writable layer: %w", err)
		}
		return func(w io.Writer) error {
			defer unix.Close(fd)
			return writeLayer(ctx, w, fd, proc)
		}, nil
	}
	return nil, wire.Errorf(wire.KindInvalid, "unknown export %q", what)
}

// exportRootfs tars a clone of the rootfs mount alone: a clone that is not
// recursive leaves out every mount made over it (/proc, /sys, /dev,
// volumes, binds, the /etc files), which is what dockerd's export of the
// container's layer mount shows, without touching the container's view.
func (a *Agent) exportRootfs() (func(io.Writer) error, error) {
	root, rootPath, err := a.containerRoot()
	if err != nil {
		return nil, err
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, rootPath, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("clone rootfs mount: %w", err)
	}
	return func(w io.Writer) error {
		defer unix.Close(fd) // the detached clone goes with its last descriptor
		tw := tar.NewWriter(w)
		t := &tarrer{tw: tw, root: root, links: map[[2]uint64]string{}}
		names, err := readNames(fd)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		sort.Strings(names)
		for _, n := range names {
			cfd, err := unix.Openat(fd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // gone meanwhile
			}
			err = t.add(cfd, n)
			unix.Close(cfd)
			if err != nil {
				return err
			}
		}
		return tw.Close()
	}, nil
}

// writeLayer writes the writable layer open as dirfd as a layer tar:
// overlayfs's whiteouts (0:0 character devices) become ".wh." files, its
// opaque directories a ".wh..wh..opq" entry, and the agent's own files
// (initPaths) are left out, as dockerd's init layer keeps them out of a
// commit. proc is the agent's procfs, to reopen files by descriptor.
func writeLayer(ctx context.Context, w io.Writer, dirfd int, proc string) error {
	tw := tar.NewWriter(w)
	lw := &layerWalk{ctx: ctx, t: &tarrer{tw: tw, root: &rootDir{proc: proc}, links: map[[2]uint64]string{}}}
	if err := lw.dir(dirfd, ""); err != nil {
		return err
	}
	return tw.Close()
}

type layerWalk struct {
	ctx context.Context
	t   *tarrer
}

// dir writes what is below the upper directory dfd, whose path in the
// layer is rel ("" for the root).
func (w *layerWalk) dir(dfd int, rel string) error {
	names, err := readNames(dfd)
	if err != nil {
		return fmt.Errorf("layer %s: %w", rel, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		name := n
		if rel != "" {
			name = rel + "/" + n
		}
		if initPaths["/"+name] {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone since the listing
		}
		if isWhiteout(&st) {
			hdr := &tar.Header{
				Typeflag: tar.TypeReg, Name: path.Join(rel, whiteoutPrefix+n),
				ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX,
			}
			if err := w.t.tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			cfd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			err = w.t.add(cfd, name)
			unix.Close(cfd)
			if err != nil {
				return err
			}
			continue
		}
		cfd, err := openDir(dfd, n)
		if err != nil {
			continue
		}
		err = w.subdir(cfd, &st, name)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// subdir writes the directory fd (stat st) as name, its opaque mark and
// its contents.
func (w *layerWalk) subdir(fd int, st *unix.Stat_t, name string) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeDir, Name: strings.TrimSuffix(name, "/") + "/",
		Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX,
	}
	if err := w.t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if isOpaque(fd) {
		wh := &tar.Header{Typeflag: tar.TypeReg, Name: name + "/" + whiteoutOpaque, ModTime: hdr.ModTime, Format: tar.FormatPAX}
		if err := w.t.tw.WriteHeader(wh); err != nil {
			return err
		}
	}
	return w.dir(fd, name)
}
