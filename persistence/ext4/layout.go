package ext4

import (
	"fmt"
)

// Fixed geometry: 4 KiB blocks, 256-byte inodes, a block group per bitmap
// block's worth of blocks.
const (
	BlockSize      = 4096
	inodeSize      = 256
	blocksPerGroup = BlockSize * 8
	inodesPerBlock = BlockSize / inodeSize
	descSize       = 32
	maxNameLen     = 255
	// Inodes 1 to 10 are reserved; 2 is the root and 11 lost+found.
	rootIno       = 2
	lostFoundIno  = 11
	firstFreeIno  = 12
	lostFoundSize = 4 // blocks, as mke2fs gives it
	addrsPerBlock = BlockSize / 4
	directBlocks  = 12
	// maxBlocks keeps block numbers within 32 bits (no 64bit feature).
	maxBlocks = 1<<32 - 1
)

// geometry is a filesystem's shape: how many blocks and groups, and how
// big each group's inode table is.
type geometry struct {
	blocks         uint64
	groups         uint32
	inodesPerGroup uint32
	gdtBlocks      uint32 // group descriptor table, in every group with a superblock
}

// inodes is the filesystem's inode count.
func (g geometry) inodes() uint64 { return uint64(g.groups) * uint64(g.inodesPerGroup) }

func (g geometry) itableBlocks() uint32 { return g.inodesPerGroup / inodesPerBlock }

// hasSuper says whether group gr holds a superblock copy (sparse_super:
// groups 0, 1 and the powers of 3, 5 and 7).
func hasSuper(gr uint32) bool {
	if gr <= 1 {
		return true
	}
	for _, base := range []uint32{3, 5, 7} {
		n := base
		for n < gr {
			n *= base
		}
		if n == gr {
			return true
		}
	}
	return false
}

func (g geometry) groupStart(gr uint32) uint64 { return uint64(gr) * blocksPerGroup }

// groupBlocks is how many blocks group gr has (the last may be short).
func (g geometry) groupBlocks(gr uint32) uint64 {
	return min(blocksPerGroup, g.blocks-g.groupStart(gr))
}

// overhead is how many blocks at the start of group gr are metadata:
// superblock and descriptors if it has them, the two bitmaps, the inode
// table.
func (g geometry) overhead(gr uint32) uint64 {
	n := uint64(2 + g.itableBlocks())
	if hasSuper(gr) {
		n += 1 + uint64(g.gdtBlocks)
	}
	return n
}

// Block numbers of group gr's metadata.
func (g geometry) blockBitmap(gr uint32) uint64 {
	return g.groupStart(gr) + g.overhead(gr) - 2 - uint64(g.itableBlocks())
}
func (g geometry) inodeBitmap(gr uint32) uint64 { return g.blockBitmap(gr) + 1 }
func (g geometry) inodeTable(gr uint32) uint64  { return g.blockBitmap(gr) + 2 }

func (g geometry) totalOverhead() uint64 {
	var n uint64
	for gr := uint32(0); gr < g.groups; gr++ {
		n += g.overhead(gr)
	}
	return n
}

// plan finds the smallest geometry with room for dataBlocks blocks of
// data and at least inodes inodes, and at least minBlocks blocks in all;
// inodeRatio, when set, gives one inode per that many bytes on top.
func plan(dataBlocks, inodes, minBlocks uint64, inodeRatio int64) (geometry, error) {
	blocks := max(minBlocks, dataBlocks+1, 64)
	for range 64 {
		var g geometry
		g.blocks = blocks
		g.groups = uint32((blocks + blocksPerGroup - 1) / blocksPerGroup)
		want := inodes
		if inodeRatio > 0 {
			want = max(want, blocks*BlockSize/uint64(inodeRatio))
		}
		ipg := (want + uint64(g.groups) - 1) / uint64(g.groups)
		ipg = max(inodesPerBlock, (ipg+inodesPerBlock-1)/inodesPerBlock*inodesPerBlock)
		if ipg > blocksPerGroup {
			// Too few groups for the inodes: more blocks make more groups.
			blocks = (want + blocksPerGroup - 1) / blocksPerGroup * blocksPerGroup
			continue
		}
		g.inodesPerGroup = uint32(ipg)
		g.gdtBlocks = uint32((uint64(g.groups)*descSize + BlockSize - 1) / BlockSize)
		need := dataBlocks + g.totalOverhead()
		last := g.groups - 1
		// The last group must hold its own metadata and a block besides.
		need = max(need, g.groupStart(last)+g.overhead(last)+1)
		if need > blocks {
			blocks = need
			continue
		}
		if blocks > maxBlocks {
			return geometry{}, fmt.Errorf("ext4: %d blocks is more than 32-bit block numbers reach", blocks)
		}
		return g, nil
	}
	return geometry{}, fmt.Errorf("ext4: no geometry for %d data blocks and %d inodes", dataBlocks, inodes)
}

// indirectBlocks is how many block-map blocks a file of n data blocks
// needs beside them: single, double and triple indirect.
func indirectBlocks(n uint64) uint64 {
	if n <= directBlocks {
		return 0
	}
	n -= directBlocks
	if n <= addrsPerBlock {
		return 1
	}
	n -= addrsPerBlock
	const perDouble = addrsPerBlock * addrsPerBlock
	if n <= perDouble {
		return 2 + ceilDiv(n, addrsPerBlock)
	}
	n -= perDouble
	return 2 + addrsPerBlock + 1 + ceilDiv(n, perDouble) + ceilDiv(n, addrsPerBlock)
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// allocator hands out data blocks in order, skipping each group's
// metadata, and records them in per-group bitmaps.
type allocator struct {
	g       geometry
	bitmaps [][]byte
	next    uint64
	gr      uint32
	used    []uint64 // per group, metadata included
}

func newAllocator(g geometry) *allocator {
	a := &allocator{g: g, bitmaps: make([][]byte, g.groups), used: make([]uint64, g.groups)}
	for gr := range g.groups {
		bm := make([]byte, BlockSize)
		n := g.groupBlocks(gr)
		for b := uint64(0); b < g.overhead(gr); b++ {
			bm[b/8] |= 1 << (b % 8)
		}
		// Bits past the end of a short last group are set, as e2fsck wants.
		for b := n; b < blocksPerGroup; b++ {
			bm[b/8] |= 1 << (b % 8)
		}
		a.bitmaps[gr] = bm
		a.used[gr] = g.overhead(gr)
	}
	a.next = g.overhead(0)
	return a
}

// alloc returns the next free block.
func (a *allocator) alloc() (uint32, error) {
	for a.gr < a.g.groups && a.next >= a.g.groupStart(a.gr)+a.g.groupBlocks(a.gr) {
		a.gr++
		if a.gr < a.g.groups {
			a.next = a.g.groupStart(a.gr) + a.g.overhead(a.gr)
		}
	}
	if a.gr >= a.g.groups {
		return 0, fmt.Errorf("ext4: out of blocks (%d planned)", a.g.blocks)
	}
	b := a.next
	a.next++
	off := b - a.g.groupStart(a.gr)
	a.bitmaps[a.gr][off/8] |= 1 << (off % 8)
	a.used[a.gr]++
	return uint32(b), nil
}

// free is how many blocks group gr has left.
func (a *allocator) free(gr uint32) uint64 { return a.g.groupBlocks(gr) - a.used[gr] }
