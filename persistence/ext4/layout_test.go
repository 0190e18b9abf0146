package ext4

import (
	"testing"
)

func TestIndirectBlocks(t *testing.T) {
	const a = addrsPerBlock
	for _, tc := range []struct {
		data, want uint64
	}{
		{0, 0},
		{1, 0},
		{12, 0},
		{13, 1},                     // the single indirect block
		{12 + a, 1},                 // full single
		{12 + a + 1, 1 + 1 + 1},     // single, double, one second-level
		{12 + a + a, 1 + 1 + 1},     // first second-level full
		{12 + a + a + 1, 1 + 1 + 2}, // a second one
		{12 + a + a*a, 1 + 1 + a},   // full double
		{12 + a + a*a + 1, 1 + 1 + a + 1 + 1 + 1}, // triple, its double, its single
	} {
		if got := indirectBlocks(tc.data); got != tc.want {
			t.Errorf("indirectBlocks(%d) = %d, want %d", tc.data, got, tc.want)
		}
	}
}

func TestHasSuper(t *testing.T) {
	var got []uint32
	for gr := uint32(0); gr < 130; gr++ {
		if hasSuper(gr) {
			got = append(got, gr)
		}
	}
	want := []uint32{0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125}
	if len(got) != len(want) {
		t.Fatalf("groups with a superblock: %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("groups with a superblock: %v, want %v", got, want)
		}
	}
}

// checkGeometry asserts what every plan must give: room for the data and
// the inodes, whole inode-table blocks, a last group that holds its own
// metadata, and no more groups than the blocks need.
func checkGeometry(t *testing.T, g geometry, data, inodes, minBlocks uint64) {
	t.Helper()
	if g.blocks < minBlocks {
		t.Errorf("%+v: fewer blocks than the minimum %d", g, minBlocks)
	}
	if g.blocks < data+g.totalOverhead() {
		t.Errorf("%+v: %d blocks can't hold %d data and %d metadata", g, g.blocks, data, g.totalOverhead())
	}
	if g.inodes() < inodes {
		t.Errorf("%+v: %d inodes, want %d", g, g.inodes(), inodes)
	}
	if g.inodesPerGroup%inodesPerBlock != 0 || g.inodesPerGroup == 0 || g.inodesPerGroup > blocksPerGroup {
		t.Errorf("%+v: bad inodes per group", g)
	}
	if want := uint32(ceilDiv(g.blocks, blocksPerGroup)); g.groups != want {
		t.Errorf("%+v: %d groups for %d blocks, want %d", g, g.groups, g.blocks, want)
	}
	last := g.groups - 1
	if g.groupBlocks(last) <= g.overhead(last) {
		t.Errorf("%+v: last group of %d blocks can't hold its %d metadata blocks", g, g.groupBlocks(last), g.overhead(last))
	}
	if g.gdtBlocks != uint32(ceilDiv(uint64(g.groups)*descSize, BlockSize)) {
		t.Errorf("%+v: descriptor table size", g)
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		data, inodes, minBlocks uint64
		ratio                   int64
	}{
		{"empty", 0, 11, 0, 0},
		{"small", 100, 50, 0, 0},
		{"one group exactly", blocksPerGroup - 100, 20, 0, 0},
		{"two groups", blocksPerGroup + 10, 5000, 0, 0},
		{"many inodes", 10, 200000, 0, 0},
		{"16 GiB disk", 10, 11, 16 << 30 / BlockSize, 16384},
		{"large data", 3 * blocksPerGroup * 10, 100, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := plan(tc.data, tc.inodes, tc.minBlocks, tc.ratio)
			if err != nil {
				t.Fatal(err)
			}
			checkGeometry(t, g, tc.data, tc.inodes, tc.minBlocks)
			if tc.ratio > 0 && g.inodes() < g.blocks*BlockSize/uint64(tc.ratio) {
				t.Errorf("%d inodes for %d bytes at one per %d", g.inodes(), g.blocks*BlockSize, tc.ratio)
			}
			// Everything planned can be allocated, and nothing more.
			a := newAllocator(g)
			free := g.blocks - g.totalOverhead()
			for i := uint64(0); i < free; i++ {
				if _, err := a.alloc(); err != nil {
					t.Fatalf("block %d of %d free: %v", i, free, err)
				}
			}
			if _, err := a.alloc(); err == nil {
				t.Error("allocated past the end")
			}
		})
	}
	if _, err := plan(maxBlocks, 11, 0, 0); err == nil {
		t.Error("a filesystem past 32-bit block numbers was planned")
	}
}

