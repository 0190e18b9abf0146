package tarentry

import (
	"archive/tar"
	"testing"
)

func TestSparse(t *testing.T) {
	cases := []struct {
		name string
		h    tar.Header
		want bool
	}{
		{"regular", tar.Header{Typeflag: tar.TypeReg, Size: 10}, false},
		{"pax times", tar.Header{Typeflag: tar.TypeReg, PAXRecords: map[string]string{"mtime": "1.5"}}, false},
		{"gnu sparse", tar.Header{Typeflag: tar.TypeGNUSparse}, true},
		{"pax sparse 1.0", tar.Header{Typeflag: tar.TypeReg, PAXRecords: map[string]string{"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.realsize": "1073741824"}}, true},
		{"pax sparse 0.1", tar.Header{Typeflag: tar.TypeReg, PAXRecords: map[string]string{"GNU.sparse.map": "0,0"}}, true},
	}
	for _, c := range cases {
		if got := Sparse(&c.h); got != c.want {
			t.Errorf("%s: Sparse %v, want %v", c.name, got, c.want)
		}
	}
}
