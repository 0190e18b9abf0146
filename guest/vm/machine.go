package vm

import (
	"path/filepath"
	"strconv"
	"strings"
)

// What the VM drivers (qemu, vz) give a machine whose spec leaves its
// size zero. Guest memory is backed by the host only as the guest touches
// it, so 512 MiB costs what the container uses.
const (
	DefaultMemoryBytes = 512 << 20
	DefaultCPUs        = 1
	MinMemoryBytes     = 128 << 20 // the kernel, modules and agent need ~60 MiB
)

// MemoryBytes is a VM's memory for a spec's limit: the default for none,
// at least MinMemoryBytes, in whole MiB (rounded up).
func MemoryBytes(limit int64) int64 {
	if limit <= 0 {
		return DefaultMemoryBytes
	}
	b := max(limit, MinMemoryBytes)
	return (b + 1<<20 - 1) &^ (1<<20 - 1)
}

// CPUs is a VM's vCPUs for --cpus: rounded up (1.5 gets 2), at most the
// host's.
func CPUs(nanoCPUs int64, hostCPUs int) int {
	if nanoCPUs <= 0 {
		return DefaultCPUs
	}
	n := int((nanoCPUs + 1e9 - 1) / 1e9)
	return max(1, min(n, hostCPUs))
}

// ShareTag is the mount tag of a VM's i-th share (9p or virtiofs);
// ShareMount is where the agent mounts it.
func ShareTag(i int) string   { return "arca" + strconv.Itoa(i) }
func ShareMount(i int) string { return "/mnt/share" + strconv.Itoa(i) }

// GuestPath maps a host path inside one of shares to the agent's view of
// it, share i being mounted at ShareMount(i). Both sides are compared
// clean, so a trailing slash matters on neither.
func GuestPath(shares []Share, hostPath string) (string, bool) {
	hostPath = filepath.Clean(hostPath)
	for i, sh := range shares {
		dir := filepath.Clean(sh.HostPath)
		if hostPath == dir {
			return ShareMount(i), true
		}
		if rest, ok := strings.CutPrefix(hostPath, strings.TrimSuffix(dir, "/")+"/"); ok {
			return ShareMount(i) + "/" + rest, true
		}
	}
	return "", false
}
