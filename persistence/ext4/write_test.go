package ext4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestEncodeTime(t *testing.T) {
	for _, tc := range []struct {
		t         time.Time
		lo, extra uint32
	}{
		{time.Unix(0, 0), 0, 0},
		{time.Unix(1700000000, 5), 1700000000, 5 << 2},
		{time.Unix(-1, 0), 0xFFFFFFFF, 0},                        // 1969: negative seconds, epoch 0
		{time.Unix(1<<31, 999999999), 1 << 31, 1 | 999999999<<2}, // 2038 rolls into epoch 1
		{time.Unix(1<<32+7, 0), 7, 1},
	} {
		lo, extra := encodeTime(tc.t)
		if lo != tc.lo || extra != tc.extra {
			t.Errorf("encodeTime(%v) = %#x, %#x; want %#x, %#x", tc.t.UTC(), lo, extra, tc.lo, tc.extra)
		}
		// And back, as the kernel decodes it.
		sec := int64(int32(lo)) + int64(extra&3)<<32
		if sec != tc.t.Unix() || int(extra>>2) != tc.t.Nanosecond() {
			t.Errorf("%v decodes to %d.%09d", tc.t.UTC(), sec, extra>>2)
		}
	}
}

func TestPackDir(t *testing.T) {
	for _, n := range []int{0, 1, 100, 1000, 5000} {
		entries := []dirent{{".", 2, TypeDir}, {"..", 2, TypeDir}}
		for i := range n {
			entries = append(entries, dirent{fmt.Sprintf("file-%d-%s", i, strings.Repeat("z", i%200)), uint32(12 + i), TypeRegular})
		}
		b := packDir(entries)
		if len(b) == 0 || len(b)%BlockSize != 0 {
			t.Fatalf("%d entries: %d bytes, want whole blocks", n, len(b))
		}
		var got []string
		for off := 0; off < len(b); off += BlockSize {
			blk := b[off : off+BlockSize]
			for p := 0; p < BlockSize; {
				rec := int(binary.LittleEndian.Uint16(blk[p+4:]))
				nl := int(blk[p+6])
				if rec < 8+nl || rec%4 != 0 || p+rec > BlockSize {
					t.Fatalf("%d entries: bad rec_len %d at %d of block %d", n, rec, p, off/BlockSize)
				}
				got = append(got, string(blk[p+8:p+8+nl]))
				p += rec
			}
		}
		if len(got) != len(entries) {
			t.Fatalf("%d entries packed, %d read back", len(entries), len(got))
		}
		for i := range got {
			if got[i] != entries[i].name {
				t.Fatalf("entry %d: %q, want %q", i, got[i], entries[i].name)
			}
		}
	}
}

// memImage is an io.WriterAt of a fixed size that starts as zeros, kept
// as the blocks written (an image is mostly holes).
type memImage struct {
	size   int64
	blocks map[int64][]byte
}

func newMemImage(size int64) *memImage { return &memImage{size: size, blocks: map[int64][]byte{}} }

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > m.size {
		return 0, fmt.Errorf("write of %d at %d past the image's %d bytes", len(p), off, m.size)
	}
	n := len(p)
	for len(p) > 0 {
		b := m.blocks[off/BlockSize]
		if b == nil {
			b = make([]byte, BlockSize)
			m.blocks[off/BlockSize] = b
		}
		c := copy(b[off%BlockSize:], p)
		p, off = p[c:], off+int64(c)
	}
	return n, nil
}

// at is n bytes from off (within one block).
func (m *memImage) at(off int64, n int) []byte {
	b := m.blocks[off/BlockSize]
	if b == nil {
		return make([]byte, n)
	}
	return b[off%BlockSize:][:n]
}

// reader reads back what the writer wrote, as the kernel would, so the
// round trip is tested on any OS (the Linux tests also run e2fsck and
// mount the image).
type reader struct {
	m            *memImage
	ipg          uint32
	inodeTables  []uint32
	freeB, freeI uint32
}

