package underlay

import (
	"net/netip"
	"testing"
)

func TestPoolAllocatesEachAddressOnce(t *testing.T) {
	p := NewPool(netip.MustParsePrefix("10.9.0.0/29")) // .1 kept, .7 broadcast
	seen := map[netip.Addr]bool{}
	for i := 0; i < 5; i++ {
		a, err := p.Allocate()
		if err != nil {
			t.Fatalf("allocate %d: %v", i, err)
		}
		if a.Bits() != 29 || seen[a.Addr()] || a.Addr() == netip.MustParseAddr("10.9.0.1") || a.Addr() == netip.MustParseAddr("10.9.0.7") {
			t.Fatalf("allocate %d: bad address %s", i, a)
		}
		seen[a.Addr()] = true
	}
	if a, err := p.Allocate(); err == nil {
		t.Fatalf("pool should be full, got %s", a)
	}
	p.Release(netip.MustParseAddr("10.9.0.4"))
	a, err := p.Allocate()
	if err != nil || a.Addr() != netip.MustParseAddr("10.9.0.4") {
		t.Fatalf("after release: %v %v", a, err)
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.0.0/16": "198.18.255.255",
		"10.0.0.0/8":    "10.255.255.255",
		"fd00::/120":    "fd00::ff",
	} {
		if got := lastAddr(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestNewMACIsLocalUnicast(t *testing.T) {
	for i := 0; i < 100; i++ {
		m := NewMAC()
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Fatalf("%s is not locally administered unicast", m)
		}
	}
}
