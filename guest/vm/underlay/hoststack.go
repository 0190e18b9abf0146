package underlay

import (
	"context"
	"fmt"
	"net"

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

// hostStack is the host's own member of the switch: a user-space IPv4
// stack (gVisor's, as the gateways use) at HostAddress, with ARP, that
// only carries UDP: the gateways' WireGuard sockets. It is a port of the
// switch like a VM's NIC, only in process: frames pass through a channel
// link endpoint under an Ethernet one, with no socket in between.
type hostStack struct {
	stack  *stack.Stack
	link   *channel.Endpoint
	cancel context.CancelFunc
	port   *port
}

const hostNIC = 1

func newHostStack(sw *Switch) (*hostStack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol},
	})
	hw := NewMAC()
	link := channel.New(portQueue, MTU, tcpip.LinkAddress(hw))
	h := &hostStack{stack: s, link: link}
	fail := func(what string, err tcpip.Error) (*hostStack, error) {
		s.Close()
		return nil, fmt.Errorf("host stack: %s: %v", what, err)
	}
	if err := s.CreateNIC(hostNIC, ethernet.New(link)); err != nil {
		return fail("nic", err)
	}
	addr := tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(HostAddress.As4()), PrefixLen: DefaultPrefix.Bits()}
	if err := s.AddProtocolAddress(hostNIC, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr},
		stack.AddressProperties{}); err != nil {
		return fail("address", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: addr.Subnet(), NIC: hostNIC}})

	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.port = newPort(h.deliver, cancel)
	copy(h.port.hw[:], hw)
	if err := sw.attach(h.port); err != nil {
		cancel()
		s.Close()
		return nil, err
	}
	go h.sendLoop(ctx, sw)
	return h, nil
}

// deliver gives the stack a frame the switch sent its way.
func (h *hostStack) deliver(f []byte) error {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(f)})
	h.link.InjectInbound(0, pkt) // the Ethernet endpoint reads the type from the frame
	pkt.DecRef()
	return nil
}

// sendLoop puts on the switch each frame the stack sends.
func (h *hostStack) sendLoop(ctx context.Context, sw *Switch) {
	for {
		pkt := h.link.ReadContext(ctx)
		if pkt == nil {
			return
		}
		v := pkt.ToView()
		pkt.DecRef()
		f := append([]byte(nil), v.AsSlice()...)
		v.Release()
		if len(f) >= minFrame {
			sw.forward(h.port, f)
		}
	}
}

func (h *hostStack) listenUDP(port uint16) (net.PacketConn, error) {
	c, err := gonet.DialUDP(h.stack, &tcpip.FullAddress{NIC: hostNIC, Addr: tcpip.AddrFrom4(HostAddress.As4()), Port: port}, nil, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("underlay: listen udp %d: %w", port, err)
	}
	return c, nil
}

func (h *hostStack) close() {
	h.port.stop()
	h.link.Close()
	h.stack.Close()
	h.stack.Wait()
}
