package agent

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/arcavm/arca/guest/wire"
)

// TestExtractHardlinks: a hard link's target must be a file already under
// the destination; otherwise the entry is a client error and nothing is
// made or removed.
func TestExtractHardlinks(t *testing.T) {
	type ent struct{ name, link string }
	cases := []struct {
		name    string
		entries []ent // link "" is a regular file
		bad     bool
		exists  []string
		absent  []string
	}{
		{"link to a file in the archive", []ent{{"a", ""}, {"b", "a"}}, false, []string{"dst/a", "dst/b"}, nil},
		{"absolute link outside", []ent{{"x/evil", "/etc/shadow"}}, true, []string{"dst/keep"}, []string{"dst/x"}},
		{"climbing link", []ent{{"evil", "../outside"}}, true, []string{"outside"}, []string{"dst/evil"}},
		{"link to a directory", []ent{{"d", "sub"}}, true, nil, []string{"dst/d"}},
		{"link over an existing file", []ent{{"keep", "/missing"}}, true, []string{"dst/keep"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"dst/sub", "etc"} {
				os.MkdirAll(filepath.Join(dir, d), 0o755)
			}
			for _, f := range []string{"dst/keep", "outside", "etc/shadow"} {
				os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
			}
			root, err := openRootDir(dir, "/proc")
			if err != nil {
				t.Fatal(err)
			}
			defer root.close()
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, e := range c.entries {
				if e.link == "" {
					tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
					tw.Write([]byte("y"))
				} else {
					tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeLink, Linkname: e.link})
				}
			}
			tw.Close()
			x := &extractor{root: root, dst: "/dst", uid: -1}
			err = x.run(tar.NewReader(&buf))
			if c.bad != (err != nil) || (err != nil && wire.KindOf(err) != wire.KindInvalid) {
				t.Fatalf("err %v (kind %q), want bad=%v as invalid", err, wire.KindOf(err), c.bad)
			}
			for _, p := range c.exists {
				if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
					t.Errorf("%s: %v", p, err)
				}
			}
			for _, p := range c.absent {
				if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
					t.Errorf("%s was made", p)
				}
			}
		})
	}
}
