package agent

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/arcavm/arca/internal/tarentry"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// Archive ops serve docker cp. Every path is resolved by openat2 with
// RESOLVE_IN_ROOT, and every file made or changed is named relative to a
// directory descriptor already resolved that way, without following its
// last component: whatever names, links or symlinks an archive or the
// container holds, nothing outside the container is read or written. It is
// the confinement dockerd gets by chrooting into the container.

// archiveTarget is a path as docker cp means it.
type archiveTarget struct {
	clean  string // absolute, clean container path
	follow bool   // the path ends in "/" or "/.": follow a final symlink
	name   string // Docker's base name: "." for "dir/.", "etc" for "/etc/"
}

func parseArchivePath(p string) archiveTarget {
	abs := path.Clean("/" + p)
	t := archiveTarget{clean: abs}
	switch {
	case p == "." || strings.HasSuffix(p, "/."):
		t.follow, t.name = true, "."
	case strings.HasSuffix(p, "/") || abs == "/":
		t.follow, t.name = true, path.Base(abs)
	default:
		t.name = path.Base(abs)
	}
	if t.name == "/" {
		// The whole container: its contents, named as "dir/." would be.
		t.name = "."
	}
	return t
}

// open opens the target inside the root as O_PATH.
func (r *rootDir) openTarget(t archiveTarget) (int, error) {
	flags := unix.O_PATH
	name := t.clean
	if t.follow {
		name += "/" // a file must then fail with ENOTDIR, as in dockerd
		if t.clean == "/" {
			name = "/"
		}
	} else {
		flags |= unix.O_NOFOLLOW
	}
	return r.open(name, flags, 0)
}

// archiveErr gives lookups errors of the kinds the host maps.
func archiveErr(p string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return wire.Errorf(wire.KindNotFound, "no such file or directory: %s", p)
	case errors.Is(err, unix.ENOTDIR):
		return wire.Errorf(wire.KindInvalid, "not a directory: %s", p)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return wire.Errorf(wire.KindPermission, "permission denied: %s", p)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		// RESOLVE_NO_MAGICLINKS refuses /proc/<pid>/root and the like.
		return wire.Errorf(wire.KindInvalid, "invalid path %s: it goes through a magic link or too many symbolic links", p)
	case errors.Is(err, unix.ENAMETOOLONG):
		return wire.Errorf(wire.KindInvalid, "invalid path %s: file name too long", p)
	case errors.Is(err, unix.EINVAL):
		return wire.Errorf(wire.KindInvalid, "invalid path %q", p)
	}
	return err
}

func (a *Agent) containerRoot() (*rootDir, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.root == nil {
		return nil, "", wire.Errorf(wire.KindConflict, "container is not set up")
	}
	return a.root, a.rootPath, nil
}

// ArchiveStat implements wire.Handler.
func (a *Agent) ArchiveStat(ctx context.Context, p string) (wire.PathStat, error) {
	root, rootPath, err := a.containerRoot()
	if err != nil {
		return wire.PathStat{}, err
	}
	t := parseArchivePath(p)
	fd, err := root.openTarget(t)
	if err != nil {
		return wire.PathStat{}, archiveErr(p, err)
	}
	defer unix.Close(fd)
	return statFD(root, rootPath, fd, t)
}

func statFD(root *rootDir, rootPath string, fd int, t archiveTarget) (wire.PathStat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return wire.PathStat{}, fmt.Errorf("stat %s: %w", t.clean, err)
	}
	name := path.Base(t.clean)
	if t.name == "." {
		name = "."
	}
	if t.clean == "/" {
		name = "/"
	}
	ps := wire.PathStat{
		Name:  name,
		Size:  st.Size,
		Mode:  fileMode(st.Mode),
		Mtime: time.Unix(st.Mtim.Unix()).UTC(),
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		ps.LinkTarget = linkTarget(root, rootPath, fd, t.clean)
	}
	return ps, nil
}

// linkTarget is where the symlink at fd (container path p) leads, as a
// container path, evaluated in the container as dockerd does; a dangling
// link gives its target joined lexically.
func linkTarget(root *rootDir, rootPath string, fd int, p string) string {
	target, err := readlinkFD(fd)
	if err != nil {
		return ""
	}
	if tfd, err := root.open(p, unix.O_PATH, 0); err == nil {
		defer unix.Close(tfd)
		if real, err := os.Readlink(root.fdPath(tfd)); err == nil {
			if rel, ok := strings.CutPrefix(real, strings.TrimSuffix(rootPath, "/")); ok && (rel == "" || rel[0] == '/') {
				return path.Clean("/" + rel)
			}
		}
	}
	if path.IsAbs(target) {
		return path.Clean(target)
	}
	return path.Join(path.Dir(p), target)
}

