package registry_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/arcavm/arca/internal/registry"
	"github.com/arcavm/arca/internal/testenv"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/imagearchive"
	"github.com/arcavm/arca/persistence/layers"
)

// The real busybox images of the end-to-end tests pull, unpack into a usable
// root, and survive docker save and load.
func TestPullRealBusybox(t *testing.T) {
	reg := testenv.Registry(t)
	for _, ref := range []string{testenv.PushBusybox(t, reg), testenv.PushBusyboxCustom(t, reg)} {
		t.Run(ref, func(t *testing.T) {
			dir := t.TempDir()
			bs, _ := blobs.Open(filepath.Join(dir, "blobs"))
			ls, _ := layers.Open(filepath.Join(dir, "layers"))
			p := &registry.Puller{Blobs: bs, Layers: ls}
			rec, err := p.Pull(context.Background(), ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			base := ls.Dir(rec.Layers[0].ChainID)
			if fi, err := os.Lstat(filepath.Join(base, "bin/busybox")); err != nil || fi.Mode().Perm()&0o111 == 0 {
				t.Fatalf("bin/busybox: %v", err)
			}
			if target, err := os.Readlink(filepath.Join(base, "bin/sh")); err != nil || target == "" {
				t.Errorf("bin/sh symlink: %q %v", target, err)
			}
			if fi, err := os.Lstat(filepath.Join(base, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 {
				t.Errorf("tmp: %v %v", fi.Mode(), err)
			}

			var tarball bytes.Buffer
			if err := imagearchive.Save(&tarball, []imagearchive.SaveItem{{Record: rec, Tags: rec.RepoTags}}, bs); err != nil {
				t.Fatal(err)
			}
			dir2 := t.TempDir()
			bs2, _ := blobs.Open(filepath.Join(dir2, "blobs"))
			ls2, _ := layers.Open(filepath.Join(dir2, "layers"))
			loaded, err := imagearchive.Load(&tarball, bs2, ls2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if loaded[0].ID != rec.ID || loaded[0].Size != rec.Size || len(loaded[0].RepoTags) != 1 {
				t.Errorf("loaded %+v, pulled %+v", loaded[0], rec)
			}
		})
	}
}
