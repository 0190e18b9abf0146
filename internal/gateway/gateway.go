// Package gateway is the host's member of a container network. It joins
// the network's WireGuard mesh at the network's gateway address, with a
// user-space TCP/IP stack behind it, and carries what containers send it
// out of the mesh: connections to the gateway address go to the host's
// loopback (host.docker.internal), DNS queries to it go to the host's
// resolvers, and connections to any other address are made from the
// host, as dockerd's NAT would. Internal networks have no gateway.
//
// Nothing is routed and no packet filter is touched: each connection is
// accepted in the user-space stack and dialed again by the daemon.
package gateway

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/arcavm/arca/internal/dnsfwd"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Config describes one network's gateway.
type Config struct {
	// Address is the gateway's address on the network.
	Address netip.Addr
	// Listen makes the UDP socket WireGuard uses on the underlay; port 0
	// asks for any free port. Its ReadFrom and LocalAddr give *net.UDPAddr.
	Listen func(port uint16) (net.PacketConn, error)
	// Host is where connections to Address go: the host's loopback.
	Host netip.Addr
	// Resolvers ("ip:port") answer the DNS queries sent to Address:53.
	Resolvers []string
	// MTU of the WireGuard link, as in the guests.
	MTU int
	Log *slog.Logger
}

// Peer is a container on the network.
type Peer struct {
	PublicKey string         // base64
	Endpoint  netip.AddrPort // its WireGuard socket on the underlay
	IP        netip.Addr     // its address on the network
}

// Gateway is a running gateway. Its methods are safe for concurrent use.
type Gateway struct {
	cfg   Config
	key   wgtypes.Key
	bind  *udpBind
	dev   *device.Device
	stack *stack.Stack
	port  uint16

	mu     sync.Mutex
	conns  map[io.Closer]struct{} // carried connections, closed with the gateway
	closed bool

	peersMu sync.Mutex
	peers   map[wgtypes.Key]Peer // what the device holds
}

const nicID = 1

// dialTimeout bounds the daemon's connection on a container's behalf; the
// container's own connect waits as long.
const dialTimeout = 10 * time.Second

// udpIdle ends a carried UDP flow that has been silent this long.
const udpIdle = 2 * time.Minute

// New starts a gateway with no peers.
func New(cfg Config) (*Gateway, error) {
	if !cfg.Address.Is4() {
		return nil, fmt.Errorf("gateway: %v is not an IPv4 address", cfg.Address)
	}
	if !cfg.Host.IsValid() {
		cfg.Host = netip.MustParseAddr("127.0.0.1")
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1420
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{cfg: cfg, key: key, bind: &udpBind{listen: cfg.Listen}, conns: map[io.Closer]struct{}{}}
	ep, err := g.startStack()
	if err != nil {
		g.Close()
		return nil, err
	}
	logger := &device.Logger{Verbosef: device.DiscardLogf, Errorf: func(f string, args ...any) {
		cfg.Log.Debug("gateway wireguard: " + fmt.Sprintf(f, args...))
	}}
	// The TUN reads what the stack writes to its NIC, and writes to it.
	g.dev = device.NewDevice(newStackTUN(ep, cfg.MTU), g.bind, logger)
	if err := g.dev.IpcSet("private_key=" + hex.EncodeToString(key[:]) + "\nlisten_port=0\n"); err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := g.dev.Up(); err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.bind.mu.Lock()
	g.port = g.bind.port
	g.bind.mu.Unlock()
	return g, nil
}

// startStack makes the user-space stack: one NIC that takes packets for
// any address (they are the containers' connections to the world) and
// hands each new TCP connection and UDP flow to the gateway. It returns
// the NIC's link endpoint.
func (g *Gateway) startStack() (*channel.Endpoint, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	g.stack = s // closed by Close, also on a failure here
	ep := channel.New(512, uint32(g.cfg.MTU), "")
	if err := s.CreateNIC(nicID, ep); err != nil {
		return nil, fmt.Errorf("gateway: stack: %v", err)
	}
	addr := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFrom4(g.cfg.Address.As4()).WithPrefix()}
	if err := s.AddProtocolAddress(nicID, addr, stack.AddressProperties{}); err != nil {
		return nil, fmt.Errorf("gateway: stack: %v", err)
	}
	// Promiscuous and spoofing: accept packets for, and answer from,
	// whatever address a container connects to.
	if err := s.SetPromiscuousMode(nicID, true); err != nil {
		return nil, fmt.Errorf("gateway: stack: %v", err)
	}
	if err := s.SetSpoofing(nicID, true); err != nil {
		return nil, fmt.Errorf("gateway: stack: %v", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	sack := tcpip.TCPSACKEnabled(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcp.NewForwarder(s, 0, 1024, g.acceptTCP).HandlePacket)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, udp.NewForwarder(s, g.acceptUDP).HandlePacket)
	return ep, nil
}

// PublicKey is the gateway's WireGuard key, for the containers' peer.
func (g *Gateway) PublicKey() string { return g.key.PublicKey().String() }

// Port is the gateway's WireGuard port on the underlay.
func (g *Gateway) Port() uint16 { return g.port }

// SetPeers makes the gateway's peers the network's members. Only what
// changed is told to the device: wireguard-go drops the session of every
// peer it is given anew (replace_peers), and a member whose session the
// gateway dropped sends into the void until its own timers shake hands
// again (25 s measured), so one member's join or leave must not touch
// the others.
func (g *Gateway) SetPeers(peers []Peer) error {
	g.peersMu.Lock()
	defer g.peersMu.Unlock()
	want := make(map[wgtypes.Key]Peer, len(peers))
	for _, p := range peers {
		key, err := wgtypes.ParseKey(p.PublicKey)
		if err != nil {
			return fmt.Errorf("gateway: peer key: %w", err)
		}
		want[key] = p
	}
	var b strings.Builder
	for key := range g.peers {
		if _, ok := want[key]; !ok {
			fmt.Fprintf(&b, "public_key=%s\nremove=true\n", hex.EncodeToString(key[:]))
		}
	}
	for key, p := range want {
		if old, ok := g.peers[key]; ok && old.Endpoint == p.Endpoint && old.IP == p.IP {
			continue
		}
		fmt.Fprintf(&b, "public_key=%s\nendpoint=%s\nreplace_allowed_ips=true\nallowed_ip=%s\n",
			hex.EncodeToString(key[:]), p.Endpoint, netip.PrefixFrom(p.IP, 32))
	}
	if b.Len() > 0 {
		if err := g.dev.IpcSet(b.String()); err != nil {
			return fmt.Errorf("gateway: peers: %w", err)
		}
	}
	g.peers = want
	return nil
}

// Close stops the gateway and every connection it carries.
func (g *Gateway) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	conns := g.conns
	g.conns = nil
	g.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	if g.dev != nil {
		g.dev.Close() // closes the TUN and the bind
	}
	if g.stack != nil {
		g.stack.Close()
	}
}