func readlinkFD(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// fileMode turns stat's mode into Go's os.FileMode bits, which Docker
// sends.
func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// ArchiveGet implements wire.Handler.
func (a *Agent) ArchiveGet(ctx context.Context, p string) (wire.PathStat, func(io.Writer) error, error) {
	root, rootPath, err := a.containerRoot()
	if err != nil {
		return wire.PathStat{}, nil, err
	}
	t := parseArchivePath(p)
	fd, err := root.openTarget(t)
	if err != nil {
		return wire.PathStat{}, nil, archiveErr(p, err)
	}
	stat, err := statFD(root, rootPath, fd, t)
	if err != nil {
		unix.Close(fd)
		return stat, nil, err
	}
	return stat, func(w io.Writer) error {
		defer unix.Close(fd)
		tw := tar.NewWriter(w)
		tr := &tarrer{tw: tw, root: root, links: map[[2]uint64]string{}}
		if err := tr.add(fd, t.name); err != nil {
			return err
		}
		return tw.Close()
	}, nil
}

// tarrer writes a tree to a tar stream through descriptors only.
type tarrer struct {
	tw    *tar.Writer
	root  *rootDir
	links map[[2]uint64]string // device+inode -> first name, for hard links
}

const mqueueMagic = 0x19800202

// Filesystems whose contents an archive leaves out: the kernel's views.
var pseudoFS = map[int64]bool{
	unix.PROC_SUPER_MAGIC: true, unix.SYSFS_MAGIC: true, unix.DEVPTS_SUPER_MAGIC: true,
	mqueueMagic: true, unix.CGROUP2_SUPER_MAGIC: true, unix.CGROUP_SUPER_MAGIC: true,
}

// add writes the file at the O_PATH descriptor fd as name, and what is
// below it if it is a directory.
func (t *tarrer) add(fd int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
		if err := t.tw.WriteHeader(hdr); err != nil {
			return err
		}
		return t.addDir(fd, strings.TrimSuffix(hdr.Name, "/"))
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		target, err := readlinkFD(fd)
		if err != nil {
			return fmt.Errorf("archive %s: %w", name, err)
		}
		hdr.Linkname = target
		return t.tw.WriteHeader(hdr)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		hdr.Typeflag = map[uint32]byte{unix.S_IFCHR: tar.TypeChar, unix.S_IFBLK: tar.TypeBlock, unix.S_IFIFO: tar.TypeFifo}[st.Mode&unix.S_IFMT]
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		return t.tw.WriteHeader(hdr)
	case unix.S_IFREG:
	default:
		return nil // sockets: nothing a tar can carry
	}
	key := [2]uint64{st.Dev, st.Ino}
	if st.Nlink > 1 {
		if first, ok := t.links[key]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return t.tw.WriteHeader(hdr)
		}
		t.links[key] = name
	}
	// Reopen the very inode for reading, through the agent's procfs.
	f, err := os.OpenFile(t.root.fdPath(fd), os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	defer f.Close()
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyN(t.tw, f, st.Size)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	if n < st.Size {
		// It shrank while being read: keep the archive well formed.
		_, err = io.CopyN(t.tw, zeroReader{}, st.Size-n)
	}
	return err
}

