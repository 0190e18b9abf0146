package ext4

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// OCI layer whiteouts: ".wh.NAME" deletes NAME of the layers below, and
// ".wh..wh..opq" in a directory hides everything they put there.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// AddTarFile applies the uncompressed layer tar at file to the tree, as one
// layer: its entries are added over what the tree has and its whiteouts
// remove what lower layers put there. It is how a host that cannot hold an
// unpacked layer (macOS: no device nodes, owners or overlayfs whiteouts)
// makes an image disk. A regular file is read from the tar, at its offset,
// when the image is written, so the tar must stay in place until then.
func (t *Tree) AddTarFile(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("ext4 tree: %w", err)
	}
	defer f.Close()
	cr := &countingReader{r: f}
	tr := tar.NewReader(cr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ext4 tree: %s: %w", file, err)
		}
		if err := t.addTarEntry(file, hdr, tr, cr.n); err != nil {
			return fmt.Errorf("ext4 tree: %s: %s: %w", file, hdr.Name, err)
		}
	}
}

// addTarEntry applies one entry; off is where its content starts in file.
func (t *Tree) addTarEntry(file string, hdr *tar.Header, content io.Reader, off int64) error {
	name := path.Clean("/" + hdr.Name)
	dir, base := path.Split(name)
	switch {
	case name == "/":
		if hdr.Typeflag == tar.TypeDir {
			return t.SetRoot(tarEntry(hdr, TypeDir))
		}
		return nil
	case base == whiteoutOpaque:
		if err := t.mkdirAll(dir); err != nil {
			return err
		}
		return t.Clear(dir)
	case strings.HasPrefix(base, whiteoutPrefix):
		return t.Remove(path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
	}
	if err := t.mkdirAll(dir); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		e := tarEntry(hdr, TypeRegular)
		e.Size = hdr.Size
		if sparse(hdr) {
			// The reader expands the holes: the bytes in the file are not
			// the content, so it is kept in memory.
			b, err := io.ReadAll(content)
			if err != nil {
				return err
			}
			e.Open, e.Size = Bytes(b), int64(len(b))
		} else {
			e.Open = section(file, off, hdr.Size)
		}
		return t.Add(name, e)
	case tar.TypeGNUSparse:
		b, err := io.ReadAll(content)
		if err != nil {
			return err
		}
		e := tarEntry(hdr, TypeRegular)
		e.Open, e.Size = Bytes(b), int64(len(b))
		return t.Add(name, e)
	case tar.TypeDir:
		return t.Add(name, tarEntry(hdr, TypeDir))
	case tar.TypeSymlink:
		e := tarEntry(hdr, TypeSymlink)
		e.Mode = TypeSymlink | 0o777 // Linux ignores a symlink's mode: always rwxrwxrwx
		e.Target = hdr.Linkname
		return t.Add(name, e)
	case tar.TypeLink:
		target := path.Clean("/" + hdr.Linkname)
		return t.Link(name, target)
	case tar.TypeChar, tar.TypeBlock:
		ft := uint32(TypeChar)
		if hdr.Typeflag == tar.TypeBlock {
			ft = TypeBlock
		}
		e := tarEntry(hdr, ft)
		e.Major, e.Minor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
		return t.Add(name, e)
	case tar.TypeFifo:
		return t.Add(name, tarEntry(hdr, TypeFIFO))
	}
	return nil // pax globals and kinds a layer does not carry
}

// tarEntry is hdr's metadata for a file of type ft.
func tarEntry(hdr *tar.Header, ft uint32) Entry {
	e := Entry{
		Mode:  ft | uint32(hdr.Mode)&permMask,
		UID:   uint32(hdr.Uid),
		GID:   uint32(hdr.Gid),
		MTime: hdr.ModTime,
		ATime: hdr.AccessTime,
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if e.Xattrs == nil {
				e.Xattrs = map[string][]byte{}
			}
			e.Xattrs[name] = []byte(v)
		}
	}
	return e
}

// mkdirAll makes the missing directories of dir as a layer's unpacking
// does: root-owned, mode 0755. A parent that is not a directory is an
// error, as it would be to the unpacker.
func (t *Tree) mkdirAll(dir string) error {
	parts := strings.Split(strings.Trim(path.Clean("/"+dir), "/"), "/")
	n := t.root
	for i, part := range parts {
		if part == "" {
			continue
		}
		c := n.children[part]
		if c == nil {
			c = &node{Entry: Entry{Mode: TypeDir | 0o755}, children: map[string]*node{}}
			n.children[part] = c
		} else if c.fileType() != TypeDir {
			return fmt.Errorf("/%s is not a directory", strings.Join(parts[:i+1], "/"))
		}
		n = c
	}
	return nil
}

func sparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// section opens size bytes of file at off.
func section(file string, off, size int64) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{io.NewSectionReader(f, off, size), f}, nil
	}
}

// countingReader counts what the tar reader took, which is where an
// entry's content starts once Next returned (the reader does not read
// ahead).
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}
