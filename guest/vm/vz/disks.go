package vz

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/arcavm/arca/guest/vm"
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

// checkVolumeImages makes sure each block volume's image is a file before
// the framework is asked to open it, whose error would name no volume.
func checkVolumeImages(disks []vm.Disk) error {
	for _, d := range disks {
		st, err := os.Stat(d.Image)
		if err != nil {
			return fmt.Errorf("block volume: %w", err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("block volume %s: not a disk image file", d.Image)
		}
	}
	return nil
}
