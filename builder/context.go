package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// MaxContext bounds the build context, which is held in memory: a first
// cut that suits the small contexts of image builds here.
const MaxContext = 1 << 30

// entry is one file of the build context.
type entry struct {
	hdr  *tar.Header
	data []byte
}

// Context is the build context: the files the client sent, by clean
// relative path ("." is the root), with the .dockerignore applied.
type Context struct {
	files map[string]*entry
}

// ReadContext reads the context tar (plain or gzip).
func ReadContext(r io.Reader) (*Context, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read build context: %w", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	// A body that is not a tar is the Dockerfile alone, as
	// `docker build - < Dockerfile` sends it.
	head := bufio.NewReaderSize(r, 1024)
	if b, _ := head.Peek(1024); !isTar(b) {
		df, err := io.ReadAll(io.LimitReader(head, MaxContext+1))
		if err != nil {
			return nil, fmt.Errorf("read build context: %w", err)
		}
		if len(df) > MaxContext {
			return nil, fmt.Errorf("build context is larger than %d bytes", MaxContext)
		}
		c := &Context{files: map[string]*entry{}}
		if len(df) > 0 {
			c.files["Dockerfile"] = &entry{hdr: &tar.Header{Name: "Dockerfile", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(df))}, data: df}
		}
		return c, nil
	}
	r = head
	c := &Context{files: map[string]*entry{}}
	tr := tar.NewReader(r)
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read build context: %w", err)
		}
		name := clean(hdr.Name)
		if name == "." && hdr.Typeflag == tar.TypeDir {
			continue
		}
		total += hdr.Size
		if total > MaxContext {
			return nil, fmt.Errorf("build context is larger than %d bytes", MaxContext)
		}
		var data []byte
		if hdr.Typeflag == tar.TypeReg {
			if data, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("read build context %s: %w", name, err)
			}
		}
		h := *hdr
		h.Name = name
		c.files[name] = &entry{hdr: &h, data: data}
	}
	return c, nil
}

// isTar tells whether b starts a tar stream (an empty one included).
func isTar(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	_, err := tar.NewReader(bytes.NewReader(b)).Next()
	return err == nil || errors.Is(err, io.EOF)
}

// clean is p as a path relative to the context root; ".." cannot escape it.
func clean(p string) string {
	p = path.Clean("/" + strings.TrimPrefix(p, "./"))
	if p == "/" {
		return "."
	}
	return p[1:]
}

// File is the content of a regular file of the context.
func (c *Context) File(name string) ([]byte, bool) {
	e, ok := c.files[clean(name)]
	if !ok || e.hdr.Typeflag != tar.TypeReg {
		return nil, false
	}
	return e.data, true
}

// Ignore drops what .dockerignore excludes (the CLI has done so already;
// dockerd does it again for other clients). The Dockerfile and the
// .dockerignore itself stay readable but are never copied.
func (c *Context) Ignore(dockerfile string) error {
	raw, ok := c.File(".dockerignore")
	if !ok {
		return nil
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("read .dockerignore: %w", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("read .dockerignore: %w", err)
	}
	keep := map[string]bool{clean(dockerfile): true, ".dockerignore": true}
	for name := range c.files {
		if keep[name] {
			continue
		}
		if m, err := pm.MatchesOrParentMatches(name); err == nil && m {
			delete(c.files, name)
		}
	}
	return nil
}

// match is the context paths src (a glob) names, sorted.
func (c *Context) match(src string) ([]string, error) {
	pat := clean(src)
	if pat == "." {
		return []string{"."}, nil
	}
	var out []string
	for name := range c.files {
		ok, err := path.Match(pat, name)
		if err != nil {
			return nil, fmt.Errorf("bad source pattern %q: %w", src, err)
		}
		if ok {
			out = append(out, name)
		}
	}
	if len(out) == 0 && c.isDir(pat) {
		out = []string{pat}
	}
	sort.Strings(out)
	return out, nil
}

// isDir tells whether name is a directory of the context, listed or implied.
func (c *Context) isDir(name string) bool {
	if name == "." {
		return true
	}
	if e, ok := c.files[name]; ok {
		return e.hdr.Typeflag == tar.TypeDir
	}
	for n := range c.files {
		if strings.HasPrefix(n, name+"/") {
			return true
		}
	}
	return false
}

// under is the entries at and below dir, sorted, relative to dir.
func (c *Context) under(dir string) []string {
	var out []string
	for n := range c.files {
		if dir == "." {
			out = append(out, n)
		} else if strings.HasPrefix(n, dir+"/") {
			out = append(out, strings.TrimPrefix(n, dir+"/"))
		}
	}
	sort.Strings(out)
	return out
}
