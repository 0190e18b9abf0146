package ext4

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// Options shape the filesystem beyond what the tree needs.
type Options struct {
	// MinSize is the smallest image, in bytes (a writable disk's size);
	// without it the image is as small as the tree allows.
	MinSize int64
	// ExtraInodes are free inodes beyond the tree's; InodeRatio, when
	// set, asks for at least one inode per that many bytes (mke2fs uses
	// 16384), for a disk that will be written to.
	ExtraInodes uint64
	InodeRatio  int64
	// Label is the volume name (at most 16 bytes).
	Label string
	// UUID is the filesystem's; zero picks a random one.
	UUID [16]byte
	// Time is the superblock's creation and write time, and any entry's
	// without an MTime; zero is now.
	Time time.Time
}

// Superblock feature flags the image carries: ext2 revision 1 as mke2fs
// makes it, less what a read-mostly disk doesn't need (no journal, no
// resize inode, no hashed directories).
const (
	incompatFiletype   = 0x0002
	roCompatSparseSup  = 0x0001
	roCompatLargeFile  = 0x0002
	flagsSignedHash    = 0x0001
	extraIsize         = 32
	superMagic         = 0xEF53
	superOffset        = 1024
	stateClean         = 1
	errorsContinue     = 1
	revDynamic         = 1
	maxMountCountNever = 0xFFFF
)

// inode is one inode as it will be written.
type inode struct {
	ino    uint32
	n      *node
	parent uint32 // directories: the ".." inode
	links  int
	// blocks is how many data blocks the inode's content needs; content
	// is a directory's or a slow symlink's (regular files stream from
	// their Open).
	blocks  uint64
	content []byte
	xattrs  []byte // the xattr block, if any
	xblock  uint32
	// After allocation: the block map and where each data block went.
	iblock [15]uint32
	data   []uint32
	meta   []indirect
}

// indirect is a block of the block map.
type indirect struct {
	block uint32
	ptrs  []uint32
}

// Image is a tree laid out as a filesystem, ready to write.
type Image struct {
	opts   Options
	g      geometry
	inodes []*inode // by inode number less firstFreeIno, then root and lost+found
	byNo   map[uint32]*inode
	maxIno uint32
	alloc  *allocator
	dirs   []uint32 // per group
	xattrs bool     // some inode has extended attributes
}

// Plan lays the tree out: inode numbers, directory contents, geometry
// and every block's place. The tree must not change until Write is done.
func Plan(t *Tree, opts Options) (*Image, error) {
	if len(opts.Label) > 16 {
		return nil, fmt.Errorf("ext4: label %q longer than 16 bytes", opts.Label)
	}
	if opts.Time.IsZero() {
		opts.Time = time.Now()
	}
	if opts.UUID == ([16]byte{}) {
		if _, err := rand.Read(opts.UUID[:]); err != nil {
			return nil, fmt.Errorf("ext4: uuid: %w", err)
		}
		opts.UUID[6] = opts.UUID[6]&0x0f | 0x40 // version 4
		opts.UUID[8] = opts.UUID[8]&0x3f | 0x80
	}
	im := &Image{opts: opts, byNo: map[uint32]*inode{}}
	if err := im.number(t); err != nil {
		return nil, err
	}
	var data uint64
	for _, in := range im.inodes {
		data += in.blocks + indirectBlocks(in.blocks)
		if in.xattrs != nil {
			data++
		}
	}
	minBlocks := uint64(0)
	if opts.MinSize > 0 {
		minBlocks = ceilDiv(uint64(opts.MinSize), BlockSize)
	}
	g, err := plan(data, uint64(im.maxIno)+opts.ExtraInodes, minBlocks, opts.InodeRatio)
	if err != nil {
		return nil, err
	}
	im.g = g
	im.alloc = newAllocator(g)
	im.dirs = make([]uint32, g.groups)
	for _, in := range im.inodes {
		if err := im.place(in); err != nil {
			return nil, err
		}
		if in.n.fileType() == TypeDir {
			im.dirs[(in.ino-1)/g.inodesPerGroup]++
		}
	}
	return im, nil
}

