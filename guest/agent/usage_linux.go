package agent

import (
	"context"
	"os"

	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/guest/wire"
)

// Usage implements wire.Handler: the size of the container's writable
// layer, which is what dockerd reports as SizeRw.
func (a *Agent) Usage(ctx context.Context) (wire.DiskUsage, error) {
	if a.upper == nil {
		return wire.DiskUsage{}, nil // read-only rootfs: nothing written
	}
	n, err := treeSize(ctx, int(a.upper.Fd()), map[[2]uint64]bool{})
	if err != nil {
		return wire.DiskUsage{}, err
	}
	return wire.DiskUsage{WritableBytes: n}, nil
}

// treeSize adds up the sizes of the regular files and links under the
// directory dfd, each inode once; directories count nothing, as in
// dockerd's measure. It goes by descriptor, never by path.
func treeSize(ctx context.Context, dfd int, seen map[[2]uint64]bool) (int64, error) {
	d, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	f := os.NewFile(uintptr(d), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(d, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // gone since the listing
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			sub, err := unix.Openat(d, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			n, err := treeSize(ctx, sub, seen)
			unix.Close(sub)
			if err != nil {
				return 0, err
			}
			total += n
		case unix.S_IFREG, unix.S_IFLNK:
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if st.Nlink > 1 {
				if seen[key] {
					continue
				}
				seen[key] = true
			}
			total += st.Size
		}
	}
	return total, nil
}
