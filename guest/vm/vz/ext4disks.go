package vz

import (
	"context"
	"fmt"

	"github.com/arcavm/arca/guest/vm/imagedisk"
	"github.com/arcavm/arca/persistence/ext4"
)

// Ext4Disks builds the vz driver's disks with the project's own ext4
// writer, so a Mac needs no e2fsprogs. Its format has no journal: the image
// disk is read-only, and a container's writable disk loses at most what
// was not yet synced when its VM died (the agent syncs on shutdown).
type Ext4Disks struct{}

var _ DiskBuilder = Ext4Disks{}

// ImageDisk implements DiskBuilder: the layers applied in turn, as
// overlayfs stacks them.
func (Ext4Disks) ImageDisk(ctx context.Context, layers []string, out string) error {
	return imagedisk.FromLayers(ctx, layers, out)
}

// WritableDisk implements DiskBuilder: a sparse disk of size bytes with
// inodes for a disk that will be written to, as mke2fs gives one.
func (Ext4Disks) WritableDisk(ctx context.Context, out string, size int64) error {
	t := ext4.NewTree()
	for _, d := range []struct {
		path string
		perm uint32
	}{{"/" + rwUpper, 0o755}, {"/" + rwWork, 0o700}} {
		if err := t.Add(d.path, ext4.Entry{Mode: ext4.TypeDir | d.perm}); err != nil {
			return fmt.Errorf("writable disk: %w", err)
		}
	}
	if err := ext4.WriteFile(out, t, ext4.Options{MinSize: size, InodeRatio: 16384, Label: "arca-rw"}); err != nil {
		return fmt.Errorf("writable disk: %w", err)
	}
	return nil
}
