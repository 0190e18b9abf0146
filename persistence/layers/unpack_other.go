//go:build !linux

package layers

import (
	"io"
	"os"
)

// A layer is held as its uncompressed tar: an unpacked layer needs device
// nodes, owners and overlayfs whiteouts, which only Linux can hold. The VM
// drivers write image disks straight from it (ext4.Tree.AddTarFile).
const (
	payloadName  = "diff.tar"
	payloadIsDir = false
)

// unpackTar keeps the tar r at path (see keepTar).
func unpackTar(path string, r io.Reader) (int64, error) { return keepTar(path, r) }

// syncTree makes the kept tar durable.
func syncTree(dir string) error {
	f, err := os.Open(dir + "/" + payloadName)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
