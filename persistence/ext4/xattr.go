package ext4

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// Extended attributes go in one block per inode (i_file_acl), in ext2's
// format: a header, entries sorted as the kernel searches them, values
// packed from the end of the block.
const (
	compatExtAttr   = 0x0008
	xattrMagic      = 0xEA020000
	xattrHeaderSize = 32
	xattrEntrySize  = 16
)

// xattrPrefixes are the name indexes ext4 stores instead of a prefix.
var xattrPrefixes = []struct {
	index  byte
	prefix string
}{
	{2, "system.posix_acl_access"},
	{3, "system.posix_acl_default"},
	{1, "user."},
	{4, "trusted."},
	{6, "security."},
	{7, "system."},
}

type xattrEntry struct {
	index byte
	name  string // without the prefix
	value []byte
}

// xattrBlock encodes attrs as an xattr block; nil if there are none.
func xattrBlock(attrs map[string][]byte) ([]byte, error) {
	if len(attrs) == 0 {
		return nil, nil
	}
	var entries []xattrEntry
	for full, value := range attrs {
		e, err := splitXattr(full)
		if err != nil {
			return nil, err
		}
		e.value = value
		if e.index == 2 || e.index == 3 {
			if e.value, err = diskACL(value); err != nil {
				return nil, fmt.Errorf("ext4: xattr %s: %w", full, err)
			}
		}
		entries = append(entries, e)
	}
	// The kernel stops at the first entry past the one it looks for.
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if a.index != b.index {
			return a.index < b.index
		}
		if len(a.name) != len(b.name) {
			return len(a.name) < len(b.name)
		}
		return a.name < b.name
	})
	le := binary.LittleEndian
	b := make([]byte, BlockSize)
	le.PutUint32(b[0:], xattrMagic)
	le.PutUint32(b[4:], 1) // refcount
	le.PutUint32(b[8:], 1) // blocks
	off, end := xattrHeaderSize, BlockSize
	var blockHash uint32
	for _, e := range entries {
		size := (xattrEntrySize + len(e.name) + 3) &^ 3
		vsize := (len(e.value) + 3) &^ 3
		// Room for this entry, the 4-byte end marker, and the value.
		if off+size+4 > end-vsize {
			return nil, fmt.Errorf("ext4: extended attributes do not fit in one %d-byte block", BlockSize)
		}
		end -= vsize
		copy(b[end:], e.value)
		b[off] = byte(len(e.name))
		b[off+1] = e.index
		if len(e.value) > 0 {
			le.PutUint16(b[off+2:], uint16(end))
		}
		le.PutUint32(b[off+8:], uint32(len(e.value)))
		h := xattrHash(e.name, b[end:end+vsize])
		le.PutUint32(b[off+12:], h)
		copy(b[off+xattrEntrySize:], e.name)
		off += size
		blockHash = blockHash<<16 ^ blockHash>>16 ^ h
	}
	le.PutUint32(b[12:], blockHash)
	return b, nil
}

func splitXattr(full string) (xattrEntry, error) {
	for _, p := range xattrPrefixes {
		if rest, ok := strings.CutPrefix(full, p.prefix); ok {
			if (p.index == 2 || p.index == 3) && rest != "" {
				continue
			}
			if len(rest) > 255 {
				return xattrEntry{}, fmt.Errorf("ext4: xattr name %q too long", full)
			}
			return xattrEntry{index: p.index, name: rest}, nil
		}
	}
	return xattrEntry{}, fmt.Errorf("ext4: xattr %q has no namespace ext4 knows", full)
}

// xattrHash is ext2's entry hash: the name's bytes (as signed chars, as
// the kernel and e2fsprogs compute it on x86) then the padded value's
// little-endian words.
func xattrHash(name string, paddedValue []byte) uint32 {
	var h uint32
	for i := 0; i < len(name); i++ {
		h = h<<5 ^ h>>27 ^ uint32(int32(int8(name[i])))
	}
	for i := 0; i+4 <= len(paddedValue); i += 4 {
		h = h<<16 ^ h>>16 ^ binary.LittleEndian.Uint32(paddedValue[i:])
	}
	return h
}

// diskACL turns a POSIX ACL as the xattr interface gives it (version 2,
// 8-byte entries) into ext4's on-disk form (version 1; the owner, group,
// mask and other entries without the id).
func diskACL(v []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(v) < 4 || (len(v)-4)%8 != 0 || le.Uint32(v) != 2 {
		return nil, fmt.Errorf("not a version 2 POSIX ACL")
	}
	out := le.AppendUint32(nil, 1)
	for p := 4; p < len(v); p += 8 {
		tag, perm, id := le.Uint16(v[p:]), le.Uint16(v[p+2:]), le.Uint32(v[p+4:])
		out = le.AppendUint16(out, tag)
		out = le.AppendUint16(out, perm)
		if tag == 0x02 || tag == 0x08 { // a named user or group
			out = le.AppendUint32(out, id)
		}
	}
	return out, nil
}
