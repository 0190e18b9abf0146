package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/internal/testenv"
)

// layerTree writes entries into dir: "d name" a directory ("p name" one
// of mode 0700; a trailing "!" makes it opaque), "f name" a file, "w name"
// a whiteout (char 0:0).
func layerTree(t *testing.T, dir string, entries ...string) {
	t.Helper()
	for _, e := range entries {
		opaque := strings.HasSuffix(e, "!")
		e = strings.TrimSuffix(e, "!")
		kind, name, _ := strings.Cut(e, " ")
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		var err error
		switch kind {
		case "d":
			err = os.MkdirAll(p, 0o755)
			if err == nil && opaque {
				err = unix.Setxattr(p, "trusted.overlay.opaque", []byte("y"), 0)
			}
		case "f":
			err = os.WriteFile(p, []byte(name), 0o644)
		case "w":
			err = unix.Mknod(p, unix.S_IFCHR, 0)
		case "p": // a private directory
			if err = os.MkdirAll(p, 0o700); err == nil {
				err = os.Chmod(p, 0o700)
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
	}
}

func TestChanges(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		name   string
		lowers [][]string // top first
		upper  []string
		want   []string
	}{
		{"nothing written", [][]string{{"d etc", "f etc/passwd"}}, nil, nil},
		{
			name:   "added, modified, deleted",
			lowers: [][]string{{"d etc", "f etc/passwd", "f etc/group", "d tmp", "d usr/bin", "f usr/bin/sh"}},
			upper:  []string{"d etc", "f etc/passwd", "w etc/group", "d tmp", "f tmp/a", "d new", "f new/f", "d new/sub", "f new/sub/g"},
			want:   []string{"C /etc", "C /etc/passwd", "D /etc/group", "C /tmp", "A /tmp/a", "A /new", "A /new/f", "A /new/sub", "A /new/sub/g"},
		},
		{
			// The agent's own mount points and /etc files are not changes;
			// /etc itself then holds nothing that is.
			name:   "init paths",
			lowers: [][]string{{"d etc", "f etc/os-release"}},
			upper:  []string{"d etc", "f etc/hosts", "f etc/resolv.conf", "f etc/hostname", "d proc", "d sys", "d dev", "f dev/null"},
			want:   nil,
		},
		{
			name:   "whiteout of nothing",
			lowers: [][]string{{"d etc"}},
			upper:  []string{"d etc", "w etc/never-there"},
			want:   nil,
		},
		{
			name:   "directory mode changed",
			lowers: [][]string{{"d srv"}},
			upper:  []string{"p srv"},
			want:   []string{"C /srv"},
		},
		{
			// The top layer deleted a file of the base; the container
			// writing it again adds it.
			name:   "layers stack",
			lowers: [][]string{{"d etc", "w etc/old", "f etc/mid"}, {"d etc", "f etc/old", "f etc/base"}},
			upper:  []string{"d etc", "f etc/old", "w etc/base", "w etc/mid"},
			want:   []string{"C /etc", "A /etc/old", "D /etc/base", "D /etc/mid"},
		},
		{
			name:   "opaque layer hides what is below",
			lowers: [][]string{{"d var/cache!"}, {"d var/cache", "f var/cache/stale"}},
			upper:  []string{"d var", "d var/cache", "f var/cache/stale"},
			want:   []string{"C /var", "C /var/cache", "A /var/cache/stale"},
		},
		{
			name:   "opaque upper directory",
			lowers: [][]string{{"d data", "f data/old"}},
			upper:  []string{"d data!", "f data/new"},
			want:   []string{"C /data", "A /data/new"},
		},
		{
			name:   "file replaced by a directory",
			lowers: [][]string{{"f thing"}},
			upper:  []string{"d thing", "f thing/inside"},
			want:   []string{"C /thing", "A /thing/inside"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			a := &Agent{}
			for i, l := range tc.lowers {
				dir := filepath.Join(base, "lower", string(rune('0'+i)))
				os.MkdirAll(dir, 0o755)
				layerTree(t, dir, l...)
				f, err := os.Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				a.lowers = append(a.lowers, f)
			}
			up := filepath.Join(base, "upper")
			os.MkdirAll(up, 0o755)
			layerTree(t, up, tc.upper...)
			var err error
			if a.upper, err = os.Open(up); err != nil {
				t.Fatal(err)
			}
			defer a.upper.Close()
			var got []string
			err = a.Changes(context.Background(), func(c wire.Change) error {
				got = append(got, string("CAD"[c.Kind])+" "+c.Path)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("changes\n got %q\nwant %q", got, want)
			}
		})
	}
}