func (t *tarrer) addDir(fd int, name string) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err == nil && pseudoFS[int64(sfs.Type)] {
		return nil
	}
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	dir := os.NewFile(uintptr(dfd), name)
	names, err := dir.Readdirnames(-1)
	if err != nil {
		dir.Close()
		return fmt.Errorf("archive %s: %w", name, err)
	}
	sort.Strings(names)
	defer dir.Close()
	for _, n := range names {
		cfd, err := unix.Openat(dfd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // gone meanwhile
		}
		if err != nil {
			return fmt.Errorf("archive %s/%s: %w", name, n, err)
		}
		err = t.add(cfd, name+"/"+n)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// ArchivePut implements wire.Handler.
func (a *Agent) ArchivePut(ctx context.Context, dir string, opts wire.ArchivePutOptions) (func(io.Reader) error, error) {
	root, rootPath, err := a.containerRoot()
	if err != nil {
		return nil, err
	}
	fd, err := root.open(path.Clean("/"+dir), unix.O_PATH, 0)
	if err != nil {
		return nil, archiveErr(dir, err)
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("extract to %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return nil, wire.Errorf(wire.KindInvalid, "extraction point is not a directory")
	}
	// Where the directory really is, symlinks resolved: entries are placed
	// relative to it.
	real, err := os.Readlink(root.fdPath(fd))
	unix.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("extract to %s: %w", dir, err)
	}
	dst := "/"
	if rel, ok := strings.CutPrefix(real, strings.TrimSuffix(rootPath, "/")); ok && (rel == "" || rel[0] == '/') {
		dst = path.Clean("/" + rel)
	} else if rootPath != "/" {
		return nil, fmt.Errorf("extract to %s: resolved to %s, outside %s", dir, real, rootPath)
	}
	owner := -1
	var ownerGID int
	if opts.CopyUIDGID {
		u, err := a.lookupUser(root, opts.User)
		if err != nil {
			return nil, err
		}
		owner, ownerGID = int(u.UID), int(u.GID)
	}
	return func(r io.Reader) error {
		x := &extractor{root: root, dst: dst, opts: opts, uid: owner, gid: ownerGID}
		return x.run(tar.NewReader(r))
	}, nil
}

type extractor struct {
	root     *rootDir
	dst      string
	opts     wire.ArchivePutOptions
	uid, gid int // -1: the archive's own
	dirs     []dirTime
}

type dirTime struct {
	path  string
	mtime time.Time
}

func (x *extractor) run(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return wire.Errorf(wire.KindInvalid, "read archive: %v", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return x.entryErr(err)
		}
	}
	// Directory times last: adding entries changed them.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		pfd, err := x.root.open(path.Dir(d.path), unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			continue
		}
		setTimes(pfd, path.Base(d.path), d.mtime)
		unix.Close(pfd)
	}
	return nil
}

// entryErr classes what writing an entry met: what the archive asked for
// that this destination cannot hold is the client's error (400), a
// permission refused a 403; the rest (I/O, a full disk) stays internal.
func (x *extractor) entryErr(err error) error {
	var errno unix.Errno
	switch {
	case wire.KindOf(err) != wire.KindInternal:
		return err
	case errors.Is(err, unix.EROFS):
		return x.readOnly()
	case !errors.As(err, &errno):
		return err
	}
	switch errno {
	case unix.ENAMETOOLONG, unix.ELOOP, unix.EXDEV, unix.ENOTDIR, unix.EISDIR, unix.EINVAL,
		unix.ENOENT, unix.EEXIST, unix.EMLINK, unix.ENOTEMPTY, unix.EBUSY:
		return wire.Errorf(wire.KindInvalid, "%v", err)
	case unix.EPERM, unix.EACCES:
		return wire.Errorf(wire.KindPermission, "%v", err)
	}
	return err
}

