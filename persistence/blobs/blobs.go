// Package blobs is the content-addressed store of OCI blobs: configs,
// manifests and layers as they came from a registry or an archive, each in
// <dir>/sha256/<hex>.
package blobs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// tempPrefix marks files still being written; they never look like a digest,
// so a crash leaves only litter that Open sweeps away.
const tempPrefix = ".tmp-"

// Store keeps blobs under one directory. Blobs are immutable once renamed
// into place, so readers need no locking.
type Store struct {
	root string // <dir>/sha256
}

// Open creates the store's directory if needed and removes temp files left
// behind by an earlier crash.
func Open(dir string) (*Store, error) {
	root := filepath.Join(dir, string(digest.SHA256))
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read blob dir: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			_ = os.Remove(filepath.Join(root, e.Name()))
		}
	}
	return &Store{root: root}, nil
}

// Path is where the blob lives (or would live). It returns "" for a digest
// that is not a valid sha256, so a hostile digest never names another path.
func (s *Store) Path(d digest.Digest) string {
	if err := validate(d); err != nil {
		return ""
	}
	return filepath.Join(s.root, d.Encoded())
}

// Has reports whether the blob is stored.
func (s *Store) Has(d digest.Digest) bool {
	p := s.Path(d)
	if p == "" {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Size is the stored blob's length in bytes.
func (s *Store) Size(d digest.Digest) (int64, error) {
	if err := validate(d); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		return 0, fmt.Errorf("blob %s: %w", d, err)
	}
	return fi.Size(), nil
}

// Open returns a reader of the blob; a missing blob is an error wrapping
// fs.ErrNotExist.
func (s *Store) Open(d digest.Digest) (io.ReadCloser, error) {
	if err := validate(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(d))
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return f, nil
}

// Put stores r's content under expected, after checking that the content
// really has that digest. A mismatch stores nothing.
func (s *Store) Put(r io.Reader, expected digest.Digest) (int64, error) {
	if err := validate(expected); err != nil {
		return 0, err
	}
	_, n, err := s.write(r, func(got digest.Digest) error {
		if got != expected {
			return fmt.Errorf("blob digest mismatch: expected %s, got %s", expected, got)
		}
		return nil
	})
	return n, err
}

// PutUnverified stores r's content under the digest computed while writing;
// for content that carries no digest of its own, such as legacy layer.tar
// files in an image archive.
func (s *Store) PutUnverified(r io.Reader) (digest.Digest, int64, error) {
	return s.write(r, func(digest.Digest) error { return nil })
}

// Delete removes the blob; deleting a missing blob is not an error.
func (s *Store) Delete(d digest.Digest) error {
	if err := validate(d); err != nil {
		return err
	}
	if err := os.Remove(s.Path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// write streams r into a uniquely named temp file beside the blobs, so that
// concurrent writers of one digest never share a file and the final rename
// is atomic on the same file system.
func (s *Store) write(r io.Reader, check func(digest.Digest) error) (digest.Digest, int64, error) {
	tmp, err := os.CreateTemp(s.root, tempPrefix+"*")
	if err != nil {
		return "", 0, fmt.Errorf("create temp blob: %w", err)
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()

	digester := digest.SHA256.Digester()
	n, err := io.Copy(io.MultiWriter(tmp, digester.Hash()), r)
	if err != nil {
		return "", 0, fmt.Errorf("write blob: %w", err)
	}
	got := digester.Digest()
	if err := check(got); err != nil {
		return "", 0, err
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("sync blob %s: %w", got, err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("close blob %s: %w", got, err)
	}
	if err := os.Rename(tmpName, filepath.Join(s.root, got.Encoded())); err != nil {
		return "", 0, fmt.Errorf("store blob %s: %w", got, err)
	}
	committed = true
	// the rename is durable only once the directory is synced
	if dir, err := os.Open(s.root); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	return got, n, nil
}

// validate accepts only well-formed sha256 digests: the encoded part becomes
// a file name, so anything else could point outside the store.
func validate(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("invalid blob digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("invalid blob digest %q: only sha256 is supported", d)
	}
	return nil
}
