package qemu

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/arcavm/arca/guest/vm"
	"golang.org/x/sys/unix"
)

// disks builds and caches the images' ext4 disks in dir.
type disks struct {
	dir string
	mu  sync.Mutex
	// building serializes builds of one key within the process; a file
	// lock does it across processes.
	building map[string]*sync.Mutex
}

func (d *disks) keyLock(key string) *sync.Mutex {
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

// imageDisk returns the image's ext4 disk, building it on first use: the
// layers flattened by a read-only overlay mount (which applies whiteouts)
// and written with mkfs.ext4 -d. Concurrent first boots build it once.
func (d *disks) imageDisk(ctx context.Context, layers []string) (string, error) {
	key := vm.ImageKey(layers)
	path := filepath.Join(d.dir, key+".ext4")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	m := d.keyLock(key)
	m.Lock()
	defer m.Unlock()
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return "", fmt.Errorf("image disk: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(d.dir, key+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("image disk: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("image disk: lock: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if _, err := os.Stat(path); err == nil {
		return path, nil // another process built it while we waited
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := buildImageDisk(ctx, layers, tmp); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("image disk: %w", err)
	}
	return path, nil
}

// buildImageDisk runs the overlay mount and mkfs.ext4 in a mount namespace
// of their own (unshare), so the mount vanishes with the process whatever
// happens to the daemon: nothing to unmount, nothing to leak.
func buildImageDisk(ctx context.Context, layers []string, out string) error {
	size, err := treeSize(layers)
	if err != nil {
		return fmt.Errorf("image disk: %w", err)
	}
	script := `set -e
m="$(mktemp -d)"
if [ "$#" -eq 1 ]; then
	mount --bind -o ro "$1" "$m"
else
	lower=""
	for l in "$@"; do lower="$l${lower:+:$lower}"; done
	mount -t overlay -o ro,lowerdir="$lower" overlay "$m"
fi
mkfs.ext4 -q -F -E root_owner=0:0 -L arca-image -d "$m" "$OUT" "$SIZE"
`
	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh"}, layers...)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(os.Environ(), "OUT="+out, "SIZE="+strconv.FormatInt(size>>10, 10)+"k")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("image disk: build ext4: %w: %s", err, strings.TrimSpace(string(b)))
	}
	return nil
}

// treeSize is a generous ext4 size for the union of dirs: every file
// rounded up to a block, every entry an inode's worth, half again for
// ext4's own metadata, and room for the journal. The file is sparse, so
// slack costs nothing.
func treeSize(dirs []string) (int64, error) {
	var total int64
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			total += 256
			if e.Type().IsRegular() {
				if info, err := e.Info(); err == nil {
					total += (info.Size() + 4095) &^ 4095
				}
			} else {
				total += 4096
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return diskSizeFor(total), nil
}

func diskSizeFor(used int64) int64 {
	return (used*3/2 + 64<<20 + 1<<20 - 1) &^ (1<<20 - 1)
}

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
