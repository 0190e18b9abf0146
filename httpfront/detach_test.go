package httpfront

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestParseDetachKeys(t *testing.T) {
	cases := []struct {
		in   string
		want []byte
		ok   bool
	}{
		{"", []byte{16, 17}, true},
		{"ctrl-a,x", []byte{1, 'x'}, true},
		{"ctrl-@,ctrl-[", []byte{0, 27}, true},
		{"ctrl-", nil, false},
		{"xy", nil, false},
		{"ctrl-1", nil, false},
	}
	for _, c := range cases {
		got, err := parseDetachKeys(c.in)
		if (err == nil) != c.ok || !bytes.Equal(got, c.want) {
			t.Errorf("parseDetachKeys(%q) = %v, %v", c.in, got, err)
		}
	}
}

func TestDetachReader(t *testing.T) {
	keys := []byte{16, 17}
	cases := []struct {
		in       string
		want     string
		detached bool
	}{
		{"hello", "hello", false},
		{"ab\x10\x11cd", "ab", true},
		{"a\x10b", "a\x10b", false},
		{"\x10\x10\x11", "\x10", true},
		{"trailing\x10", "trailing\x10", false},
	}
	for _, c := range cases {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader([]byte(c.in))
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(&detachReader{r: r, keys: keys})
			if string(got) != c.want || errors.Is(err, errDetached) != c.detached {
				t.Errorf("%q (one byte %v): got %q, %v", c.in, oneByte, got, err)
			}
		}
	}
}
