// Package underlay is the network that carries WireGuard traffic between
// machines: one bridge inside a network namespace the daemon owns, with a
// link per machine (a veth into a sandbox's namespace, a tap behind a VM's
// NIC). Container traffic never touches it in the clear, and nothing on it
// is routed to the host: the namespace has no other interfaces.
package underlay

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// DefaultPrefix is the underlay's address space. It comes from the
// benchmarking range (RFC 2544), which user networks almost never use, so
// it does not shadow a container network inside a guest.
var DefaultPrefix = netip.MustParsePrefix("198.18.0.0/16")

// HostAddress is the host's own address on the underlay: the first of
// DefaultPrefix, which the Pool keeps back.
var HostAddress = DefaultPrefix.Addr().Next()

// MTU of underlay links; WireGuard devices on top of it use 80 bytes less.
const MTU = 1500

// Pool hands out underlay addresses, one per running machine.
type Pool struct {
	prefix netip.Prefix
	mu     sync.Mutex
	used   map[netip.Addr]bool
	next   netip.Addr
}

// NewPool returns a pool over prefix; its first address is kept back.
func NewPool(prefix netip.Prefix) *Pool {
	first := prefix.Masked().Addr().Next()
	return &Pool{prefix: prefix.Masked(), used: map[netip.Addr]bool{first: true}, next: first.Next()}
}

// Allocate returns a free address with the pool's prefix length.
func (p *Pool) Allocate() (netip.Prefix, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.next
	if !p.prefix.Contains(start) {
		start = p.prefix.Addr().Next()
	}
	for a := start; ; {
		if !p.used[a] && a != lastAddr(p.prefix) {
			p.used[a] = true
			p.next = a.Next()
			return netip.PrefixFrom(a, p.prefix.Bits()), nil
		}
		a = a.Next()
		if !p.prefix.Contains(a) {
			a = p.prefix.Addr().Next()
		}
		if a == start {
			return netip.Prefix{}, fmt.Errorf("underlay %s: no free address", p.prefix)
		}
	}
}

// Release returns an address to the pool.
func (p *Pool) Release(a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a != p.prefix.Addr().Next() {
		delete(p.used, a)
	}
}

// lastAddr is the prefix's broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		b[i/8] |= 1 << (7 - uint(i%8))
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		return a.Unmap()
	}
	return a
}

// NewMAC returns a random locally administered unicast address.
func NewMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	_, _ = rand.Read(mac)
	mac[0] = mac[0]&0xfe | 0x02
	return mac
}
