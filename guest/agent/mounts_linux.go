package agent

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/guest/wire"
)

// mountAll puts the container's volumes, binds and tmpfs mounts on its
// root. Targets are resolved inside the root (no symlink leads out).
func mountAll(root *rootDir, mounts []wire.Mount) error {
	for _, m := range mounts {
		if err := mountOne(root, m); err != nil {
			return fmt.Errorf("mount %s: %w", m.Target, err)
		}
	}
	return nil
}

func mountOne(root *rootDir, m wire.Mount) error {
	switch m.Type {
	case "tmpfs":
		fd, err := root.mkdirAll(m.Target)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		return unix.Mount("tmpfs", root.fdPath(fd), "tmpfs", flags, m.Options)
	case "bind":
	default:
		return fmt.Errorf("unknown mount type %q", m.Type)
	}
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	var fd int
	if st.IsDir() {
		fd, err = root.mkdirAll(m.Target)
	} else {
		fd, err = root.ensureFile(m.Target)
	}
	if err != nil {
		return err
	}
	if m.CopyUp && st.IsDir() && dirEmpty(m.Source) {
		// What the image has at the target seeds an empty volume.
		if err := copyTree(root.fdPath(fd), m.Source); err != nil {
			unix.Close(fd)
			return fmt.Errorf("copy image content into the volume: %w", err)
		}
	}
	err = unix.Mount(m.Source, root.fdPath(fd), "", unix.MS_BIND|unix.MS_REC, "")
	unix.Close(fd)
	if err != nil {
		return err
	}
	if !m.ReadOnly {
		return nil
	}
	// A bind takes the read-only flag only on a remount of the new mount,
	// reached again by path now that it covers the target.
	fd, err = root.open(m.Target, unix.O_PATH, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Mount("", root.fdPath(fd), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, "")
}

func dirEmpty(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return err == io.EOF
}

// copyTree copies src's contents into dst, keeping modes, owners and
// symlinks, as Docker copies image content into a new volume.
func copyTree(src, dst string) error {
	// src is a /proc/self/fd link, which the walk would not enter: walk
	// the directory it names (resolved inside the root by the caller).
	if real, err := os.Readlink(src); err == nil {
		src = real
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		sys, _ := info.Sys().(*unix.Stat_t)
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil && !os.IsExist(err) {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(p, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return nil // devices, sockets and fifos are not copied
		}
		if sys != nil {
			_ = os.Lchown(target, int(sys.Uid), int(sys.Gid))
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			_ = os.Chmod(target, info.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		return nil
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