// readOnly words a write refused by a read-only mount as dockerd does
// (it checks before extracting): the destination's filesystem is the
// root's (--read-only) or a volume's or bind's.
func (x *extractor) readOnly() error {
	var root, dst unix.Stat_t
	fd, err := x.root.open(x.dst, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err == nil {
		err = unix.Fstat(fd, &dst)
		unix.Close(fd)
	}
	if err == nil && unix.Fstat(x.root.fd, &root) == nil && root.Dev != dst.Dev {
		return wire.Errorf(wire.KindInvalid, "mounted volume is marked read-only")
	}
	return wire.Errorf(wire.KindInvalid, "container rootfs is marked read-only")
}

// inside joins an archive name to the destination, refusing names that
// climb out of it, as dockerd does.
func (x *extractor) inside(name string) (string, error) {
	rel := path.Clean("/" + name)
	if strings.Contains("/"+path.Clean(name)+"/", "/../") {
		return "", wire.Errorf(wire.KindInvalid, "invalid archive entry %q: it points outside the destination", name)
	}
	return path.Join(x.dst, rel), nil
}

// linkSource resolves a hard link's target as dockerd does, under the
// destination (an absolute Linkname too), and requires an existing
// non-directory there: it returns the held parent and the name in it.
func (x *extractor) linkSource(hdr *tar.Header) (int, string, error) {
	bad := func(why string) (int, string, error) {
		return -1, "", wire.Errorf(wire.KindInvalid, "invalid hardlink %q -> %q: %s", hdr.Name, hdr.Linkname, why)
	}
	if hdr.Linkname == "" {
		return bad("no target")
	}
	src, err := x.inside(hdr.Linkname)
	if err != nil {
		return bad("the target is outside the destination")
	}
	if full, _ := x.inside(hdr.Name); src == full || strings.HasPrefix(src, full+"/") {
		// Replacing the entry's path would remove the target first.
		return bad("the link would replace its own target")
	}
	sfd, err := x.root.open(path.Dir(src), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return bad(fmt.Sprintf("the target %s is not in the container (%v)", src, err))
	}
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, path.Base(src), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		unix.Close(sfd)
		return bad(fmt.Sprintf("the target %s is not in the container (%v)", src, err))
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		unix.Close(sfd)
		return bad(fmt.Sprintf("the target %s is a directory", src))
	}
	return sfd, path.Base(src), nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	}
	full, err := x.inside(hdr.Name)
	if err != nil {
		return err
	}
	if full == x.dst {
		return nil // "./": the destination itself stays as it is
	}
	parent, base := path.Dir(full), path.Base(full)
	// A hard link's target is checked before anything is made or removed:
	// a bad one fails the entry with nothing written.
	linkDir, linkBase := -1, ""
	if hdr.Typeflag == tar.TypeLink {
		if linkDir, linkBase, err = x.linkSource(hdr); err != nil {
			return err
		}
		defer unix.Close(linkDir)
	}
	pfd, err := x.root.mkdirAll(parent)
	if err != nil {
		return fmt.Errorf("extract %s: %w", hdr.Name, err)
	}
	defer unix.Close(pfd)
	isDir := hdr.Typeflag == tar.TypeDir
	var old unix.Stat_t
	if err := unix.Fstatat(pfd, base, &old, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		oldDir := old.Mode&unix.S_IFMT == unix.S_IFDIR
		switch {
		case oldDir && isDir:
			// merge into it
		case x.opts.NoOverwriteDirNonDir && oldDir:
			return wire.Errorf(wire.KindInvalid, "cannot overwrite directory %q with non-directory %q", full, hdr.Name)
		case x.opts.NoOverwriteDirNonDir && isDir:
			return wire.Errorf(wire.KindInvalid, "cannot overwrite non-directory %q with directory %q", full, hdr.Name)
		default:
			if err := removeAllAt(pfd, base); err != nil {
				return fmt.Errorf("extract %s: %w", hdr.Name, err)
			}
		}
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && err != unix.EEXIST {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		x.dirs = append(x.dirs, dirTime{full, hdr.ModTime})
	case tar.TypeReg, tar.TypeRegA:
		if tarentry.Sparse(hdr) {
			return wire.Errorf(wire.KindInvalid, "extract %s: sparse files are not supported (their size is the archive's word only)", hdr.Name)
		}
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		f := os.NewFile(uintptr(fd), base)
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
	case tar.TypeSymlink:
		// Only data: it is resolved later, in the container.
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
	case tar.TypeLink:
		if err := unix.Linkat(linkDir, linkBase, pfd, base, 0); err != nil {
			return fmt.Errorf("extract %s: link to %s: %w", hdr.Name, hdr.Linkname, err)
		}
		return nil // the target already carries owner, mode and times
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, kind|mode, int(dev)); err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
	default:
		return wire.Errorf(wire.KindInvalid, "extract %s: unhandled tar entry type %q", hdr.Name, hdr.Typeflag)
	}
	uid, gid := hdr.Uid, hdr.Gid
	if x.uid >= 0 {
		uid, gid = x.uid, x.gid
	}
	// By name in the held parent and never following: whatever a container
	// process swaps in meanwhile, only that name in this directory changes.
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("extract %s: chown: %w", hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// chmod follows symlinks, so it goes through a descriptor pinned
		// to the inode (after chown, which clears setuid bits).
		fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFLNK {
			err = unix.Fchmodat(unix.AT_FDCWD, x.root.fdPath(fd), mode, 0)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("extract %s: chmod: %w", hdr.Name, err)
		}
	}
	if !isDir {
		setTimes(pfd, base, hdr.ModTime)
	}
	return nil
}

func setTimes(dirfd int, name string, mtime time.Time) {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	unix.UtimesNanoAt(dirfd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// removeAllAt removes name in dirfd and, for a directory, all below it,
// never following a symlink.
func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(fd), name)
	names, err := dir.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	dir.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}