// FuzzPlan: for any data and inode counts, the geometry holds them, and
// the allocator hands out exactly the free blocks, never metadata, each
// once.
func FuzzPlan(f *testing.F) {
	f.Add(uint32(0), uint32(11), uint32(0))
	f.Add(uint32(blocksPerGroup), uint32(40000), uint32(0))
	f.Add(uint32(5), uint32(11), uint32(blocksPerGroup*3+7))
	f.Add(uint32(blocksPerGroup*2-300), uint32(70000), uint32(0))
	f.Fuzz(func(t *testing.T, data, inodes, minBlocks uint32) {
		data %= blocksPerGroup * 40
		inodes = inodes%300000 + 11
		minBlocks %= blocksPerGroup * 40
		g, err := plan(uint64(data), uint64(inodes), uint64(minBlocks), 0)
		if err != nil {
			t.Fatal(err)
		}
		checkGeometry(t, g, uint64(data), uint64(inodes), uint64(minBlocks))
		a := newAllocator(g)
		seen := map[uint32]bool{}
		for i := uint32(0); i < data; i++ {
			b, err := a.alloc()
			if err != nil {
				t.Fatalf("data block %d of %d: %v", i, data, err)
			}
			gr := uint32(uint64(b) / blocksPerGroup)
			if uint64(b)-g.groupStart(gr) < g.overhead(gr) {
				t.Fatalf("block %d is group %d's metadata", b, gr)
			}
			if seen[b] {
				t.Fatalf("block %d handed out twice", b)
			}
			seen[b] = true
		}
		var free uint64
		for gr := range g.groups {
			free += a.free(gr)
		}
		if free != g.blocks-g.totalOverhead()-uint64(data) {
			t.Fatalf("free %d, want %d", free, g.blocks-g.totalOverhead()-uint64(data))
		}
	})
}

// FuzzBlockMap: indirectBlocks, which sizes the image, counts exactly the
// map blocks place allocates for a file, and the map reaches every data
// block in order.
func FuzzBlockMap(f *testing.F) {
	for _, n := range []uint32{0, 12, 13, 1036, 1037, 2060, 2061, 1049612, 1049613} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n uint32) {
		n %= 1049612 + 3*addrsPerBlock
		want := uint64(n) + indirectBlocks(uint64(n))
		g, err := plan(want, 11, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		im := &Image{g: g, alloc: newAllocator(g)}
		in := &inode{ino: 12, blocks: uint64(n)}
		if err := im.place(in); err != nil {
			t.Fatalf("%d blocks: %v", n, err)
		}
		if got := uint64(len(in.data) + len(in.meta)); got != want || len(in.data) != int(n) {
			t.Fatalf("%d blocks: %d data + %d map blocks allocated, planned %d", n, len(in.data), len(in.meta), want)
		}
		// Walk the map as the kernel would.
		ptrs := map[uint32][]uint32{}
		for _, m := range in.meta {
			ptrs[m.block] = m.ptrs
		}
		var got []uint32
		var follow func(b uint32, level int)
		follow = func(b uint32, level int) {
			if level == 0 {
				got = append(got, b)
				return
			}
			for _, p := range ptrs[b] {
				follow(p, level-1)
			}
		}
		for i, b := range in.iblock {
			if b != 0 {
				follow(b, max(0, i-11))
			}
		}
		if len(got) != len(in.data) {
			t.Fatalf("%d blocks: the map reaches %d", n, len(got))
		}
		for i := range got {
			if got[i] != in.data[i] {
				t.Fatalf("%d blocks: logical block %d maps to %d, written to %d", n, i, got[i], in.data[i])
			}
		}
	})
}