// Size is the image's size in bytes.
func (im *Image) Size() int64 { return int64(im.g.blocks) * BlockSize }

// number gives every node an inode, counts links, and builds directories.
func (im *Image) number(t *Tree) error {
	lf := t.root.children["lost+found"]
	if lf != nil && lf.fileType() != TypeDir {
		return errors.New("ext4: /lost+found must be a directory")
	}
	if lf == nil {
		// Not added to the tree: the caller's tree stays as it was.
		lf = &node{Entry: Entry{Mode: TypeDir | 0o700, MTime: im.opts.Time}, children: map[string]*node{}}
	}
	seen := map[*node]*inode{}
	add := func(n *node, ino uint32, parent uint32) *inode {
		in := &inode{ino: ino, n: n, parent: parent}
		seen[n] = in
		im.byNo[ino] = in
		im.inodes = append(im.inodes, in)
		return in
	}
	next := uint32(firstFreeIno)
	var walk func(dir *inode) error
	walk = func(dir *inode) error {
		kids := dir.n.children
		if dir.ino == rootIno {
			kids = make(map[string]*node, len(dir.n.children)+1)
			for k, v := range dir.n.children {
				kids[k] = v
			}
			kids["lost+found"] = lf
		}
		names := make([]string, 0, len(kids))
		for name := range kids {
			names = append(names, name)
		}
		sort.Strings(names)
		entries := []dirent{{".", dir.ino, TypeDir}, {"..", dir.parent, TypeDir}}
		// Its own "." (its name in the parent adds one more); the root has
		// no name but is its own "..".
		dir.links = 1
		if dir.ino == rootIno {
			dir.links = 2
		}
		for _, name := range names {
			c := kids[name]
			in := seen[c]
			if in == nil {
				ino := next
				if c == lf && dir.ino == rootIno {
					ino = lostFoundIno
				} else {
					if next == 0 {
						return errors.New("ext4: more than 2^32 inodes")
					}
					next++
				}
				in = add(c, ino, dir.ino)
				if c.fileType() == TypeDir {
					if err := walk(in); err != nil {
						return err
					}
				}
			}
			in.links++
			if c.fileType() == TypeDir {
				dir.links++
			}
			entries = append(entries, dirent{name, in.ino, c.fileType()})
		}
		dir.content = packDir(entries)
		dir.blocks = uint64(len(dir.content) / BlockSize)
		if dir.ino == lostFoundIno && dir.blocks < lostFoundSize {
			// Room to reconnect orphans without allocating, as mke2fs leaves.
			for dir.blocks < lostFoundSize {
				dir.content = append(dir.content, emptyDirBlock()...)
				dir.blocks++
			}
		}
		return nil
	}
	root := add(t.root, rootIno, rootIno)
	if err := walk(root); err != nil {
		return err
	}
	for _, in := range im.inodes {
		if in.links > 0xFFFF {
			return fmt.Errorf("ext4: inode %d has %d links, more than ext2 keeps", in.ino, in.links)
		}
		switch in.n.fileType() {
		case TypeRegular:
			in.blocks = ceilDiv(uint64(in.n.Size), BlockSize)
		case TypeSymlink:
			if len(in.n.Target) >= len(in.iblock)*4 {
				in.content = make([]byte, BlockSize)
				copy(in.content, in.n.Target)
				in.blocks = 1
			}
		}
	}
	for _, in := range im.inodes {
		xb, err := xattrBlock(in.n.Xattrs)
		if err != nil {
			return fmt.Errorf("inode %d: %w", in.ino, err)
		}
		in.xattrs = xb
		if xb != nil {
			im.xattrs = true
		}
	}
	im.maxIno = next - 1
	return nil
}

// dirent is one directory entry.
type dirent struct {
	name  string
	ino   uint32
	ftype uint32
}

