package actors

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

func TestBlockSize(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		want int64 // 0: a 400
	}{
		{nil, defaultBlockSize},
		{map[string]string{"size": "1G"}, 1 << 30},
		{map[string]string{"size": "512m"}, 512 << 20},
		{map[string]string{"size": "2GiB"}, 2 << 30},
		{map[string]string{"size": "67108864"}, 64 << 20},
		{map[string]string{"size": " 100M "}, 100 << 20},
		{map[string]string{"size": "1M"}, 0},  // under the minimum
		{map[string]string{"size": "32T"}, 0}, // over ext4's limit
		{map[string]string{"size": "big"}, 0},
		{map[string]string{"size": ""}, 0},
		{map[string]string{"size": "-1G"}, 0},
		{map[string]string{"type": "ext4"}, 0},
		{map[string]string{"size": "1G", "o": "noatime"}, 0},
	} {
		got, err := blockSize(tc.opts)
		if tc.want == 0 {
			var me *messages.Error
			if !errors.As(err, &me) || me.Kind != messages.KindInvalidParameter {
				t.Errorf("%v: got %d, %v; want an invalid parameter error", tc.opts, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: got %d, %v; want %d", tc.opts, got, err, tc.want)
		}
	}
}

func TestBlockClaims(t *testing.T) {
	b := newBlockClaims()
	var got []any
	reply := func(r any) { got = append(got, r) }
	last := func() any {
		if len(got) == 0 {
			return nil
		}
		r := got[len(got)-1]
		got = got[:len(got)-1]
		return r
	}
	accepted := func(r any) bool { _, ok := r.(*messages.Accepted); return ok }

	b.claim(&claimBlockVolumes{container: "a", names: []string{"v", "w"}}, reply)
	if r := last(); !accepted(r) || b.holder("v") != "a" || b.holder("w") != "a" {
		t.Fatalf("first claim: %v", r)
	}
	b.claim(&claimBlockVolumes{container: "a", names: []string{"v"}}, reply)
	if r := last(); !accepted(r) {
		t.Errorf("the holder's own claim again: %v", r)
	}
	// A running holder: a conflict at once.
	b.claim(&claimBlockVolumes{container: "b", names: []string{"x", "w"}}, reply)
	if r := last(); messages.KindOf(r.(error)) != messages.KindConflict || b.holder("x") != "" {
		t.Errorf("claim of a held volume: %v, x held by %q", r, b.holder("x"))
	}
	// A draining holder: the claim and a removal wait for the release.
	b.drain("a")
	b.claim(&claimBlockVolumes{container: "b", names: []string{"w"}}, reply)
	removed := false
	b.whenFree("v", func() { removed = true })
	if len(got) != 0 || removed {
		t.Fatalf("answered before the release: %v, removed %v", got, removed)
	}
	b.release("a")
	if r := last(); !accepted(r) || b.holder("w") != "b" || b.holder("v") != "" || !removed {
		t.Errorf("after the release: %v, w held by %q, v by %q, removed %v", r, b.holder("w"), b.holder("v"), removed)
	}
	b.whenFree("unheld", func() { removed = false })
	if removed {
		t.Errorf("whenFree of a free volume did not run at once")
	}
}

func TestMachineDisks(t *testing.T) {
	e := &Env{Root: "/r"}
	disks, names := e.machineDisks([]persistence.Mount{
		{Type: "volume", Name: "loc", Destination: "/l", RW: true},
		{Type: "volume", Name: "b1", Driver: blockDriver, Destination: "/a"},
		{Type: "bind", Source: "/h", Destination: "/h"},
		{Type: "volume", Name: "b1", Driver: blockDriver, Destination: "/b", RW: true},
		{Type: "volume", Name: "b2", Driver: blockDriver, Destination: "/c"},
	})
	want := []vm.Disk{{Image: "/r/volumes/b1/disk.ext4"}, {Image: "/r/volumes/b2/disk.ext4", ReadOnly: true}}
	if !slices.Equal(disks, want) || !slices.Equal(names, []string{"b1", "b2"}) {
		t.Errorf("disks %+v names %v, want %+v [b1 b2]", disks, names, want)
	}
	// The binds the agent gets: a block volume's source is its image until
	// the machine says where the filesystem is, and it is no 9p share.
	wm := e.wireMounts([]persistence.Mount{{Type: "volume", Name: "b1", Driver: blockDriver, Destination: "/a", RW: true}})
	if len(wm) != 1 || wm[0].Source != want[0].Image || wm[0].CopyUp || len(sharesFor(wm, disks)) != 0 {
		t.Errorf("wire mounts %+v, shares %+v", wm, sharesFor(wm, disks))
	}
}

// TestMakeBlockImage: a block volume's image is made with mkfs.ext4 where
// there is one, else (a Mac) with the project's ext4 writer; either way a
// file of the size asked for holding a clean ext4 filesystem, and nothing
// is left when making it fails.
func TestMakeBlockImage(t *testing.T) {
	e2fsck, err := exec.LookPath("e2fsck")
	if err != nil {
		t.Skip("no e2fsck to check the images with")
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		mkfs string
		size int64
	}{
		{"mkfs.ext4", mkfsExt4, 64 << 20},
		{"ext4 writer", "", 64 << 20},
		{"ext4 writer, a partial last block", "", 64<<20 + 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "mkfs.ext4" && tc.mkfs == "" {
				t.Skip("no mkfs.ext4")
			}
			path := filepath.Join(t.TempDir(), "vol", blockImageName)
			if err := makeBlockImageWith(ctx, path, tc.size, tc.mkfs); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil || st.Size() != tc.size {
				t.Fatalf("image %v %v, want %d bytes", st, err, tc.size)
			}
			if out, err := exec.Command(e2fsck, "-fn", path).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck: %v\n%s", err, out)
			}
			if err := makeBlockImageWith(ctx, path, tc.size, tc.mkfs); err == nil {
				t.Error("an existing image was made again")
			}
		})
	}
	path := filepath.Join(t.TempDir(), blockImageName)
	if err := makeBlockImageWith(ctx, path, 64<<20, "/bin/false"); err == nil || !strings.Contains(err.Error(), "mkfs.ext4") {
		t.Errorf("a failing mkfs: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a failed make left the image: %v", err)
	}
}
