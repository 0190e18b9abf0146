package underlay

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// nicEnd is a test's view of a VM's NIC: the end of the pair a VM would
// get, as a connected datagram socket.
type nicEnd struct {
	*net.UnixConn
	hw     net.HardwareAddr
	detach func()
}

func openNIC(t *testing.T, s *Switch) *nicEnd {
	t.Helper()
	hw := NewMAC()
	f, detach, err := s.OpenNIC(hw)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	n := &nicEnd{UnixConn: c.(*net.UnixConn), hw: hw, detach: detach}
	t.Cleanup(func() { n.Close(); detach() })
	return n
}

func frame(dst, src net.HardwareAddr, payload string) []byte {
	f := append(append(append([]byte(nil), dst...), src...), 0x88, 0xb5) // local experimental ethertype
	return append(f, payload...)
}

// recv reads one frame, or nil if none comes within d.
func (n *nicEnd) recv(t *testing.T, d time.Duration) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	n.SetReadDeadline(time.Now().Add(d))
	k, err := n.Read(buf)
	if err != nil {
		if os.IsTimeout(err) {
			return nil
		}
		t.Fatal(err)
	}
	return buf[:k]
}

func (n *nicEnd) send(t *testing.T, f []byte) {
	t.Helper()
	if _, err := n.Write(f); err != nil {
		t.Fatal(err)
	}
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func TestSwitchForwards(t *testing.T) {
	s, err := NewSwitch(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b, c := openNIC(t, s), openNIC(t, s), openNIC(t, s)

	// A broadcast reaches every other port, whole, and not its sender.
	bc := frame(broadcast, a.hw, "who has")
	a.send(t, bc)
	for name, n := range map[string]*nicEnd{"b": b, "c": c} {
		if got := n.recv(t, 2*time.Second); !bytes.Equal(got, bc) {
			t.Fatalf("%s got %x, want the broadcast", name, got)
		}
	}
	if got := a.recv(t, 100*time.Millisecond); got != nil {
		t.Fatalf("the sender got its own broadcast back: %x", got)
	}

	// A unicast goes to its address's port alone, from the first frame:
	// every port's address is known when it is opened.
	reply := frame(a.hw, b.hw, "is at")
	b.send(t, reply)
	if got := a.recv(t, 2*time.Second); !bytes.Equal(got, reply) {
		t.Fatalf("a got %x, want the reply", got)
	}
	if got := c.recv(t, 100*time.Millisecond); got != nil {
		t.Fatalf("c got a frame for a: %x", got)
	}

	// A frame of 1500 bytes of payload passes whole.
	big := frame(b.hw, a.hw, string(bytes.Repeat([]byte{'x'}, MTU)))
	a.send(t, big)
	if got := b.recv(t, 2*time.Second); !bytes.Equal(got, big) {
		t.Fatalf("b got %d bytes, want %d", len(got), len(big))
	}

	// An address on no port goes nowhere; so does a runt.
	a.send(t, frame(NewMAC(), a.hw, "anyone"))
	a.send(t, []byte{1, 2, 3})
	for name, n := range map[string]*nicEnd{"b": b, "c": c} {
		if got := n.recv(t, 100*time.Millisecond); got != nil {
			t.Fatalf("%s got %x", name, got)
		}
	}
}

// A machine cannot send from another's address: it would take that
// machine's frames on a learning switch.
func TestSwitchDropsSpoofedSource(t *testing.T) {
	s, err := NewSwitch(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b, c := openNIC(t, s), openNIC(t, s), openNIC(t, s)
	c.send(t, frame(broadcast, a.hw, "I am a"))
	c.send(t, frame(b.hw, a.hw, "from a, honest"))
	if got := b.recv(t, 200*time.Millisecond); got != nil {
		t.Fatalf("b got a spoofed frame: %x", got)
	}
	if s.Spoofed() != 2 {
		t.Errorf("spoofed count %d, want 2", s.Spoofed())
	}
	// a still gets its frames.
	f := frame(a.hw, b.hw, "for the real a")
	b.send(t, f)
	if got := a.recv(t, 2*time.Second); !bytes.Equal(got, f) {
		t.Fatalf("a got %x, want %x", got, f)
	}
	// One address, one port.
	if _, _, err := s.OpenNIC(a.hw); err == nil {
		t.Error("a second port opened with a's address")
	}
	if _, _, err := s.OpenNIC(broadcast); err == nil {
		t.Error("a port opened with a broadcast address")
	}
}

func TestSwitchForgetsADetachedPort(t *testing.T) {
	s, err := NewSwitch(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := openNIC(t, s), openNIC(t, s)
	b.detach()
	a.send(t, frame(b.hw, a.hw, "still there?"))
	a.send(t, frame(broadcast, a.hw, "anyone?"))
	if got := b.recv(t, 100*time.Millisecond); got != nil {
		t.Fatalf("a detached port got %x", got)
	}
	// Its address is free again: the machine may come back.
	f, detach, err := s.OpenNIC(b.hw)
	if err != nil {
		t.Fatalf("reopen %s: %v", b.hw, err)
	}
	f.Close()
	detach()
}

// A NIC that does not read must not hold up the switch: its frames are
// dropped once its queue and socket are full, and the others still flow.
func TestSwitchDropsForAStuckPort(t *testing.T) {
	s, err := NewSwitch(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b, stuck := openNIC(t, s), openNIC(t, s), openNIC(t, s)
	ma, mb, ms := a.hw, b.hw, stuck.hw
	payload := string(bytes.Repeat([]byte{'y'}, 1400))
	for i := 0; i < 4*portQueue+2000 && s.Dropped() == 0; i++ {
		a.SetWriteDeadline(time.Now().Add(5 * time.Second))
		a.send(t, frame(ms, ma, payload))
	}
	if s.Dropped() == 0 {
		t.Fatal("nothing was dropped for the port that does not read")
	}
	f := frame(mb, ma, "through")
	a.send(t, f)
	for {
		got := b.recv(t, 5*time.Second)
		if got == nil {
			t.Fatal("b got nothing while another port was stuck")
		}
		if bytes.Equal(got, f) {
			break
		}
	}
}

func TestSwitchLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := NewSwitch(nil)
	if err != nil {
		t.Fatal(err)
	}
	var ends []*nicEnd
	for i := 0; i < 4; i++ {
		ends = append(ends, openNIC(t, s))
	}
	ends[0].detach() // one goes before the switch, the rest with it
	ends[1].send(t, frame(broadcast, ends[1].hw, "x"))
	s.Close()
	if _, _, err := s.OpenNIC(NewMAC()); err == nil {
		t.Error("a closed switch opened a NIC")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The host's stack answers ARP and carries UDP for a machine on the
// switch: what a gateway's WireGuard socket needs. The machine here is a
// second user-space stack on a NIC's socket, as a guest kernel would be.
func TestHostStackCarriesUDP(t *testing.T) {
	s, err := NewSwitch(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	host, err := s.ListenUDP(0)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	hostPort := host.LocalAddr().(*net.UDPAddr).Port

	guestAddr := netip.MustParseAddr("198.18.0.7")
	guest := guestStack(t, openNIC(t, s), guestAddr)
	gc, err := gonet.DialUDP(guest, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(guestAddr.As4()), Port: 5000}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()

	to := &net.UDPAddr{IP: HostAddress.AsSlice(), Port: hostPort}
	gc.SetDeadline(time.Now().Add(10 * time.Second))
	host.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := gc.WriteTo([]byte("handshake"), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := host.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "handshake" || from.(*net.UDPAddr).AddrPort() != netip.AddrPortFrom(guestAddr, 5000) {
		t.Fatalf("host got %q from %v", buf[:n], from)
	}
	if _, err := host.WriteTo([]byte("response"), from); err != nil {
		t.Fatal(err)
	}
	n, _, err = gc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "response" {
		t.Fatalf("guest got %q, %v", buf[:n], err)
	}
}

// guestStack is a user-space IPv4 stack whose NIC is n, at addr.
func guestStack(t *testing.T, n *nicEnd, addr netip.Addr) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol},
	})
	link := channel.New(64, MTU, tcpip.LinkAddress(n.hw))
	if err := s.CreateNIC(1, ethernet.New(link)); err != nil {
		t.Fatal(err)
	}
	a := tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(addr.As4()), PrefixLen: DefaultPrefix.Bits()}
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: a}, stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: a.Subnet(), NIC: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			pkt := link.ReadContext(ctx)
			if pkt == nil {
				return
			}
			v := pkt.ToView()
			pkt.DecRef()
			n.Write(v.AsSlice())
			v.Release()
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			k, err := n.Read(buf)
			if err != nil {
				return
			}
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(buf[:k])})
			link.InjectInbound(0, pkt)
			pkt.DecRef()
		}
	}()
	t.Cleanup(func() { cancel(); n.Close(); s.Close(); s.Wait() })
	return s
}

// BenchmarkSwitch: full-size frames from one NIC to another through the
// switch. The sender writes b.N frames as fast as its socket takes them;
// the rate is what arrives (SetBytes: one frame), and %dropped what the
// switch dropped at the receiver's full queue.
func BenchmarkSwitch(b *testing.B) {
	s, err := NewSwitch(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	open := func(hw net.HardwareAddr) *net.UnixConn {
		f, detach, err := s.OpenNIC(hw)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(detach)
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	mtx, mrx := NewMAC(), NewMAC()
	tx, rx := open(mtx), open(mrx)
	f := frame(mrx, mtx, string(bytes.Repeat([]byte{'z'}, MTU)))
	b.SetBytes(int64(len(f)))
	dropped := s.Dropped()
	b.ResetTimer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for n := 0; uint64(n)+s.Dropped()-dropped < uint64(b.N); n++ {
			rx.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := rx.Read(buf); err != nil {
				return
			}
		}
	}()
	for range b.N {
		tx.Write(f)
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(s.Dropped()-dropped)/float64(b.N)*100, "%dropped")
}