// direntType is the directory entry's file type byte (filetype feature).
func direntType(ftype uint32) byte {
	switch ftype {
	case TypeRegular:
		return 1
	case TypeDir:
		return 2
	case TypeChar:
		return 3
	case TypeBlock:
		return 4
	case TypeFIFO:
		return 5
	case TypeSocket:
		return 6
	case TypeSymlink:
		return 7
	}
	return 0
}

func direntLen(name string) int { return (8 + len(name) + 3) &^ 3 }

// packDir lays entries out in blocks: none crosses a block, and the last
// of each block stretches to its end.
func packDir(entries []dirent) []byte {
	var out []byte
	block := make([]byte, 0, BlockSize)
	lastOff := -1
	flush := func() {
		if lastOff < 0 {
			return
		}
		binary.LittleEndian.PutUint16(block[lastOff+4:], uint16(BlockSize-lastOff))
		block = block[:BlockSize]
		out = append(out, block...)
		block = make([]byte, 0, BlockSize)
		lastOff = -1
	}
	for _, e := range entries {
		l := direntLen(e.name)
		if len(block)+l > BlockSize {
			flush()
		}
		lastOff = len(block)
		var h [8]byte
		binary.LittleEndian.PutUint32(h[0:], e.ino)
		binary.LittleEndian.PutUint16(h[4:], uint16(l))
		h[6] = byte(len(e.name))
		h[7] = direntType(e.ftype)
		block = append(block, h[:]...)
		block = append(block, e.name...)
		block = append(block, make([]byte, l-8-len(e.name))...)
	}
	flush()
	return out
}

func emptyDirBlock() []byte {
	b := make([]byte, BlockSize)
	binary.LittleEndian.PutUint16(b[4:], BlockSize)
	return b
}

// place allocates an inode's data blocks and its block map, in file order
// with each map block just before the blocks it maps (as ext2 does).
func (im *Image) place(in *inode) error {
	if in.xattrs != nil {
		b, err := im.alloc.alloc()
		if err != nil {
			return err
		}
		in.xblock = b
	}
	left := in.blocks
	in.data = make([]uint32, 0, left)
	for i := 0; i < directBlocks && left > 0; i++ {
		b, err := im.alloc.alloc()
		if err != nil {
			return err
		}
		in.iblock[i] = b
		in.data = append(in.data, b)
		left--
	}
	for level := 1; level <= 3 && left > 0; level++ {
		b, err := im.mapLevel(in, level, &left)
		if err != nil {
			return err
		}
		in.iblock[directBlocks+level-1] = b
	}
	if left > 0 {
		return fmt.Errorf("ext4: inode %d too big for a block map", in.ino)
	}
	return nil
}

// mapLevel allocates a map block of the given depth (1: it points at
// data) and what it maps, up to *left data blocks.
func (im *Image) mapLevel(in *inode, level int, left *uint64) (uint32, error) {
	blk, err := im.alloc.alloc()
	if err != nil {
		return 0, err
	}
	var ptrs []uint32
	for len(ptrs) < addrsPerBlock && *left > 0 {
		var b uint32
		if level == 1 {
			if b, err = im.alloc.alloc(); err != nil {
				return 0, err
			}
			in.data = append(in.data, b)
			*left--
		} else if b, err = im.mapLevel(in, level-1, left); err != nil {
			return 0, err
		}
		ptrs = append(ptrs, b)
	}
	in.meta = append(in.meta, indirect{blk, ptrs})
	return blk, nil
}

// WriteFile writes the tree as a new image file at path (replacing one
// there). The file is sparse: blocks that are all zero are not written.
func WriteFile(path string, t *Tree, opts Options) error {
	im, err := Plan(t, opts)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("ext4: %w", err)
	}
	if err := f.Truncate(im.Size()); err != nil {
		f.Close()
		return fmt.Errorf("ext4: %w", err)
	}
	if err := im.Write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("ext4: %w", err)
	}
	return f.Close()
}

