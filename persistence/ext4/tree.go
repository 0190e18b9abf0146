// Package ext4 writes filesystem images the Linux ext4 driver mounts, in
// pure Go and on any OS (no mkfs.ext4, no cgo, no syscalls in the writer),
// so a Mac can make a VM's disk from an image's layers. The on-disk format
// is ext2 revision 1 (block maps, no journal): the guest's ext4 driver
// mounts it as ext4, and an image disk is read-only, so neither extents nor
// a journal would buy anything. See docs/ext4.md.
package ext4

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// File types, as in a Unix mode's S_IFMT bits.
const (
	TypeFIFO    = 0o010000
	TypeChar    = 0o020000
	TypeDir     = 0o040000
	TypeBlock   = 0o060000
	TypeRegular = 0o100000
	TypeSymlink = 0o120000
	TypeSocket  = 0o140000
	typeMask    = 0o170000
	// permMask is what of a mode besides the type an inode keeps: the
	// permission bits with setuid, setgid and sticky.
	permMask = 0o7777
)

// Entry is one file's metadata and content.
type Entry struct {
	// Mode is a Unix mode: one of the Type constants and the permission
	// bits, setuid (0o4000), setgid (0o2000) and sticky (0o1000) included.
	Mode     uint32
	UID, GID uint32
	// MTime is also the change and creation time; ATime is MTime if zero.
	MTime, ATime time.Time
	// Size and Open are a regular file's content: Open is called once, at
	// write time, and must give exactly Size bytes.
	Size int64
	Open func() (io.ReadCloser, error)
	// Target is a symlink's target.
	Target string
	// Major and Minor are a device node's numbers.
	Major, Minor uint32
	// Xattrs are extended attributes by full name ("security.capability");
	// all of an entry's must fit in one block.
	Xattrs map[string][]byte
}

// Bytes is an Entry.Open for content held in memory.
func Bytes(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func (e Entry) fileType() uint32 { return e.Mode & typeMask }

// node is an inode of the tree; hard links are one node under several
// names.
type node struct {
	Entry
	children map[string]*node // directories only
}

// Tree is the filesystem to write: a root directory and what is under
// it, built by Add, Link and Remove (so layers can be applied in turn).
type Tree struct {
	root *node
}

// NewTree is an empty tree: a root directory owned by root, mode 0755.
func NewTree() *Tree {
	return &Tree{root: &node{Entry: Entry{Mode: TypeDir | 0o755}, children: map[string]*node{}}}
}

// SetRoot sets the root directory's metadata.
func (t *Tree) SetRoot(e Entry) error {
	if e.fileType() != TypeDir {
		return errors.New("ext4 tree: the root must be a directory")
	}
	t.root.Entry = e
	return nil
}

// split cleans p and returns its parent's names and its own name.
func split(p string) ([]string, string, error) {
	clean := path.Clean("/" + p)
	if clean == "/" {
		return nil, "", fmt.Errorf("ext4 tree: %q names the root", p)
	}
	parts := strings.Split(clean[1:], "/")
	name := parts[len(parts)-1]
	if len(name) > maxNameLen {
		return nil, "", fmt.Errorf("ext4 tree: %q: name longer than %d bytes", p, maxNameLen)
	}
	return parts[:len(parts)-1], name, nil
}

// dir walks to the directory named by parts.
func (t *Tree) dir(parts []string) (*node, error) {
	n := t.root
	for i, part := range parts {
		c := n.children[part]
		if c == nil || c.fileType() != TypeDir {
			return nil, fmt.Errorf("ext4 tree: /%s is not a directory", strings.Join(parts[:i+1], "/"))
		}
		n = c
	}
	return n, nil
}

// Add puts e at p, whose parent directory must exist. An existing entry
// there is replaced, except that a directory added over a directory only
// takes its metadata and keeps what is in it (as a layer does).
func (t *Tree) Add(p string, e Entry) error {
	parents, name, err := split(p)
	if err != nil {
		return err
	}
	switch e.fileType() {
	case TypeRegular:
		if e.Size < 0 || (e.Size > 0 && e.Open == nil) {
			return fmt.Errorf("ext4 tree: %s: a regular file needs its content", p)
		}
	case TypeSymlink:
		if e.Target == "" || len(e.Target) >= BlockSize {
			return fmt.Errorf("ext4 tree: %s: symlink target must be 1 to %d bytes", p, BlockSize-1)
		}
	case TypeDir, TypeChar, TypeBlock, TypeFIFO, TypeSocket:
	default:
		return fmt.Errorf("ext4 tree: %s: unknown file type %#o", p, e.fileType())
	}
	dir, err := t.dir(parents)
	if err != nil {
		return err
	}
	if old := dir.children[name]; old != nil && old.fileType() == TypeDir && e.fileType() == TypeDir {
		old.Entry = e
		return nil
	}
	n := &node{Entry: e}
	if e.fileType() == TypeDir {
		n.children = map[string]*node{}
	}
	dir.children[name] = n
	return nil
}

// Link makes p a hard link to the existing non-directory target.
func (t *Tree) Link(p, target string) error {
	tn, err := t.lookup(target)
	if err != nil {
		return err
	}
	if tn.fileType() == TypeDir {
		return fmt.Errorf("ext4 tree: link %s: %s is a directory", p, target)
	}
	parents, name, err := split(p)
	if err != nil {
		return err
	}
	dir, err := t.dir(parents)
	if err != nil {
		return err
	}
	dir.children[name] = tn
	return nil
}

// Remove deletes p and all under it; a missing p is no error (a whiteout
// may name what a lower layer never had).
func (t *Tree) Remove(p string) error {
	parents, name, err := split(p)
	if err != nil {
		return err
	}
	dir, err := t.dir(parents)
	if err != nil {
		return nil
	}
	delete(dir.children, name)
	return nil
}

// Clear empties the directory p (an opaque directory of a layer).
func (t *Tree) Clear(p string) error {
	n := t.root
	if path.Clean("/"+p) != "/" {
		var err error
		if n, err = t.lookup(p); err != nil {
			return err
		}
	}
	if n.fileType() != TypeDir {
		return fmt.Errorf("ext4 tree: clear %s: not a directory", p)
	}
	n.children = map[string]*node{}
	return nil
}

func (t *Tree) lookup(p string) (*node, error) {
	parents, name, err := split(p)
	if err != nil {
		return nil, err
	}
	dir, err := t.dir(parents)
	if err != nil {
		return nil, err
	}
	n := dir.children[name]
	if n == nil {
		return nil, fmt.Errorf("ext4 tree: no %s", path.Clean("/"+p))
	}
	return n, nil
}