func newReader(t *testing.T, m *memImage) *reader {
	t.Helper()
	le := binary.LittleEndian
	sb := m.at(superOffset, 1024)
	if le.Uint16(sb[0x38:]) != superMagic {
		t.Fatal("no superblock magic")
	}
	r := &reader{m: m, ipg: le.Uint32(sb[0x28:]), freeB: le.Uint32(sb[0x0C:]), freeI: le.Uint32(sb[0x10:])}
	blocks := le.Uint32(sb[0x04:])
	if int64(blocks)*BlockSize != m.size {
		t.Fatalf("superblock says %d blocks, image has %d bytes", blocks, m.size)
	}
	groups := ceilDiv(uint64(blocks), blocksPerGroup)
	var freeB, freeI uint32
	for gr := range groups {
		d := m.at(BlockSize+int64(gr)*descSize, descSize)
		r.inodeTables = append(r.inodeTables, le.Uint32(d[8:]))
		bm := m.at(int64(le.Uint32(d[0:]))*BlockSize, BlockSize)
		used := 0
		for _, c := range bm {
			used += bits.OnesCount8(c)
		}
		if fb := uint32(le.Uint16(d[0x0C:])); fb != uint32(blocksPerGroup-used) {
			t.Errorf("group %d: descriptor says %d free blocks, bitmap %d", gr, fb, blocksPerGroup-used)
		}
		freeB += uint32(le.Uint16(d[0x0C:]))
		freeI += uint32(le.Uint16(d[0x0E:]))
	}
	if freeB != r.freeB || freeI != r.freeI {
		t.Errorf("superblock free %d blocks %d inodes, groups %d and %d", r.freeB, r.freeI, freeB, freeI)
	}
	return r
}

func (r *reader) inode(ino uint32) []byte {
	gr, i := (ino-1)/r.ipg, (ino-1)%r.ipg
	return r.m.at(int64(r.inodeTables[gr])*BlockSize+int64(i)*inodeSize, inodeSize)
}

func (r *reader) block(n uint32) []byte { return r.m.at(int64(n)*BlockSize, BlockSize) }

// content follows an inode's block map.
func (r *reader) content(in []byte) []byte {
	le := binary.LittleEndian
	size := uint64(le.Uint32(in[4:])) | uint64(le.Uint32(in[0x6C:]))<<32
	var out []byte
	var follow func(b uint32, level int)
	follow = func(b uint32, level int) {
		if uint64(len(out)) >= size {
			return
		}
		if level == 0 {
			out = append(out, r.block(b)...)
			return
		}
		blk := r.block(b)
		for i := 0; i < addrsPerBlock && uint64(len(out)) < size; i++ {
			follow(le.Uint32(blk[4*i:]), level-1)
		}
	}
	for i := 0; i < 15; i++ {
		level := max(0, i-11)
		follow(le.Uint32(in[0x28+4*i:]), level)
	}
	return out[:size]
}

// list reads a directory: name -> inode.
func (r *reader) list(t *testing.T, in []byte) map[string]uint32 {
	t.Helper()
	b := r.content(in)
	out := map[string]uint32{}
	le := binary.LittleEndian
	for p := 0; p < len(b); {
		rec := int(le.Uint16(b[p+4:]))
		if rec == 0 {
			t.Fatal("zero rec_len")
		}
		if ino := le.Uint32(b[p:]); ino != 0 {
			out[string(b[p+8:p+8+int(b[p+6])])] = ino
		}
		p += rec
	}
	return out
}

// compare checks the image's directory at ino against the tree's node,
// recursively; links counts the names each inode has.
func (r *reader) compare(t *testing.T, path string, ino uint32, n *node, byNode map[*node]uint32) {
	t.Helper()
	le := binary.LittleEndian
	in := r.inode(ino)
	mode := uint32(le.Uint16(in[0:]))
	if want := n.fileType() | n.Mode&permMask; mode != want {
		t.Errorf("%s: mode %#o, want %#o", path, mode, want)
	}
	uid := uint32(le.Uint16(in[2:])) | uint32(le.Uint16(in[0x78:]))<<16
	gid := uint32(le.Uint16(in[0x18:])) | uint32(le.Uint16(in[0x7A:]))<<16
	if uid != n.UID || gid != n.GID {
		t.Errorf("%s: owner %d:%d, want %d:%d", path, uid, gid, n.UID, n.GID)
	}
	if prev, ok := byNode[n]; ok && prev != ino {
		t.Errorf("%s: hard link to inode %d got inode %d", path, prev, ino)
	}
	byNode[n] = ino
	switch n.fileType() {
	case TypeRegular:
		rc, _ := n.Open()
		var want bytes.Buffer
		want.ReadFrom(rc)
		if got := r.content(in); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: %d bytes of content differ from the %d written", path, len(got), want.Len())
		}
	case TypeSymlink:
		var got string
		if le.Uint32(in[0x1C:]) == 0 {
			got = string(in[0x28 : 0x28+le.Uint32(in[4:])])
		} else {
			got = string(r.content(in))
		}
		if got != n.Target {
			t.Errorf("%s: target %q, want %q", path, got, n.Target)
		}
	case TypeDir:
		entries := r.list(t, in)
		for name, c := range n.children {
			cino, ok := entries[name]
			if !ok {
				t.Errorf("%s/%s missing", path, name)
				continue
			}
			r.compare(t, path+"/"+name, cino, c, byNode)
		}
		want := len(n.children) + 2
		if path == "" {
			want++ // lost+found
		}
		if len(entries) != want {
			t.Errorf("%s: %d entries, want %d", path, len(entries), want)
		}
	}
}

