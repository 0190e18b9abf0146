package main

import (
	"runtime"

	"golang.org/x/sys/unix"
)

func platform() string { return "darwin/" + runtime.GOARCH }

// platformChecks on a Mac: the vz driver's kit. The Virtualization
// framework itself is checked by the daemon when it starts.
func platformChecks(env doctorEnv) []finding {
	return []finding{kitFinding(env.kit, "make kit-install KIT_TARBALL=... (docs/macos.md)")}
}

func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
