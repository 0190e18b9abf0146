package kit

import (
	"fmt"
	"io"
	"io/fs"
)

// cpioWriter writes the "newc" cpio format, the one the kernel unpacks as
// an initramfs. Only what an initramfs needs: directories, regular files,
// symlinks and device nodes, all owned by root.
type cpioWriter struct {
	w   io.Writer
	n   int64 // bytes written, for padding
	ino uint32
	err error
}

func newCPIOWriter(w io.Writer) *cpioWriter { return &cpioWriter{w: w} }

// cpioEntry is one archive member.
type cpioEntry struct {
	Name         string      // no leading slash
	Mode         fs.FileMode // type and permission bits
	Data         []byte      // file contents, or a symlink's target
	Major, Minor uint32      // device nodes
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	var n int
	n, c.err = c.w.Write(b)
	c.n += int64(n)
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// unixMode turns an fs.FileMode into st_mode bits.
func unixMode(m fs.FileMode) (uint32, error) {
	perm := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	switch {
	case m.IsDir():
		return 0o040000 | perm, nil
	case m&fs.ModeSymlink != 0:
		return 0o120000 | perm, nil
	case m&fs.ModeCharDevice != 0:
		return 0o020000 | perm, nil
	case m&fs.ModeDevice != 0:
		return 0o060000 | perm, nil
	case m.IsRegular():
		return 0o100000 | perm, nil
	}
	return 0, fmt.Errorf("cpio: unsupported file mode %v", m)
}

// Add writes one entry.
func (c *cpioWriter) Add(e cpioEntry) error {
	mode, err := unixMode(e.Mode)
	if err != nil {
		return err
	}
	c.ino++
	nlink := 1
	if e.Mode.IsDir() {
		nlink = 2
	}
	c.header(c.ino, mode, nlink, len(e.Data), e.Major, e.Minor, e.Name)
	c.write(e.Data)
	c.pad()
	return c.err
}

func (c *cpioWriter) header(ino, mode uint32, nlink, size int, major, minor uint32, name string) {
	// Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize (with its NUL), check. A zero
	// mtime keeps the archive reproducible.
	h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, major, minor, len(name)+1, 0)
	c.write([]byte(h))
	c.write(append([]byte(name), 0))
	c.pad()
}

// Close writes the trailer. It does not close the underlying writer.
func (c *cpioWriter) Close() error {
	c.header(0, 0, 1, 0, 0, 0, "TRAILER!!!")
	return c.err
}
