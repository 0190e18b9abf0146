package gateway

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestHostResolvers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(p, []byte("# comment\nsearch example.com\nnameserver 10.0.0.2\nnameserver  ::1\nnameserver bogus\noptions ndots:2\n"), 0o644)
	got := HostResolvers(p)
	if want := []string{"10.0.0.2:53", "[::1]:53"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := HostResolvers(filepath.Join(t.TempDir(), "none")); got != nil {
		t.Fatalf("missing file: %v", got)
	}
}

func TestParseResolver(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"10.0.0.2", "10.0.0.2:53"},
		{"127.0.0.1:5353", "127.0.0.1:5353"},
		{"::1", "[::1]:53"},
		{"[::1]:5353", "[::1]:5353"},
		{"bogus", ""},
		{"10.0.0.2:x", ""},
	} {
		got, err := ParseResolver(c.in)
		if (err != nil) != (c.want == "") || got != c.want {
			t.Errorf("%q: got %q, %v", c.in, got, err)
		}
	}
}
