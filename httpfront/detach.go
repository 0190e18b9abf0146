package httpfront

import (
	"errors"
	"io"
	"strings"

	"github.com/arcavm/arca/messages"
)

// errDetached ends an attach when the client typed the detach keys.
var errDetached = errors.New("detached")

const defaultDetachKeys = "ctrl-p,ctrl-q"

// parseDetachKeys reads Docker's detach key syntax: comma-separated keys,
// each a single character or "ctrl-X".
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = defaultDetachKeys
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, messages.InvalidParameter("Invalid escape keys (%s) provided", s)
			}
		default:
			return nil, messages.InvalidParameter("Invalid escape keys (%s) provided", s)
		}
	}
	return out, nil
}

// detachReader passes input through until the key sequence appears; bytes
// that start the sequence are held back until it is clear they do not
// complete it.
type detachReader struct {
	r    io.Reader
	keys []byte
	held []byte
	out  []byte
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if b == d.keys[len(d.held)] {
				d.held = append(d.held, b)
				if len(d.held) == len(d.keys) {
					return d.flush(p, errDetached)
				}
				continue
			}
			d.out = append(d.out, d.held...)
			d.held = d.held[:0]
			if b == d.keys[0] {
				d.held = append(d.held, b)
				continue
			}
			d.out = append(d.out, b)
		}
		if err != nil {
			d.out = append(d.out, d.held...)
			d.held = nil
			return d.flush(p, err)
		}
	}
	return d.flush(p, nil)
}

// flush hands out what is pending; err is returned once it is all out.
func (d *detachReader) flush(p []byte, err error) (int, error) {
	n := copy(p, d.out)
	d.out = d.out[n:]
	if len(d.out) > 0 {
		return n, nil
	}
	return n, err
}
