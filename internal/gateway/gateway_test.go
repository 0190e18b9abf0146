package gateway

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/arcavm/arca/internal/testenv"
)

// A container is played by wireguard-go on its own user-space stack, on
// loopback: everything the test sends stays on this machine.
type guest struct {
	dev  *device.Device
	net  *netstack.Net
	key  wgtypes.Key
	peer Peer // as the gateway knows it
}

func newGuest(t *testing.T, ip netip.Addr, gw *Gateway) *guest {
	t.Helper()
	tdev, tnet, err := netstack.CreateNetTUN([]netip.Addr{ip}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := wgtypes.GeneratePrivateKey()
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "guest: "))
	gwKey, _ := wgtypes.ParseKey(gw.PublicKey())
	cfg := fmt.Sprintf("private_key=%s\nlisten_port=0\npublic_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=0.0.0.0/0\n",
		hex.EncodeToString(key[:]), hex.EncodeToString(gwKey[:]), gw.Port())
	if err := dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	state, err := dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	var port uint16
	for _, line := range strings.Split(state, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			fmt.Sscan(v, &port)
		}
	}
	peer := Peer{PublicKey: key.PublicKey().String(), Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), IP: ip}
	if err := gw.SetPeers([]Peer{peer}); err != nil {
		t.Fatal(err)
	}
	return &guest{dev: dev, net: tnet, key: key, peer: peer}
}

func listenLoopback(port uint16) (net.PacketConn, error) {
	return net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
}

// echoServer answers each connection with what it read, after the client
// closed its side: that proves the half-close is carried.
func echoServer(t *testing.T) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(append([]byte("echo:"), b...))
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// askGateway sends the gateway's port 53 one A query from the guest and
// returns the answer.
func askGateway(t *testing.T, g *guest, gw netip.Addr, id uint16, name string) dnsmessage.Message {
	t.Helper()
	c, err := g.net.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(gw, 53))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := dnsmessage.Message{Header: dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	b, _ := q.Pack()
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGateway(t *testing.T) {
	gwAddr := netip.MustParseAddr("10.99.0.1")
	resolver, err := testenv.Resolver()
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(Config{Address: gwAddr, Listen: listenLoopback, Resolvers: []string{"127.0.0.1:1", resolver}})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	g := newGuest(t, netip.MustParseAddr("10.99.0.2"), gw)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("host loopback through the gateway address", func(t *testing.T) {
		port := echoServer(t)
		c, err := g.net.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", gwAddr, port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("hello"))
		c.(interface{ CloseWrite() error }).CloseWrite()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "echo:hello" {
			t.Fatalf("got %q, %v", got, err)
		}
	})

	t.Run("closed port is refused", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if c, err := g.net.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", gwAddr, port)); err == nil {
			c.Close()
			t.Fatal("connected to a closed port")
		}
	})

	t.Run("dns goes to the resolvers", func(t *testing.T) {
		m := askGateway(t, g, gwAddr, 42, "example."+testenv.ResolverDomain+".")
		if m.Header.ID != 42 || len(m.Answers) != 1 {
			t.Fatalf("answer %+v", m)
		}
	})
}

// TestGatewayDNSFailure: with no resolver answering, the guest hears
// SERVFAIL at once instead of waiting out its timeout.
func TestGatewayDNSFailure(t *testing.T) {
	gwAddr := netip.MustParseAddr("10.99.0.1")
	gw, err := New(Config{Address: gwAddr, Listen: listenLoopback, Resolvers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	g := newGuest(t, netip.MustParseAddr("10.99.0.2"), gw)
	if m := askGateway(t, g, gwAddr, 7, "x.test."); m.Header.ID != 7 || m.Header.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("answer %+v", m.Header)
	}
}

// TestGatewayCloseEndsConnections: closing the gateway (the network is
// removed, the daemon stops) ends what it carries.
func TestGatewayCloseEndsConnections(t *testing.T) {
	gwAddr := netip.MustParseAddr("10.99.0.1")
	gw, err := New(Config{Address: gwAddr, Listen: listenLoopback})
	if err != nil {
		t.Fatal(err)
	}
	g := newGuest(t, netip.MustParseAddr("10.99.0.2"), gw)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := g.net.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", gwAddr, ln.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host := <-accepted
	defer host.Close()
	gw.Close()
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := host.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("host side after close: %v", err)
	}
}

// TestGatewayPeersKeepSessions: another member's join or leave leaves a
// member's session as it was (wireguard-go's replace_peers dropped it:
// its next packets went nowhere for 25 s, until it shook hands again).
func TestGatewayPeersKeepSessions(t *testing.T) {
	gwAddr := netip.MustParseAddr("10.98.0.1")
	gw, err := New(Config{Address: gwAddr, Listen: listenLoopback})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	g := newGuest(t, netip.MustParseAddr("10.98.0.2"), gw)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := g.net.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", gwAddr, ln.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	// The member's last handshake, from its block of the device's state.
	handshake := func() string {
		state, _ := gw.dev.IpcGet()
		pub := g.key.PublicKey()
		mine := false
		for _, l := range strings.Split(state, "\n") {
			if v, ok := strings.CutPrefix(l, "public_key="); ok {
				mine = v == hex.EncodeToString(pub[:])
			}
			if v, ok := strings.CutPrefix(l, "last_handshake_time_sec="); ok && mine {
				return v
			}
		}
		return ""
	}
	before := handshake()
	other, _ := wgtypes.GeneratePrivateKey()
	joined := Peer{PublicKey: other.PublicKey().String(), Endpoint: netip.MustParseAddrPort("127.0.0.1:9"), IP: netip.MustParseAddr("10.98.0.3")}
	for _, peers := range [][]Peer{{g.peer, joined}, {g.peer}} {
		if err := gw.SetPeers(peers); err != nil {
			t.Fatal(err)
		}
		if got := handshake(); got != before || got == "0" {
			t.Fatalf("the member's session after the peers became %d: handshake %s, was %s", len(peers), got, before)
		}
	}
}
