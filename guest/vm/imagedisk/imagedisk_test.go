package imagedisk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// Concurrent first boots of one image build its disk once; a failed build
// leaves nothing behind and the next boot tries again.
func TestCache(t *testing.T) {
	var builds atomic.Int32
	fail := atomic.Bool{}
	c := &Cache{Dir: filepath.Join(t.TempDir(), "disks"), Build: func(ctx context.Context, layers []string, out string) error {
		builds.Add(1)
		if err := os.WriteFile(out, []byte("disk of "+layers[0]), 0o644); err != nil {
			return err
		}
		if fail.Load() {
			return errors.New("writer broke")
		}
		return nil
	}}
	layers := []string{"/r/layers/base/diff"}
	fail.Store(true)
	if _, err := c.Get(context.Background(), layers); err == nil {
		t.Fatal("a failed build gave a disk")
	}
	if ents, _ := os.ReadDir(c.Dir); len(ents) != 0 {
		t.Fatalf("a failed build left %v", ents)
	}
	fail.Store(false)
	var wg sync.WaitGroup
	paths := make([]string, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := c.Get(context.Background(), layers)
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		}()
	}
	wg.Wait()
	if builds.Load() != 2 {
		t.Errorf("%d builds, want the failed one and one more", builds.Load())
	}
	for _, p := range paths {
		if p != paths[0] {
			t.Errorf("paths differ: %v", paths)
		}
	}
	if b, _ := os.ReadFile(paths[0]); string(b) != "disk of "+layers[0] {
		t.Errorf("disk holds %q", b)
	}
}
