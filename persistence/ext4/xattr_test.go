package ext4

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestXattrBlock(t *testing.T) {
	for _, tc := range []struct {
		name    string
		attrs   map[string][]byte
		wantErr string
	}{
		{"none", nil, ""},
		{"namespaces", map[string][]byte{"user.a": []byte("1"), "security.capability": {1, 2, 3}, "trusted.b": nil, "system.data": []byte("x")}, ""},
		{"acl", map[string][]byte{"system.posix_acl_default": {2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff}}, ""},
		{"bad acl", map[string][]byte{"system.posix_acl_access": {1, 0, 0, 0}}, "POSIX ACL"},
		{"unknown namespace", map[string][]byte{"os2.x": nil}, "no namespace"},
		{"too big", map[string][]byte{"user.a": bytes.Repeat([]byte("v"), 3000), "user.b": bytes.Repeat([]byte("v"), 1100)}, "do not fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := xattrBlock(tc.attrs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.attrs) == 0 {
				if b != nil {
					t.Fatal("a block for no attributes")
				}
				return
			}
			le := binary.LittleEndian
			if le.Uint32(b) != xattrMagic || len(b) != BlockSize {
				t.Fatalf("header %x", b[:16])
			}
			// Read the entries back: sorted, named, valued, hashed.
			got := map[string][]byte{}
			var prev xattrEntry
			for off := xattrHeaderSize; le.Uint32(b[off:]) != 0; {
				nl, idx := int(b[off]), b[off+1]
				voff, vsize := int(le.Uint16(b[off+2:])), int(le.Uint32(b[off+8:]))
				name := string(b[off+xattrEntrySize : off+xattrEntrySize+nl])
				if idx < prev.index || idx == prev.index && (nl < len(prev.name) || nl == len(prev.name) && name < prev.name) {
					t.Errorf("entry %d/%q sorted after %d/%q", idx, name, prev.index, prev.name)
				}
				prev = xattrEntry{index: idx, name: name}
				value := b[voff : voff+vsize]
				if h := le.Uint32(b[off+12:]); h != xattrHash(name, b[voff:voff+(vsize+3)&^3]) {
					t.Errorf("%q: hash %x", name, h)
				}
				for _, p := range xattrPrefixes {
					if p.index == idx {
						got[p.prefix+name] = value
					}
				}
				off += (xattrEntrySize + nl + 3) &^ 3
			}
			if len(got) != len(tc.attrs) {
				t.Fatalf("read back %d attributes, want %d", len(got), len(tc.attrs))
			}
			for k, v := range tc.attrs {
				if strings.HasPrefix(k, "system.posix_acl") {
					v, _ = diskACL(v)
				}
				if !bytes.Equal(got[k], v) {
					t.Errorf("%s = %x, want %x", k, got[k], v)
				}
			}
		})
	}
}

func TestDiskACL(t *testing.T) {
	// user::rw- user:1000:r-- other::--- in the xattr format...
	in := []byte{2, 0, 0, 0,
		1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
		2, 0, 4, 0, 0xe8, 3, 0, 0,
		0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}
	// ...and on disk: version 1, the named user keeps its id, the others
	// are 4 bytes.
	want := []byte{1, 0, 0, 0, 1, 0, 6, 0, 2, 0, 4, 0, 0xe8, 3, 0, 0, 0x20, 0, 0, 0}
	got, err := diskACL(in)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("diskACL = %x, %v; want %x", got, err, want)
	}
}
