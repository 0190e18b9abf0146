package vz

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/arcavm/arca/guest/vm"
)

// imageDisks builds and caches the images' disks in dir, one per image
// (vm.ImageKey), built once however many machines boot it at the same
// time. One daemon owns a root (its store is locked), so a lock within the
// process is enough.
type imageDisks struct {
	dir   string
	build DiskBuilder

	mu       sync.Mutex
	building map[string]*sync.Mutex
}

func (d *imageDisks) keyLock(key string) *sync.Mutex {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.building == nil {
		d.building = map[string]*sync.Mutex{}
	}
	m := d.building[key]
	if m == nil {
		m = &sync.Mutex{}
		d.building[key] = m
	}
	return m
}

// get returns the image's disk, building it on first use.
func (d *imageDisks) get(ctx context.Context, layers []string) (string, error) {
	key := vm.ImageKey(layers)
	path := filepath.Join(d.dir, key+".ext4")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	m := d.keyLock(key)
	m.Lock()
	defer m.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil // built while we waited
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return "", fmt.Errorf("image disk: %w", err)
	}
	if err := buildAtomic(path, func(tmp string) error { return d.build.ImageDisk(ctx, layers, tmp) }); err != nil {
		return "", fmt.Errorf("image disk: %w", err)
	}
	return path, nil
}

// containerDisk returns the container's writable disk in stateDir,
// creating it the first time: it survives restarts of the machine.
func containerDisk(ctx context.Context, stateDir string, size int64, b DiskBuilder) (string, error) {
	path := filepath.Join(stateDir, "disk.ext4")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := buildAtomic(path, func(tmp string) error { return b.WritableDisk(ctx, tmp, size) }); err != nil {
		return "", fmt.Errorf("container disk: %w", err)
	}
	return path, nil
}

// buildAtomic has build write a temporary file beside path and renames it
// into place only if the build succeeded: a crash or an error leaves no
// half-built disk under the name later boots trust.
func buildAtomic(path string, build func(tmp string) error) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := build(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if _, err := os.Stat(tmp); err != nil {
		return fmt.Errorf("the disk builder wrote nothing: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