// fill fills b with random bytes.
func fill(rng *rand.Rand, b []byte) {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rng.Uint64())
	rand.NewChaCha8(seed).Read(b)
}

// randomTree makes a tree of every kind of file, some big enough for
// indirect and double-indirect blocks, with hard links.
func randomTree(rng *rand.Rand, files int) *Tree {
	tr := NewTree()
	dirs := []string{""}
	var regular []string
	for i := range files {
		parent := dirs[rng.IntN(len(dirs))]
		p := fmt.Sprintf("%s/e%d", parent, i)
		e := Entry{UID: rng.Uint32N(70000), GID: rng.Uint32N(70000), Mode: rng.Uint32N(0o10000),
			MTime: time.Unix(rng.Int64N(1<<33)-1<<31, rng.Int64N(1e9))}
		switch k := rng.IntN(10); {
		case k < 2:
			e.Mode |= TypeDir
			dirs = append(dirs, p)
		case k < 6:
			e.Mode |= TypeRegular
			size := rng.IntN(3 * BlockSize)
			switch rng.IntN(200) {
			case 0: // into the double indirect blocks
				size = (1037 + rng.IntN(60)) * BlockSize
			case 1, 2, 3: // into the single indirect block
				size = (13 + rng.IntN(100)) * BlockSize
			}
			data := make([]byte, size)
			fill(rng, data)
			for j := 0; j < len(data); j += 3 * BlockSize { // some zero blocks, which are not written
				clear(data[j:min(len(data), j+BlockSize)])
			}
			e.Size, e.Open = int64(size), Bytes(data)
			regular = append(regular, p)
		case k < 7:
			e.Mode |= TypeSymlink
			e.Target = strings.Repeat("t", 1+rng.IntN(120)) // fast and slow
		case k < 8:
			e.Mode |= []uint32{TypeChar, TypeBlock}[rng.IntN(2)]
			e.Major, e.Minor = rng.Uint32N(4096), rng.Uint32N(1<<20)
		case k < 9:
			e.Mode |= []uint32{TypeFIFO, TypeSocket}[rng.IntN(2)]
		default:
			if len(regular) > 0 {
				if err := tr.Link(p, regular[rng.IntN(len(regular))]); err != nil {
					panic(err)
				}
				continue
			}
			e.Mode |= TypeFIFO
		}
		if err := tr.Add(p, e); err != nil {
			panic(err)
		}
	}
	return tr
}

// TestRoundTrip writes random trees to memory and reads them back: every
// entry's mode, owner, content, target and hard links, and the free
// counts of bitmaps, descriptors and superblock agree.
func TestRoundTrip(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			files := []int{0, 1, 30, 300, 3000, 200, 50, 1000}[seed]
			tr := randomTree(rng, files)
			opts := Options{Time: time.Unix(1700000000, 0)}
			if seed == 5 {
				opts.MinSize = 5 * blocksPerGroup * BlockSize // several groups, backups
			}
			im, err := Plan(tr, opts)
			if err != nil {
				t.Fatal(err)
			}
			mem := newMemImage(im.Size())
			if err := im.Write(mem); err != nil {
				t.Fatal(err)
			}
			r := newReader(t, mem)
			r.compare(t, "", rootIno, tr.root, map[*node]uint32{})
			lf := r.list(t, r.inode(rootIno))["lost+found"]
			if lf != lostFoundIno {
				t.Errorf("lost+found is inode %d", lf)
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	tr := NewTree()
	tr.Add("lost+found", Entry{Mode: TypeRegular})
	if _, err := Plan(tr, Options{}); err == nil || !strings.Contains(err.Error(), "lost+found") {
		t.Errorf("a file as lost+found: %v", err)
	}
	if _, err := Plan(NewTree(), Options{Label: strings.Repeat("l", 17)}); err == nil {
		t.Error("a 17-byte label was taken")
	}
	short := NewTree()
	short.Add("f", Entry{Mode: TypeRegular, Size: 10, Open: Bytes([]byte("short"))})
	im, err := Plan(short, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Write(newMemImage(im.Size())); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Errorf("content shorter than its size: %v", err)
	}
	long := NewTree()
	long.Add("f", Entry{Mode: TypeRegular, Size: 2, Open: Bytes([]byte("longer"))})
	im, _ = Plan(long, Options{})
	if err := im.Write(newMemImage(im.Size())); err == nil || !strings.Contains(err.Error(), "longer") {
		t.Errorf("content longer than its size: %v", err)
	}
}
