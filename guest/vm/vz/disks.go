package vz

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/arcavm/arca/guest/vm/imagedisk"
)

// containerDisk returns the container's writable disk in stateDir,
// creating it the first time: it survives restarts of the machine.
func containerDisk(ctx context.Context, stateDir string, size int64, b DiskBuilder) (string, error) {
	path := filepath.Join(stateDir, "disk.ext4")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := imagedisk.WriteAtomic(path, func(tmp string) error { return b.WritableDisk(ctx, tmp, size) }); err != nil {
		return "", fmt.Errorf("container disk: %w", err)
	}
	return path, nil
}
