package agent

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// rootDir resolves paths inside the container's root filesystem. Every
// lookup uses openat2 with RESOLVE_IN_ROOT, so a symlink in the image (even
// an absolute one, or ../..) cannot lead the agent outside the container.
type rootDir struct {
	fd   int    // O_PATH descriptor of the root
	proc string // where the agent's own procfs is mounted, for fd paths
}

func openRootDir(dir, proc string) (*rootDir, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open container root %s: %w", dir, err)
	}
	return &rootDir{fd: fd, proc: proc}, nil
}

func (r *rootDir) close() { unix.Close(r.fd) }

// open opens name (absolute or relative to the root) inside the root.
func (r *rootDir) open(name string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(r.fd, name, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			// EAGAIN: a concurrent rename raced the resolution.
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return fd, nil
	}
}

// openFile opens name inside the root as an *os.File.
func (r *rootDir) openFile(name string, flags int) (*os.File, error) {
	fd, err := r.open(name, flags, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// stat stats name inside the root, following symlinks within it.
func (r *rootDir) stat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := r.open(name, unix.O_PATH, 0)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	return st, nil
}

// mkdirAll creates name and its parents inside the root, as root with mode
// 0755, and returns an O_PATH descriptor of it.
func (r *rootDir) mkdirAll(name string) (int, error) {
	parts := splitPath(name)
	fd, err := unix.Dup(r.fd)
	if err != nil {
		return -1, fmt.Errorf("mkdir %s: %w", name, err)
	}
	for i := range parts {
		prefix := "/" + strings.Join(parts[:i+1], "/")
		next, err := r.open(prefix, unix.O_PATH|unix.O_DIRECTORY, 0)
		if errors.Is(err, unix.ENOENT) {
			// Create the last component in the parent we already hold,
			// by name only, so nothing is resolved twice.
			if err := unix.Mkdirat(fd, parts[i], 0o755); err != nil && err != unix.EEXIST {
				unix.Close(fd)
				return -1, &os.PathError{Op: "mkdir", Path: prefix, Err: err}
			}
			next, err = r.open(prefix, unix.O_PATH|unix.O_DIRECTORY, 0)
		}
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("mkdir %s: %w", name, err)
		}
		fd = next
	}
	return fd, nil
}

// ensureFile returns an O_PATH descriptor of the file name inside the root,
// creating it empty (and its parents) if missing, as a bind-mount target.
func (r *rootDir) ensureFile(name string) (int, error) {
	fd, err := r.open(name, unix.O_PATH, 0)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return -1, err
	}
	dir, base := path.Split(path.Clean("/" + name))
	dfd, err := r.mkdirAll(dir)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	// O_PATH cannot create; a plain create by name in the held parent can.
	cfd, err := unix.Openat(dfd, base, unix.O_CREAT|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil && err != unix.EEXIST {
		return -1, &os.PathError{Op: "create", Path: name, Err: err}
	}
	if err == nil {
		unix.Close(cfd)
	}
	return r.open(name, unix.O_PATH, 0)
}

// fdPath names an open descriptor as a path the mount syscalls accept,
// pinning the target that was resolved inside the root.
func (r *rootDir) fdPath(fd int) string {
	return fmt.Sprintf("%s/self/fd/%d", r.proc, fd)
}

// splitPath cleans name as an absolute path and returns its components.
func splitPath(name string) []string {
	clean := strings.TrimPrefix(path.Clean("/"+name), "/")
	if clean == "" {
		return nil
	}
	return strings.Split(clean, "/")
}
