package ipam

import (
	"errors"
	"net/netip"
	"testing"
)

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		subnet, gw, rng string
		wantGW, wantErr string
	}{
		{subnet: "10.1.0.0/24", wantGW: "10.1.0.1"},
		{subnet: "10.1.0.7/24", gw: "10.1.0.254", wantGW: "10.1.0.254"},
		{subnet: "10.1.0.0/24", gw: "10.2.0.1", wantErr: "no matching subnet for gateway 10.2.0.1"},
		{subnet: "10.1.0.0/24", rng: "10.1.1.0/25", wantErr: "no matching subnet for range 10.1.1.0/25"},
		{subnet: "10.1.0.0/24", rng: "10.1.0.0/16", wantErr: "no matching subnet for range 10.1.0.0/16"},
		{subnet: "10.1.0.0/31", wantErr: "too small"},
		{subnet: "fd00::/64", wantErr: "only IPv4"},
	} {
		var gw netip.Addr
		var rng netip.Prefix
		if tc.gw != "" {
			gw = netip.MustParseAddr(tc.gw)
		}
		if tc.rng != "" {
			rng = netip.MustParsePrefix(tc.rng)
		}
		p, err := New(netip.MustParsePrefix(tc.subnet), gw, rng)
		if tc.wantErr != "" {
			if err == nil || !contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want %q", tc.subnet, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.subnet, err)
			continue
		}
		if p.Gateway().String() != tc.wantGW {
			t.Errorf("%s: gateway %s, want %s", tc.subnet, p.Gateway(), tc.wantGW)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestAllocateSkipsReservedAndRotates(t *testing.T) {
	p, err := New(netip.MustParsePrefix("10.1.0.0/29"), netip.Addr{}, netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 5; i++ { // .2 .. .6: not .0, .1 (gateway) or .7
		a, err := p.Allocate("c")
		if err != nil {
			t.Fatalf("allocate %d: %v", i, err)
		}
		got = append(got, a.String())
	}
	if got[0] != "10.1.0.2" || got[4] != "10.1.0.6" {
		t.Fatalf("got %v", got)
	}
	if _, err := p.Allocate("c"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("want exhausted, got %v", err)
	}
	p.Release(netip.MustParseAddr("10.1.0.3"))
	if a, _ := p.Allocate("d"); a.String() != "10.1.0.3" {
		t.Fatalf("reuse: got %s", a)
	}
}

func TestAllocateStaysInRange(t *testing.T) {
	p, err := New(netip.MustParsePrefix("10.1.0.0/16"), netip.Addr{}, netip.MustParsePrefix("10.1.5.0/30"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		a, err := p.Allocate("c")
		if err != nil {
			t.Fatal(err)
		}
		if !netip.MustParsePrefix("10.1.5.0/30").Contains(a) {
			t.Fatalf("%s outside the range", a)
		}
	}
	if _, err := p.Allocate("c"); err == nil {
		t.Fatal("range should be exhausted")
	}
}

func TestClaim(t *testing.T) {
	p, _ := New(netip.MustParsePrefix("10.1.0.0/24"), netip.Addr{}, netip.Prefix{})
	if err := p.Claim(netip.MustParseAddr("10.1.0.50"), "a"); err != nil {
		t.Fatal(err)
	}
	if err := p.Claim(netip.MustParseAddr("10.1.0.50"), "a"); err != nil {
		t.Fatalf("same owner again: %v", err)
	}
	if err := p.Claim(netip.MustParseAddr("10.1.0.50"), "b"); !errors.Is(err, ErrInUse) {
		t.Fatalf("want in use, got %v", err)
	}
	for _, bad := range []string{"10.2.0.5", "10.1.0.0", "10.1.0.255", "10.1.0.1"} {
		if err := p.Claim(netip.MustParseAddr(bad), "b"); err == nil {
			t.Errorf("claim %s should fail", bad)
		}
	}
}

func TestPickSubnet(t *testing.T) {
	got, err := PickSubnet([]netip.Prefix{DefaultBridge, netip.MustParsePrefix("172.18.5.0/24")})
	if err != nil || got.String() != "172.19.0.0/16" {
		t.Fatalf("got %s %v", got, err)
	}
}
