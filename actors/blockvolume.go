package actors

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/docker/go-units"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence/ext4"
)

// The block volume driver: each volume is a sparse ext4 image, given to
// the one container that runs with it as a block device of its own (a
// loop mount on the sandbox, a virtio-blk disk on qemu and vz), for I/O
// that a shared directory would slow down.

const (
	blockDriver = "block"
	// defaultBlockSize is a block volume's size without --opt size; the
	// image is sparse, so only what is written takes space.
	defaultBlockSize = 1 << 30
	minBlockSize     = 16 << 20
	maxBlockSize     = 16 << 40 // ext4 with 4 KiB blocks
	blockImageName   = "disk.ext4"
	// blockMountDir is where, beside the image, the sandbox mounts its
	// filesystem (sandbox.DiskMountDir).
	blockMountDir = "mnt"
)

// blockSize reads a block volume's options: only size, in bytes or with a
// unit (512M, 1G, 1GiB).
func blockSize(opts map[string]string) (int64, error) {
	size := int64(defaultBlockSize)
	for k, v := range opts {
		if k != "size" {
			return 0, messages.InvalidParameter("invalid option key: %q (the block driver takes only size)", k)
		}
		n, err := units.RAMInBytes(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			return 0, messages.InvalidParameter("invalid size %q for a block volume: want bytes or a size like 512M or 1G", v)
		}
		size = n
	}
	if size < minBlockSize || size > maxBlockSize {
		return 0, messages.InvalidParameter("invalid size %d for a block volume: between %s and %s", size, units.BytesSize(minBlockSize), units.BytesSize(maxBlockSize))
	}
	return size, nil
}

// makeBlockImage creates the sparse image and its filesystem; on error
// nothing is left.
func makeBlockImage(ctx context.Context, path string, size int64) error {
	return makeBlockImageWith(ctx, path, size, mkfsExt4)
}

// makeBlockImageWith is makeBlockImage with the mkfs.ext4 found on PATH
// ("" for none: a Mac has none, nor do all Linux hosts).
func makeBlockImageWith(ctx context.Context, path string, size int64, mkfs string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if mkfs != "" {
			err = mkfsBlockImage(ctx, mkfs, path)
		} else {
			err = writeBlockImage(ctx, path, size)
		}
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// mkfsExt4 is e2fsprogs' mkfs.ext4 when it is on PATH.
var mkfsExt4, _ = exec.LookPath("mkfs.ext4")

// mkfsBlockImage makes the filesystem with e2fsprogs: with a journal. The
// inode tables and journal are left for the kernel to initialise, so a
// large image costs no writes up front.
func mkfsBlockImage(ctx context.Context, mkfs, path string) error {
	out, err := exec.CommandContext(ctx, mkfs, "-q", "-F", "-m", "0",
		"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// writeBlockImage makes the filesystem with the project's ext4 writer,
// where there is no mkfs.ext4 (macOS): an empty filesystem with mke2fs's
// inode density, in whole blocks within the image, as mkfs.ext4 leaves a
// partial last block. It has no journal (docs/ext4.md): a machine killed
// mid-write can leave it inconsistent, as the vz writable disk.
func writeBlockImage(ctx context.Context, path string, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	opts := ext4.Options{MinSize: size &^ (ext4.BlockSize - 1), InodeRatio: 16384}
	if err := ext4.WriteFile(path, ext4.NewTree(), opts); err != nil {
		return fmt.Errorf("write ext4: %w", err)
	}
	// WriteFile sized the file to the filesystem; the image keeps the
	// size asked for.
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("write ext4: %w", err)
	}
	return nil
}

func (e *Env) blockImage(name string) string {
	return filepath.Join(e.Root, "volumes", name, blockImageName)
}

// A block volume's filesystem must be mounted by one machine at a time.
// A container claims its block volumes before its machine boots; when its
// process has ended the claim drains (the machine is powering off), and it
// is released once the machine is off. A claim against a running holder
// is a conflict; against a draining one it waits for the release, so that
// `docker run --rm` twice in a row works as with dockerd.
type (
	claimBlockVolumes struct {
		container string
		names     []string
	}
	drainBlockVolumes   struct{ container string }
	releaseBlockVolumes struct{ container string }
)

type blockHolder struct {
	container string
	draining  bool
}

// blockClaims is the volumes actor's record of who holds which block
// volume; only that actor touches it.
type blockClaims struct {
	held map[string]*blockHolder
	// waiting: what runs once a volume is free (claims, removals).
	waiting map[string][]func()
}

func newBlockClaims() blockClaims {
	return blockClaims{held: map[string]*blockHolder{}, waiting: map[string][]func(){}}
}

// holder is the container holding name, or "".
func (b *blockClaims) holder(name string) string {
	if h := b.held[name]; h != nil {
		return h.container
	}
	return ""
}

// claim answers m through reply, now or once draining holders are gone.
func (b *blockClaims) claim(m *claimBlockVolumes, reply func(any)) {
	var try func()
	try = func() {
		for _, n := range m.names {
			h := b.held[n]
			if h == nil || h.container == m.container {
				continue
			}
			if h.draining {
				b.waiting[n] = append(b.waiting[n], try)
				return
			}
			reply(messages.Conflict("volume %s is a block volume in use by running container %s: a block volume serves one running container at a time", n, shortID(h.container)))
			return
		}
		for _, n := range m.names {
			b.held[n] = &blockHolder{container: m.container}
		}
		reply(&messages.Accepted{})
	}
	try()
}

func (b *blockClaims) drain(container string) {
	for _, h := range b.held {
		if h.container == container {
			h.draining = true
		}
	}
}

func (b *blockClaims) release(container string) {
	var freed []string
	for n, h := range b.held {
		if h.container == container {
			delete(b.held, n)
			freed = append(freed, n)
		}
	}
	for _, n := range freed {
		w := b.waiting[n]
		delete(b.waiting, n)
		for _, f := range w {
			f()
		}
	}
}

// whenFree runs f now if no running container holds name, or once a
// draining holder has released it; a running holder gets f now too (the
// caller's own check then refuses).
func (b *blockClaims) whenFree(name string, f func()) {
	if h := b.held[name]; h != nil && h.draining {
		b.waiting[name] = append(b.waiting[name], f)
		return
	}
	f()
}