// Write writes the image to w, which must be Size bytes that read as
// zero (a new file truncated to Size): only what is not zero is written.
func (im *Image) Write(w io.WriterAt) error {
	bw := &blockWriter{w: w}
	for _, in := range im.inodes {
		if in.xattrs != nil {
			if err := bw.block(in.xblock, in.xattrs); err != nil {
				return err
			}
		}
		if err := im.writeContent(bw, in); err != nil {
			return err
		}
		for _, m := range in.meta {
			buf := make([]byte, BlockSize)
			for i, p := range m.ptrs {
				binary.LittleEndian.PutUint32(buf[i*4:], p)
			}
			if err := bw.block(m.block, buf); err != nil {
				return err
			}
		}
	}
	if err := bw.flush(); err != nil {
		return err
	}
	if err := im.writeInodes(w); err != nil {
		return err
	}
	return im.writeMetadata(w)
}

// writeContent writes an inode's data blocks.
func (im *Image) writeContent(bw *blockWriter, in *inode) error {
	if in.content != nil {
		for i, b := range in.data {
			if err := bw.block(b, in.content[i*BlockSize:(i+1)*BlockSize]); err != nil {
				return err
			}
		}
		return nil
	}
	if in.n.fileType() != TypeRegular || in.n.Size == 0 {
		return nil
	}
	r, err := in.n.Open()
	if err != nil {
		return fmt.Errorf("ext4: inode %d: %w", in.ino, err)
	}
	defer r.Close()
	buf := make([]byte, BlockSize)
	remaining := in.n.Size
	for _, b := range in.data {
		n := int(min(remaining, BlockSize))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return fmt.Errorf("ext4: inode %d: content shorter than its %d bytes: %w", in.ino, in.n.Size, err)
		}
		clear(buf[n:])
		if err := bw.block(b, buf); err != nil {
			return err
		}
		remaining -= int64(n)
	}
	if n, _ := r.Read(buf[:1]); n > 0 {
		return fmt.Errorf("ext4: inode %d: content longer than its %d bytes", in.ino, in.n.Size)
	}
	return nil
}

// blockWriter gathers consecutive blocks into one write and skips blocks
// of zeros (the target reads as zero already).
type blockWriter struct {
	w     io.WriterAt
	start uint32
	buf   []byte
}

const maxRun = 256 // blocks per write

func (bw *blockWriter) block(b uint32, data []byte) error {
	if isZero(data) {
		return bw.flush()
	}
	if len(bw.buf) > 0 && (b != bw.start+uint32(len(bw.buf)/BlockSize) || len(bw.buf) >= maxRun*BlockSize) {
		if err := bw.flush(); err != nil {
			return err
		}
	}
	if len(bw.buf) == 0 {
		bw.start = b
	}
	bw.buf = append(bw.buf, data...)
	return nil
}

func (bw *blockWriter) flush() error {
	if len(bw.buf) == 0 {
		return nil
	}
	_, err := bw.w.WriteAt(bw.buf, int64(bw.start)*BlockSize)
	bw.buf = bw.buf[:0]
	if err != nil {
		return fmt.Errorf("ext4: write: %w", err)
	}
	return nil
}

var zeroBlock = make([]byte, BlockSize)

func isZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// writeInodes writes the inode tables' used part, one group at a time.
func (im *Image) writeInodes(w io.WriterAt) error {
	ipg := im.g.inodesPerGroup
	for gr := uint32(0); gr*ipg < im.maxIno; gr++ {
		first := gr*ipg + 1
		last := min(im.maxIno, first+ipg-1)
		table := make([]byte, int(last-first+1)*inodeSize)
		for ino := first; ino <= last; ino++ {
			if in := im.byNo[ino]; in != nil {
				im.encodeInode(table[int(ino-first)*inodeSize:], in)
			}
		}
		if _, err := w.WriteAt(table, int64(im.g.inodeTable(gr))*BlockSize); err != nil {
			return fmt.Errorf("ext4: write inodes: %w", err)
		}
	}
	return nil
}

