// Package ipam hands out IPv4 addresses on one network, and picks subnets
// for new networks from Docker's default pools.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrInUse is returned when a fixed address is already taken.
var ErrInUse = errors.New("Address already in use")

// ErrExhausted is returned when no dynamic address is left.
var ErrExhausted = errors.New("no available addresses on this pool")

// Pool is one network's addresses. It is not safe for concurrent use: the
// network actor that owns it serializes access.
type Pool struct {
	subnet  netip.Prefix
	gateway netip.Addr
	dynamic netip.Prefix // where dynamic addresses come from
	used    map[netip.Addr]string
	next    netip.Addr
}

// New checks a network's IPAM configuration and returns its pool. An
// empty gateway becomes the subnet's first address; an empty ipRange is
// the whole subnet.
func New(subnet netip.Prefix, gateway netip.Addr, ipRange netip.Prefix) (*Pool, error) {
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return nil, fmt.Errorf("invalid subnet %s: only IPv4 subnets are supported", subnet)
	}
	if subnet.Bits() > 30 {
		return nil, fmt.Errorf("invalid subnet %s: too small for a network", subnet)
	}
	subnet = subnet.Masked()
	if !gateway.IsValid() {
		gateway = subnet.Addr().Next()
	}
	if !subnet.Contains(gateway) {
		return nil, fmt.Errorf("no matching subnet for gateway %s", gateway)
	}
	if !ipRange.IsValid() {
		ipRange = subnet
	}
	ipRange = ipRange.Masked()
	if !subnet.Contains(ipRange.Addr()) || ipRange.Bits() < subnet.Bits() {
		return nil, fmt.Errorf("no matching subnet for range %s", ipRange)
	}
	p := &Pool{subnet: subnet, gateway: gateway, dynamic: ipRange, used: map[netip.Addr]string{}}
	p.used[gateway] = "gateway"
	p.next = ipRange.Addr()
	return p, nil
}

// Subnet, Gateway and Range describe the pool.
func (p *Pool) Subnet() netip.Prefix      { return p.subnet }
func (p *Pool) Gateway() netip.Addr       { return p.gateway }
func (p *Pool) Range() netip.Prefix       { return p.dynamic }
func (p *Pool) Owner(a netip.Addr) string { return p.used[a] }

// usable reports whether a may be given to a container at all.
func (p *Pool) usable(a netip.Addr) bool {
	return p.subnet.Contains(a) && a != p.subnet.Addr() && a != Broadcast(p.subnet)
}

// Claim takes a fixed address for owner.
func (p *Pool) Claim(a netip.Addr, owner string) error {
	if !p.usable(a) {
		return fmt.Errorf("no configured subnet or ip-range contain the IP address %s", a)
	}
	if o, ok := p.used[a]; ok && o != owner {
		return ErrInUse
	}
	p.used[a] = owner
	return nil
}

// Allocate takes the next free dynamic address for owner, going round the
// range so that a released address is not reused at once.
func (p *Pool) Allocate(owner string) (netip.Addr, error) {
	start := p.next
	if !p.dynamic.Contains(start) {
		start = p.dynamic.Addr()
	}
	a := start
	for {
		if p.dynamic.Contains(a) && p.usable(a) {
			if _, taken := p.used[a]; !taken {
				p.used[a] = owner
				p.next = a.Next()
				return a, nil
			}
		}
		a = a.Next()
		if !p.dynamic.Contains(a) {
			a = p.dynamic.Addr()
		}
		if a == start {
			return netip.Addr{}, ErrExhausted
		}
	}
}

// Release frees an address; the gateway stays taken.
func (p *Pool) Release(a netip.Addr) {
	if a != p.gateway {
		delete(p.used, a)
	}
}

// Broadcast is the last address of p.
func Broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << host) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Overlaps reports whether two prefixes share an address.
func Overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

// DefaultBridge is the default bridge network's subnet, as on dockerd.
var DefaultBridge = netip.MustParsePrefix("172.17.0.0/16")

// defaultPools are dockerd's: 172.17-31.0.0/16, then 192.168.0.0/16 in
// /20s.
func defaultPools() []netip.Prefix {
	var out []netip.Prefix
	for i := 17; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return out
}

// PickSubnet returns the first default pool that overlaps none of taken.
func PickSubnet(taken []netip.Prefix) (netip.Prefix, error) {
next:
	for _, c := range defaultPools() {
		for _, t := range taken {
			if c.Overlaps(t) {
				continue next
			}
		}
		return c, nil
	}
	return netip.Prefix{}, errors.New("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
}
