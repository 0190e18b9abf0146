package vm

import "testing"

func TestMemoryAndCPUs(t *testing.T) {
	for _, tc := range []struct {
		mem, wantMem int64
	}{
		{0, DefaultMemoryBytes},
		{-1, DefaultMemoryBytes},
		{6 << 20, MinMemoryBytes}, // raised to what a guest needs
		{1 << 30, 1 << 30},
		{1<<30 + 1, 1<<30 + 1<<20}, // whole MiB, rounded up
		{2 << 30, 2 << 30},
	} {
		if got := MemoryBytes(tc.mem); got != tc.wantMem || got%(1<<20) != 0 {
			t.Errorf("MemoryBytes(%d) = %d, want %d", tc.mem, got, tc.wantMem)
		}
	}
	for _, tc := range []struct {
		nano int64
		host int
		want int
	}{
		{0, 8, DefaultCPUs},
		{1, 8, 1},
		{5e8, 8, 1},
		{1e9, 8, 1},
		{15e8, 8, 2},
		{4e9, 2, 2},
		{16e9, 8, 8}, // at most the host's
	} {
		if got := CPUs(tc.nano, tc.host); got != tc.want {
			t.Errorf("CPUs(%d, %d) = %d, want %d", tc.nano, tc.host, got, tc.want)
		}
	}
}

func TestGuestPath(t *testing.T) {
	shares := []Share{{HostPath: "/var/lib/arca/volumes/v/_data"}, {HostPath: "/etc/app/"}}
	for _, c := range []struct{ in, want string }{
		{"/var/lib/arca/volumes/v/_data", "/mnt/share0"},
		{"/var/lib/arca/volumes/v/_data/sub/f", "/mnt/share0/sub/f"},
		{"/etc/app/nginx.conf", "/mnt/share1/nginx.conf"},
		{"/etc/app", "/mnt/share1"},
		{"/var/lib/arca/volumes/v/_database", ""},
		{"/elsewhere", ""},
	} {
		got, ok := GuestPath(shares, c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: got %q %v, want %q", c.in, got, ok, c.want)
		}
	}
}
