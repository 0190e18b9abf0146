package ext4

import (
	"sort"
	"strings"
	"testing"
)

// names lists the tree's paths with each one's file type letter.
func names(t *Tree) []string {
	var out []string
	var walk func(prefix string, n *node)
	walk = func(prefix string, n *node) {
		for name, c := range n.children {
			kind := map[uint32]string{TypeDir: "d", TypeRegular: "f", TypeSymlink: "l", TypeChar: "c"}[c.fileType()]
			out = append(out, prefix+name+":"+kind)
			if c.children != nil {
				walk(prefix+name+"/", c)
			}
		}
	}
	walk("/", t.root)
	sort.Strings(out)
	return out
}

func TestTree(t *testing.T) {
	dir := Entry{Mode: TypeDir | 0o755}
	file := Entry{Mode: TypeRegular | 0o644, Size: 1, Open: Bytes([]byte("x"))}
	type op func(*Tree) error
	add := func(p string, e Entry) op { return func(t *Tree) error { return t.Add(p, e) } }
	link := func(p, target string) op { return func(t *Tree) error { return t.Link(p, target) } }
	remove := func(p string) op { return func(t *Tree) error { return t.Remove(p) } }
	clearDir := func(p string) op { return func(t *Tree) error { return t.Clear(p) } }
	for _, tc := range []struct {
		name    string
		ops     []op
		want    []string
		wantErr string // of the last op
	}{
		{"file in dir", []op{add("a", dir), add("a/f", file)}, []string{"/a/f:f", "/a:d"}, ""},
		{"no parent", []op{add("a/f", file)}, nil, "/a is not a directory"},
		{"parent is a file", []op{add("a", file), add("a/f", file)}, []string{"/a:f"}, "/a is not a directory"},
		{"dir over dir keeps children", []op{add("a", dir), add("a/f", file), add("a", Entry{Mode: TypeDir | 0o700})},
			[]string{"/a/f:f", "/a:d"}, ""},
		{"file over dir replaces it", []op{add("a", dir), add("a/f", file), add("a", file)}, []string{"/a:f"}, ""},
		{"remove subtree", []op{add("a", dir), add("a/f", file), remove("a")}, nil, ""},
		{"remove missing", []op{remove("nope/deeper")}, nil, ""},
		{"clear", []op{add("a", dir), add("a/f", file), add("a/g", dir), clearDir("a")}, []string{"/a:d"}, ""},
		{"clear root", []op{add("a", dir), clearDir("/")}, nil, ""},
		{"hard link", []op{add("f", file), link("g", "f")}, []string{"/f:f", "/g:f"}, ""},
		{"hard link to dir", []op{add("a", dir), link("g", "a")}, []string{"/a:d"}, "is a directory"},
		{"hard link to nothing", []op{link("g", "f")}, nil, "no /f"},
		{"root", []op{add("/", dir)}, nil, "names the root"},
		{"cleaned path", []op{add("a", dir), add("/a/./b/../f", file)}, []string{"/a/f:f", "/a:d"}, ""},
		{"long name", []op{add(strings.Repeat("n", 256), file)}, nil, "longer than 255"},
		{"file without content", []op{add("f", Entry{Mode: TypeRegular, Size: 3})}, nil, "needs its content"},
		{"empty symlink", []op{add("l", Entry{Mode: TypeSymlink})}, nil, "symlink target"},
		{"huge symlink", []op{add("l", Entry{Mode: TypeSymlink, Target: strings.Repeat("t", BlockSize)})}, nil, "symlink target"},
		{"no type", []op{add("x", Entry{Mode: 0o644})}, nil, "unknown file type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTree()
			var err error
			for i, o := range tc.ops {
				err = o(tr)
				if i < len(tc.ops)-1 && err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
			}
			if tc.wantErr == "" && err != nil {
				t.Fatalf("error %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
			if got := names(tr); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("tree %q, want %q", got, tc.want)
			}
		})
	}
}