// encodeTime splits t into ext4's seconds field and the extra field's
// epoch bits and nanoseconds.
func encodeTime(t time.Time) (uint32, uint32) {
	sec := t.Unix()
	lo := int32(sec)
	epoch := uint32((sec-int64(lo))>>32) & 3
	return uint32(lo), epoch | uint32(t.Nanosecond())<<2
}

func (im *Image) encodeInode(b []byte, in *inode) {
	e := in.n.Entry
	le := binary.LittleEndian
	le.PutUint16(b[0x00:], uint16(e.fileType()|e.Mode&permMask))
	le.PutUint16(b[0x02:], uint16(e.UID))
	le.PutUint16(b[0x78:], uint16(e.UID>>16))
	le.PutUint16(b[0x18:], uint16(e.GID))
	le.PutUint16(b[0x7A:], uint16(e.GID>>16))
	var size uint64
	switch e.fileType() {
	case TypeRegular:
		size = uint64(e.Size)
	case TypeDir:
		size = uint64(len(in.content))
	case TypeSymlink:
		size = uint64(len(e.Target))
	}
	le.PutUint32(b[0x04:], uint32(size))
	le.PutUint32(b[0x6C:], uint32(size>>32))
	mtime := e.MTime
	if mtime.IsZero() {
		mtime = im.opts.Time
	}
	atime := e.ATime
	if atime.IsZero() {
		atime = mtime
	}
	mLo, mExtra := encodeTime(mtime)
	aLo, aExtra := encodeTime(atime)
	le.PutUint32(b[0x08:], aLo)
	le.PutUint32(b[0x0C:], mLo) // ctime
	le.PutUint32(b[0x10:], mLo)
	le.PutUint16(b[0x1A:], uint16(in.links))
	sectors := (uint64(len(in.data)) + uint64(len(in.meta))) * (BlockSize / 512)
	if in.xattrs != nil {
		sectors += BlockSize / 512
		le.PutUint32(b[0x68:], in.xblock) // i_file_acl
	}
	le.PutUint32(b[0x1C:], uint32(sectors))
	le.PutUint16(b[0x74:], uint16(sectors>>32))
	switch {
	case e.fileType() == TypeSymlink && in.blocks == 0:
		copy(b[0x28:0x28+60], e.Target) // a fast symlink: the target in the block map
	case e.fileType() == TypeChar || e.fileType() == TypeBlock:
		if e.Major < 256 && e.Minor < 256 {
			le.PutUint32(b[0x28:], e.Major<<8|e.Minor)
		} else {
			le.PutUint32(b[0x2C:], e.Minor&0xff|e.Major<<8|(e.Minor&^0xff)<<12)
		}
	default:
		for i, p := range in.iblock {
			le.PutUint32(b[0x28+4*i:], p)
		}
	}
	le.PutUint16(b[0x80:], extraIsize)
	le.PutUint32(b[0x84:], mExtra) // ctime
	le.PutUint32(b[0x88:], mExtra)
	le.PutUint32(b[0x8C:], aExtra)
	le.PutUint32(b[0x90:], mLo) // creation time
	le.PutUint32(b[0x94:], mExtra)
}

