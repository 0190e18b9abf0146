package treecheck

import (
	"testing"

	"golang.org/x/sys/unix"
)

// SmallTmpfs mounts a tmpfs of size (say "32m") on a temp dir of tb's,
// nodev and nosuid, and returns it: what an input makes the code write is
// bounded there (compressed and sparse entries expand), and device nodes
// made there do not open. Without one the test is skipped.
func SmallTmpfs(tb testing.TB, size string) string {
	tb.Helper()
	mnt := tb.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_NODEV|unix.MS_NOSUID, "size="+size+",mode=755"); err != nil {
		tb.Skipf("no tmpfs to bound what an input writes: %v", err)
	}
	tb.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	return mnt
}
