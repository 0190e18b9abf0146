//go:build linux

package buildkit

import "golang.org/x/sys/unix"

// diskSize is the size of the filesystem holding dir.
func diskSize(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks) * st.Bsize, nil
}
