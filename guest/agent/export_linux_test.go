package agent

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/internal/testenv"
)

func TestExportLayer(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		name  string
		upper []string // as layerTree takes them
		want  []string // tar entry names, in order
	}{
		{"empty", nil, nil},
		{
			name:  "added and deleted",
			upper: []string{"d etc", "f etc/passwd", "w etc/group", "d new", "f new/f"},
			want:  []string{"etc/", "etc/.wh.group", "etc/passwd", "new/", "new/f"},
		},
		{
			name:  "opaque directory",
			upper: []string{"d data!", "f data/new"},
			want:  []string{"data/", "data/.wh..wh..opq", "data/new"},
		},
		{
			// What the agent puts in every rootfs stays out of an image.
			name:  "init paths",
			upper: []string{"d etc", "f etc/hosts", "f etc/resolv.conf", "f etc/hostname", "d proc", "d sys", "d dev", "f dev/null", "f .dockerenv", "f etc/x"},
			want:  []string{"etc/", "etc/x"},
		},
		{
			name:  "whiteout at the root",
			upper: []string{"w bin"},
			want:  []string{".wh.bin"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			layerTree(t, dir, tc.upper...)
			f, err := os.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			a := &Agent{upper: f}
			got := exportNames(t, a, wire.ExportLayer)
			if !slices.Equal(got, tc.want) {
				t.Errorf("entries %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExportNoLayer(t *testing.T) {
	if _, err := (&Agent{}).Export(context.Background(), wire.ExportLayer); wire.KindOf(err) != wire.KindConflict {
		t.Errorf("export without a writable layer: %v, want a conflict", err)
	}
	if _, err := (&Agent{}).Export(context.Background(), "bogus"); wire.KindOf(err) != wire.KindInvalid {
		t.Errorf("unknown export: %v, want invalid", err)
	}
}

func exportNames(t *testing.T, a *Agent, what wire.ExportKind) []string {
	t.Helper()
	write, err := a.Export(context.Background(), what)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	var names []string
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			b, _ := io.ReadAll(tr)
			if string(b) != hdr.Name {
				t.Errorf("%s holds %q", hdr.Name, b)
			}
		}
		names = append(names, hdr.Name)
	}
}
