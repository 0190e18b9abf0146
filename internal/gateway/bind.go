package gateway

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// udpBind is wireguard-go's view of the gateway's one UDP socket on the
// underlay. The socket comes from listen, because only the caller knows
// the underlay: a kernel socket made in the bridge's namespace, or one of
// the user-space switch's host stack.
type udpBind struct {
	listen func(port uint16) (net.PacketConn, error)

	mu   sync.Mutex
	c    net.PacketConn
	port uint16 // kept across re-opens, so peers' endpoints stay right
}

var _ conn.Bind = (*udpBind)(nil)

// endpoint is a peer's underlay address.
type endpoint netip.AddrPort

func (e endpoint) ClearSrc()           {}
func (e endpoint) SrcToString() string { return "" }
func (e endpoint) DstToString() string { return netip.AddrPort(e).String() }
func (e endpoint) DstToBytes() []byte {
	b, _ := netip.AddrPort(e).MarshalBinary()
	return b
}
func (e endpoint) DstIP() netip.Addr { return netip.AddrPort(e).Addr() }
func (e endpoint) SrcIP() netip.Addr { return netip.Addr{} }

func (b *udpBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	if port == 0 {
		port = b.port
	}
	c, err := b.listen(port)
	if err != nil {
		return nil, 0, err
	}
	b.c = c
	b.port = uint16(c.LocalAddr().(*net.UDPAddr).Port)
	recv := func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n, from, err := c.ReadFrom(packets[0])
		if err != nil {
			if b.closedConn(c) {
				// wireguard-go's receive loop ends only on net.ErrClosed;
				// any other error it retries, three times a second, ten
				// times. gVisor's UDP socket (the switch's host stack)
				// says io.EOF, so each Close took 3.3 s, and a network's
				// last leave with it.
				return 0, net.ErrClosed
			}
			return 0, err
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			return 0, errors.New("gateway: a datagram from a non-UDP address")
		}
		ap := ua.AddrPort()
		sizes[0] = n
		eps[0] = endpoint(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		return 1, nil
	}
	return []conn.ReceiveFunc{recv}, b.port, nil
}

func (b *udpBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c == nil {
		return nil
	}
	err := b.c.Close()
	b.c = nil
	return err
}

// closedConn says whether c is no longer the bind's open socket.
func (b *udpBind) closedConn(c net.PacketConn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c != c
}

func (b *udpBind) SetMark(uint32) error { return nil }

func (b *udpBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	b.mu.Lock()
	c := b.c
	b.mu.Unlock()
	if c == nil {
		return net.ErrClosed
	}
	e, ok := ep.(endpoint)
	if !ok {
		return errors.New("gateway: foreign endpoint")
	}
	to := net.UDPAddrFromAddrPort(netip.AddrPort(e))
	for _, buf := range bufs {
		if _, err := c.WriteTo(buf, to); err != nil {
			return err
		}
	}
	return nil
}

func (b *udpBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return endpoint(ap), nil
}

func (b *udpBind) BatchSize() int { return 1 }
