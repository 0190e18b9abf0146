// Package tarentry holds the rules Arca applies to tar entries wherever it
// unpacks one (image layers, docker cp), so that they agree.
package tarentry

import (
	"archive/tar"
	"strings"
)

// Sparse tells whether h is a sparse file (GNU's old type, or PAX's
// GNU.sparse records). Its header may claim any size, which the reader
// fills with zeros: a few kilobytes of archive could write terabytes.
// Docker's and BuildKit's tar writers never make one, so refusing them
// costs real images nothing.
func Sparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