// writeMetadata writes the bitmaps, the descriptors and the superblocks.
func (im *Image) writeMetadata(w io.WriterAt) error {
	g := im.g
	le := binary.LittleEndian
	gdt := make([]byte, int(g.gdtBlocks)*BlockSize)
	var freeBlocks, freeInodes uint64
	for gr := uint32(0); gr < g.groups; gr++ {
		ibm := make([]byte, BlockSize)
		first := uint64(gr)*uint64(g.inodesPerGroup) + 1
		used := uint64(0)
		if uint64(im.maxIno) >= first {
			used = min(uint64(g.inodesPerGroup), uint64(im.maxIno)-first+1)
		}
		for i := uint64(0); i < used; i++ {
			ibm[i/8] |= 1 << (i % 8)
		}
		for i := uint64(g.inodesPerGroup); i < blocksPerGroup; i++ {
			ibm[i/8] |= 1 << (i % 8)
		}
		if _, err := w.WriteAt(im.alloc.bitmaps[gr], int64(g.blockBitmap(gr))*BlockSize); err != nil {
			return fmt.Errorf("ext4: write bitmap: %w", err)
		}
		if _, err := w.WriteAt(ibm, int64(g.inodeBitmap(gr))*BlockSize); err != nil {
			return fmt.Errorf("ext4: write bitmap: %w", err)
		}
		fb, fi := im.alloc.free(gr), uint64(g.inodesPerGroup)-used
		freeBlocks += fb
		freeInodes += fi
		d := gdt[int(gr)*descSize:]
		le.PutUint32(d[0x00:], uint32(g.blockBitmap(gr)))
		le.PutUint32(d[0x04:], uint32(g.inodeBitmap(gr)))
		le.PutUint32(d[0x08:], uint32(g.inodeTable(gr)))
		le.PutUint16(d[0x0C:], uint16(fb))
		le.PutUint16(d[0x0E:], uint16(fi))
		le.PutUint16(d[0x10:], uint16(im.dirs[gr]))
	}
	for gr := uint32(0); gr < g.groups; gr++ {
		if !hasSuper(gr) {
			continue
		}
		sb := im.superblock(gr, freeBlocks, freeInodes)
		off := int64(g.groupStart(gr)) * BlockSize
		if gr == 0 {
			off = superOffset
		}
		if _, err := w.WriteAt(sb, off); err != nil {
			return fmt.Errorf("ext4: write superblock: %w", err)
		}
		if _, err := w.WriteAt(gdt, int64(g.groupStart(gr)+1)*BlockSize); err != nil {
			return fmt.Errorf("ext4: write descriptors: %w", err)
		}
	}
	return nil
}

func (im *Image) superblock(group uint32, freeBlocks, freeInodes uint64) []byte {
	g := im.g
	le := binary.LittleEndian
	b := make([]byte, 1024)
	now := uint32(im.opts.Time.Unix())
	le.PutUint32(b[0x00:], uint32(g.inodes()))
	le.PutUint32(b[0x04:], uint32(g.blocks))
	le.PutUint32(b[0x0C:], uint32(freeBlocks))
	le.PutUint32(b[0x10:], uint32(freeInodes))
	le.PutUint32(b[0x14:], 0)              // first data block: 0 with 4 KiB blocks
	le.PutUint32(b[0x18:], 2)              // log2(block size) - 10
	le.PutUint32(b[0x1C:], 2)              // clusters are blocks
	le.PutUint32(b[0x20:], blocksPerGroup) // blocks per group
	le.PutUint32(b[0x24:], blocksPerGroup) // clusters per group
	le.PutUint32(b[0x28:], g.inodesPerGroup)
	le.PutUint32(b[0x30:], now) // write time
	le.PutUint16(b[0x36:], maxMountCountNever)
	le.PutUint16(b[0x38:], superMagic)
	le.PutUint16(b[0x3A:], stateClean)
	le.PutUint16(b[0x3C:], errorsContinue)
	le.PutUint32(b[0x40:], now) // last check
	le.PutUint32(b[0x4C:], revDynamic)
	le.PutUint32(b[0x54:], lostFoundIno) // first non-reserved inode
	le.PutUint16(b[0x58:], inodeSize)
	le.PutUint16(b[0x5A:], uint16(group))
	if im.xattrs {
		le.PutUint32(b[0x5C:], compatExtAttr)
	}
	le.PutUint32(b[0x60:], incompatFiletype)
	le.PutUint32(b[0x64:], roCompatSparseSup|roCompatLargeFile)
	copy(b[0x68:0x78], im.opts.UUID[:])
	copy(b[0x78:0x88], im.opts.Label)
	seed := sha256.Sum256(im.opts.UUID[:])
	copy(b[0xEC:0xFC], seed[:16]) // directory hash seed
	le.PutUint32(b[0x108:], now)  // mkfs time
	le.PutUint16(b[0x15C:], extraIsize)
	le.PutUint16(b[0x15E:], extraIsize)
	le.PutUint32(b[0x160:], flagsSignedHash)
	return b
}
