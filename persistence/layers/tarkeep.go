package layers

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
)

// keepTar keeps the tar r at path, checking that it is one, and returns
// the size of its files, as an unpacked layer would count it. It is how a
// host that cannot unpack a layer stores one.
func keepTar(path string, r io.Reader) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	pr, pw := io.Pipe()
	sized := make(chan sizeResult, 1)
	go func() {
		n, err := tarSize(pr)
		pr.CloseWithError(err)
		sized <- sizeResult{n, err}
	}()
	_, err = io.Copy(f, io.TeeReader(r, pw))
	pw.CloseWithError(err)
	res := <-sized
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = res.err
	}
	if err != nil {
		return 0, fmt.Errorf("keep layer tar: %w", err)
	}
	return res.n, nil
}

type sizeResult struct {
	n   int64
	err error
}

// tarSize reads a tar to its end, adding up its regular files' sizes.
func tarSize(r io.Reader) (int64, error) {
	tr := tar.NewReader(r)
	var n int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			_, err = io.Copy(io.Discard, r) // what follows the end marker
			return n, err
		}
		if err != nil {
			return n, err
		}
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA {
			n += hdr.Size
		}
	}
}
