package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultDiskBytes is the size of a container's writable disk. It is
// sparse: it takes host space only as the container writes.
const DefaultDiskBytes = 16 << 30

// Inside the writable disk: the overlay's upper and work directories.
const (
	rwUpper = "upper"
	rwWork  = "work"
)

// containerDisk returns the container's writable disk in stateDir,
// creating it the first time: it survives restarts of the machine.
func containerDisk(ctx context.Context, stateDir string, size int64) (string, error) {
	path := filepath.Join(stateDir, "disk.ext4")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmpl, err := os.MkdirTemp(stateDir, ".disk-")
	if err != nil {
		return "", fmt.Errorf("container disk: %w", err)
	}
	defer os.RemoveAll(tmpl)
	// The upper dir's root is the container's "/": 0755 like an image's.
	if err := os.Mkdir(filepath.Join(tmpl, rwUpper), 0o755); err != nil {
		return "", fmt.Errorf("container disk: %w", err)
	}
	if err := os.Mkdir(filepath.Join(tmpl, rwWork), 0o700); err != nil {
		return "", fmt.Errorf("container disk: %w", err)
	}
	tmp := path + ".tmp"
	cmd := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0,nodiscard", "-L", "arca-rw", "-d", tmpl, tmp,
		strconv.FormatInt(size>>10, 10)+"k")
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("container disk: mkfs.ext4: %w: %s", err, strings.TrimSpace(string(b)))
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("container disk: %w", err)
	}
	return path, nil
}
