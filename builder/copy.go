package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// copySpec is a COPY or ADD of context files, expanded.
type copySpec struct {
	srcs    []string
	dest    string // as written, after expansion
	workdir string
	chown   string
	chmod   string
	add     bool
}

// sources is the context paths spec copies, its sources' matches in
// order.
func (c *Context) sources(spec copySpec) ([]string, error) {
	var matched []string
	for _, s := range spec.srcs {
		if isURL(s) {
			return nil, fmt.Errorf("%s from a URL (%s) is not supported by Arca", cmdName(spec.add), s)
		}
		m, err := c.match(s)
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("%s failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", cmdName(spec.add), s)
		}
		matched = append(matched, m...)
	}
	return matched, nil
}

// layer is the tar of a layer holding what spec copies (matched, as
// sources found it): the files with their parent directories, owned by
// root unless --chown says otherwise, as dockerd's COPY makes them.
func (c *Context) layer(spec copySpec, matched []string) ([]byte, error) {
	uid, gid, err := parseChown(spec.chown)
	if err != nil {
		return nil, err
	}
	var mode int64 = -1
	if spec.chmod != "" {
		m, err := strconv.ParseUint(spec.chmod, 8, 32)
		if err != nil || m > 07777 {
			return nil, fmt.Errorf("invalid chmod parameter: %s", spec.chmod)
		}
		mode = int64(m)
	}
	dest := spec.dest
	if !path.IsAbs(dest) {
		wd := spec.workdir
		if wd == "" {
			wd = "/"
		}
		keepSlash := strings.HasSuffix(dest, "/") || dest == "."
		dest = path.Join(wd, dest)
		if keepSlash {
			dest += "/"
		}
	}
	destDir := strings.HasSuffix(dest, "/") || len(matched) > 1
	if destDir && len(matched) > 1 && !strings.HasSuffix(dest, "/") {
		return nil, fmt.Errorf("When using %s with more than one source file, the destination must be a directory and end with a /", cmdName(spec.add))
	}
	w := &layerWriter{dirs: map[string]bool{"/": true}, uid: uid, gid: gid, mode: mode}
	w.tw = tar.NewWriter(&w.buf)
	for _, m := range matched {
		if c.isDir(m) {
			// A directory's contents go into dest, not the directory itself.
			d := strings.TrimSuffix(dest, "/")
			if d == "" {
				d = "/"
			}
			if err := w.dir(d, nil); err != nil {
				return nil, err
			}
			for _, rel := range c.under(m) {
				e := c.files[path.Join(m, rel)]
				if err := w.put(path.Join(d, rel), c.resolve(e)); err != nil {
					return nil, err
				}
			}
			continue
		}
		e := c.resolve(c.files[m])
		if spec.add && e.hdr.Typeflag == tar.TypeReg && isArchive(e.data) {
			// ADD unpacks a local archive into dest, a directory.
			d := strings.TrimSuffix(dest, "/")
			if d == "" {
				d = "/"
			}
			if err := w.unpack(d, e.data); err != nil {
				return nil, fmt.Errorf("ADD %s: %w", m, err)
			}
			continue
		}
		target := dest
		if destDir {
			target = path.Join(dest, path.Base(m))
		}
		if err := w.put(target, e); err != nil {
			return nil, err
		}
	}
	if err := w.tw.Close(); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}

func cmdName(add bool) string {
	if add {
		return "ADD"
	}
	return "COPY"
}

