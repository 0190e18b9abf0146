// Package layers keeps image layers unpacked on disk, one directory per chain
// ID, each holding only its own diff in overlayfs format, so that a sandbox can
// stack them as overlay lowerdirs and layers shared by images are unpacked once.
package layers

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

const (
	tempPrefix = ".tmp-"
	sizeName   = "size" // unpacked size in bytes, decimal, so "Already exists" layers still count
)

// Store holds unpacked layers under <dir>/<chainIDhex>/: on Linux the
// directory diff, in overlayfs form; elsewhere (macOS cannot hold device
// nodes, owners or whiteouts) the uncompressed tar diff.tar, which the VM
// drivers' ext4 writer reads as it is (see payloadName).
type Store struct {
	root string
}

// Open creates the store's directory if needed and removes half-unpacked
// layers left behind by an earlier crash.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create layer dir: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read layer dir: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return &Store{root: dir}, nil
}

// ChainID names a layer together with all layers below it, as the OCI image
// spec defines: the base layer's chain ID is its diff ID, every other is
// sha256(parent + " " + diffID).
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// ChainIDs returns the chain ID of every layer, base first.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	var parent digest.Digest
	for i, d := range diffIDs {
		parent = ChainID(parent, d)
		out[i] = parent
	}
	return out
}

// Dir is the layer's payload: on Linux its diff directory, the one to give
// overlayfs; elsewhere its tar. It returns "" for an invalid chain ID.
func (s *Store) Dir(chainID digest.Digest) string {
	base := s.layerDir(chainID)
	if base == "" {
		return ""
	}
	return filepath.Join(base, payloadName)
}

func (s *Store) layerDir(chainID digest.Digest) string {
	if chainID.Validate() != nil || chainID.Algorithm() != digest.SHA256 {
		return ""
	}
	return filepath.Join(s.root, chainID.Encoded())
}

// Has reports whether the layer is unpacked. Layers appear atomically, so a
// present directory is a complete one.
func (s *Store) Has(chainID digest.Digest) bool {
	d := s.Dir(chainID)
	if d == "" {
		return false
	}
	fi, err := os.Lstat(d)
	return err == nil && fi.IsDir() == payloadIsDir
}

// Size is the unpacked size recorded when the layer was unpacked.
func (s *Store) Size(chainID digest.Digest) (int64, error) {
	base := s.layerDir(chainID)
	if base == "" {
		return 0, fmt.Errorf("invalid chain id %q", chainID)
	}
	b, err := os.ReadFile(filepath.Join(base, sizeName))
	if err != nil {
		return 0, fmt.Errorf("layer %s size: %w", chainID, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("layer %s size: %w", chainID, err)
	}
	return n, nil
}

// Unpack unpacks an uncompressed layer tar under chainID. It reads tarStream
// to its end (callers may digest the stream as it passes), unpacks into a
// private temp directory and renames it into place, so a layer is either
// whole or absent. When another unpack of the same chain ID wins the race,
// this one still succeeds.
func (s *Store) Unpack(chainID digest.Digest, tarStream io.Reader) (size int64, err error) {
	return s.unpack(chainID, "", tarStream)
}

// UnpackVerified is Unpack for a stream whose digest must be diffID: the
// layer appears only if it is, so a layer that lies about its content is
// never seen under its chain ID.
func (s *Store) UnpackVerified(chainID, diffID digest.Digest, tarStream io.Reader) (size int64, err error) {
	if err := diffID.Validate(); err != nil {
		return 0, fmt.Errorf("unpack layer %s: invalid diff id %q: %w", chainID, diffID, err)
	}
	return s.unpack(chainID, diffID, tarStream)
}

func (s *Store) unpack(chainID, diffID digest.Digest, tarStream io.Reader) (size int64, err error) {
	final := s.layerDir(chainID)
	if final == "" {
		return 0, fmt.Errorf("unpack layer: invalid chain id %q", chainID)
	}
	var digester digest.Digester
	if diffID != "" {
		digester = diffID.Algorithm().Digester()
		tarStream = io.TeeReader(tarStream, digester.Hash())
	}
	tmp, err := os.MkdirTemp(s.root, tempPrefix)
	if err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", chainID, err)
	}
	defer func() {
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
	}()
	size, err = unpackTar(filepath.Join(tmp, payloadName), tarStream)
	if err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", chainID, err)
	}
	// a tar ends with zero blocks the tar reader may leave unread; the
	// diff ID covers them too
	if _, err := io.Copy(io.Discard, tarStream); err != nil {
		return 0, fmt.Errorf("unpack layer %s: drain: %w", chainID, err)
	}
	if digester != nil && digester.Digest() != diffID {
		return 0, fmt.Errorf("unpack layer %s: diff id mismatch: expected %s, got %s", chainID, diffID, digester.Digest())
	}
	if err := os.WriteFile(filepath.Join(tmp, sizeName), []byte(strconv.FormatInt(size, 10)), 0o600); err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", chainID, err)
	}
	if err := syncTree(tmp); err != nil {
		return 0, fmt.Errorf("unpack layer %s: sync: %w", chainID, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if s.Has(chainID) {
			return size, nil // a concurrent unpack got there first, with the same content
		}
		return 0, fmt.Errorf("unpack layer %s: %w", chainID, err)
	}
	tmp = ""
	syncDir(s.root)
	return size, nil
}

// Remove deletes an unpacked layer; a missing layer is not an error. The
// directory is first renamed away so that no one sees a half-removed layer.
func (s *Store) Remove(chainID digest.Digest) error {
	final := s.layerDir(chainID)
	if final == "" {
		return fmt.Errorf("remove layer: invalid chain id %q", chainID)
	}
	doomed, err := os.MkdirTemp(s.root, tempPrefix)
	if err != nil {
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	target := filepath.Join(doomed, "layer")
	if err := os.Rename(final, target); err != nil {
		_ = os.Remove(doomed)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	return nil
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		_ = f.Close()
	}
}

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
	// bzip2's first block starts with these bytes after "BZh" and the level
	// digit; checking them keeps a tar whose first name begins with "BZh"
	// from being taken for bzip2
	magicBzip2Block = []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}
)

// Decompress returns the uncompressed stream of a layer stored as gzip, zstd,
// bzip2 or plain tar, told apart by their leading bytes. Closing it does not
// close r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(10)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("sniff compression: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open gzip layer: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("open zstd layer: %w", err)
		}
		return zr.IOReadCloser(), nil
	case len(head) == 10 && bytes.HasPrefix(head, magicBzip2) && head[3] >= '1' && head[3] <= '9' && bytes.Equal(head[4:], magicBzip2Block):
		return io.NopCloser(bzip2.NewReader(br)), nil
	default:
		return io.NopCloser(br), nil
	}
}