// track keeps c for Close; false when the gateway is already closed.
func (g *Gateway) track(cs ...io.Closer) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	for _, c := range cs {
		g.conns[c] = struct{}{}
	}
	return true
}

func (g *Gateway) untrack(cs ...io.Closer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range cs {
		delete(g.conns, c)
	}
}

// target is where a connection to dst goes.
func (g *Gateway) target(dst netip.AddrPort, proto string) string {
	if dst.Addr() == g.cfg.Address {
		if dst.Port() == 53 && proto == "tcp" && len(g.cfg.Resolvers) > 0 {
			return g.cfg.Resolvers[0]
		}
		return netip.AddrPortFrom(g.cfg.Host, dst.Port()).String()
	}
	return dst.String()
}

func (g *Gateway) acceptTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	to := g.target(dst, "tcp")
	// Dial first: a refused port is then refused in the container too.
	out, err := net.DialTimeout("tcp", to, dialTimeout)
	if err != nil {
		g.cfg.Log.Debug("gateway: dial", "to", to, "err", err)
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		r.Complete(true)
		out.Close()
		return
	}
	r.Complete(false)
	in := gonet.NewTCPConn(&wq, ep)
	if !g.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	go func() {
		defer g.untrack(in, out)
		splice(in, out.(*net.TCPConn))
	}()
}

// halfCloser is a connection whose sending side closes alone.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// splice copies both ways, passing on each side's end of data, until
// both are done.
func splice(a, b halfCloser) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src halfCloser) {
		defer wg.Done()
		io.Copy(dst, src)
		dst.CloseWrite()
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

func (g *Gateway) acceptUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		return
	}
	in := gonet.NewUDPConn(&wq, ep)
	if dst.Addr() == g.cfg.Address && dst.Port() == 53 {
		if !g.track(in) {
			in.Close()
			return
		}
		go g.serveDNS(in)
		return
	}
	go g.relayUDP(in, g.target(dst, "udp"))
}

// relayUDP carries one UDP flow (one container address and port to one
// destination) until it is idle.
func (g *Gateway) relayUDP(in *gonet.UDPConn, to string) {
	out, err := net.Dial("udp", to)
	if err != nil {
		in.Close()
		return
	}
	if !g.track(in, out) {
		in.Close()
		out.Close()
		return
	}
	defer g.untrack(in, out)
	done := make(chan struct{})
	cp := func(dst, src net.Conn) {
		buf := make([]byte, 65535)
		for {
			src.SetReadDeadline(time.Now().Add(udpIdle))
			n, err := src.Read(buf)
			if err != nil {
				break
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				break
			}
		}
		in.Close()
		out.Close()
		done <- struct{}{}
	}
	go cp(out, in)
	go cp(in, out)
	<-done
	<-done
}

// serveDNS answers the queries of one container socket with the host's
// resolvers, each query on its own.
func (g *Gateway) serveDNS(in *gonet.UDPConn) {
	defer g.untrack(in)
	defer in.Close()
	buf := make([]byte, 65535)
	for {
		in.SetReadDeadline(time.Now().Add(udpIdle))
		n, err := in.Read(buf)
		if err != nil {
			return
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			a, err := g.resolve(q)
			if err != nil {
				// Say so at once rather than let the guest time out.
				g.cfg.Log.Debug("gateway: dns", "err", err)
				if a, err = dnsfwd.ServerFailure(q); err != nil {
					return
				}
			}
			in.Write(a)
		}()
	}
}

// resolve asks the resolvers in order; the first answer wins.
func (g *Gateway) resolve(q []byte) ([]byte, error) {
	var d net.Dialer
	err := errors.New("no resolvers")
	for _, r := range g.cfg.Resolvers {
		var a []byte
		if a, err = dnsfwd.Exchange(d.DialContext, r, "udp", q, 3*time.Second); err == nil {
			return a, nil
		}
	}
	return nil, err
}

func addrOf(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip.Unmap()
}
