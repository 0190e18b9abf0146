// Package imagedisk keeps the disks VM drivers boot images from: one
// read-only ext4 file per image, named by vm.ImageKey, built once however
// many machines of the image boot at the same time. It is plain Go, for
// qemu on Linux and vz on macOS alike.
package imagedisk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/persistence/ext4"
)

// Cache builds and keeps the image disks in Dir. One daemon owns a root
// (its store is locked), so a lock within the process is enough.
type Cache struct {
	Dir string
	// Build writes one image's disk at out (a temporary name that Get
	// renames once the build succeeded).
	Build func(ctx context.Context, layers []string, out string) error

	mu       sync.Mutex
	building map[string]*sync.Mutex
}

func (c *Cache) keyLock(key string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.building == nil {
		c.building = map[string]*sync.Mutex{}
	}
	m := c.building[key]
	if m == nil {
		m = &sync.Mutex{}
		c.building[key] = m
	}
	return m
}

// Get returns the disk of the image made of layers, building it on first
// use.
func (c *Cache) Get(ctx context.Context, layers []string) (string, error) {
	key := vm.ImageKey(layers)
	path := filepath.Join(c.Dir, key+".ext4")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	m := c.keyLock(key)
	m.Lock()
	defer m.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil // built while we waited
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return "", fmt.Errorf("image disk: %w", err)
	}
	if err := WriteAtomic(path, func(tmp string) error { return c.Build(ctx, layers, tmp) }); err != nil {
		return "", fmt.Errorf("image disk: %w", err)
	}
	return path, nil
}

// WriteAtomic has build write a temporary file beside path and renames it
// into place only if the build succeeded: a crash or an error leaves no
// half-built disk under the name later boots trust.
func WriteAtomic(path string, build func(tmp string) error) error {
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

// FromLayers writes the layers, base first, flattened as an ext4 image at
// out, with the project's own writer: no mount, no mkfs. A layer is what
// the layer store holds: an unpacked directory in overlayfs form (Linux)
// or the layer's tar (macOS). The image is as small as its contents allow
// (it is read-only).
func FromLayers(ctx context.Context, layers []string, out string) error {
	t := ext4.NewTree()
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := os.Stat(l)
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			err = t.AddTarFile(l)
		} else {
			err = t.AddDir(l)
		}
		if err != nil {
			return err
		}
	}
	return ext4.WriteFile(out, t, ext4.Options{Label: "arca-image"})
}