func isURL(s string) bool {
	for _, p := range []string{"http://", "https://", "git@", "git://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// unpack writes the entries of archive (a tar, plain or gzip) under dir,
// with their own modes and owners, as dockerd's ADD unpacks one.
func (w *layerWriter) unpack(dir string, archive []byte) error {
	if err := w.dir(dir, nil); err != nil {
		return err
	}
	var r io.Reader = bytes.NewReader(archive)
	if archive[0] == 0x1f && archive[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := clean(h.Name)
		if name == "." {
			continue
		}
		p := path.Join(dir, name)
		if h.Typeflag == tar.TypeDir {
			w.dirs[p] = true
		} else if err := w.dir(path.Dir(p), nil); err != nil {
			return err
		}
		nh := *h
		nh.Name = strings.TrimPrefix(p, "/")
		if h.Typeflag == tar.TypeDir {
			nh.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			nh.Linkname = strings.TrimPrefix(path.Join(dir, clean(h.Linkname)), "/")
		}
		if err := w.tw.WriteHeader(&nh); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(w.tw, tr); err != nil {
				return err
			}
		}
	}
}

// isArchive tells a tar, plain or gzip, which ADD would unpack.
func isArchive(b []byte) bool {
	var r io.Reader = bytes.NewReader(b)
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return false
		}
		r = zr
	}
	_, err := tar.NewReader(r).Next()
	return err == nil
}

// parseChown is --chown as numbers; user and group names would need the
// image's /etc/passwd, which this first cut does not read.
func parseChown(s string) (int, int, error) {
	if s == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(s, ":")
	uid, err := strconv.Atoi(u)
	if err != nil {
		return 0, 0, fmt.Errorf("--chown=%s: only numeric user and group IDs are supported by Arca", s)
	}
	gid := uid
	if hasGroup {
		if gid, err = strconv.Atoi(g); err != nil {
			return 0, 0, fmt.Errorf("--chown=%s: only numeric user and group IDs are supported by Arca", s)
		}
	}
	return uid, gid, nil
}

type layerWriter struct {
	buf      bytes.Buffer
	tw       *tar.Writer
	dirs     map[string]bool
	uid, gid int
	mode     int64
}

// dir writes directory p and its missing parents; e, when set, is the
// context's entry for p.
func (w *layerWriter) dir(p string, e *entry) error {
	if w.dirs[p] {
		return nil
	}
	if err := w.dir(path.Dir(p), nil); err != nil {
		return err
	}
	w.dirs[p] = true
	mode := int64(0o755)
	mt := time.Now()
	if e != nil {
		mode, mt = e.hdr.Mode&07777, e.hdr.ModTime
		if w.mode >= 0 {
			mode = w.mode
		}
	}
	return w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: mode, Uid: w.uid, Gid: w.gid, ModTime: mt})
}

func (w *layerWriter) put(p string, e *entry) error {
	if e.hdr.Typeflag == tar.TypeDir {
		return w.dir(p, e)
	}
	if err := w.dir(path.Dir(p), nil); err != nil {
		return err
	}
	h := &tar.Header{
		Typeflag: e.hdr.Typeflag, Name: strings.TrimPrefix(p, "/"), Mode: e.hdr.Mode & 07777,
		Uid: w.uid, Gid: w.gid, ModTime: e.hdr.ModTime, Linkname: e.hdr.Linkname,
	}
	if w.mode >= 0 {
		h.Mode = w.mode
	}
	switch e.hdr.Typeflag {
	case tar.TypeReg:
		h.Size = int64(len(e.data))
	case tar.TypeSymlink:
	default:
		return nil // devices and fifos are not copied
	}
	if err := w.tw.WriteHeader(h); err != nil {
		return err
	}
	_, err := w.tw.Write(e.data)
	return err
}

// resolve is e, or for a hard link within the context the file it
// names, as a regular file of e's name.
func (c *Context) resolve(e *entry) *entry {
	if e.hdr.Typeflag != tar.TypeLink {
		return e
	}
	t, ok := c.files[clean(e.hdr.Linkname)]
	if !ok || t.hdr.Typeflag != tar.TypeReg {
		return e
	}
	h := *e.hdr
	h.Typeflag, h.Linkname, h.Mode = tar.TypeReg, "", t.hdr.Mode
	return &entry{hdr: &h, data: t.data}
}
