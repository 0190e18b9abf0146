package gateway

import (
	"context"
	"os"
	"sync"
	"syscall"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// stackTUN is the TUN device wireguard-go sees: packets it decrypts go
// into the user-space stack, and what the stack sends comes back out.
type stackTUN struct {
	ep     *channel.Endpoint
	mtu    int
	events chan tun.Event
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

var _ tun.Device = (*stackTUN)(nil)

func newStackTUN(ep *channel.Endpoint, mtu int) *stackTUN {
	ctx, cancel := context.WithCancel(context.Background())
	t := &stackTUN{ep: ep, mtu: mtu, events: make(chan tun.Event, 1), ctx: ctx, cancel: cancel}
	t.events <- tun.EventUp
	return t
}

func (t *stackTUN) File() *os.File           { return nil }
func (t *stackTUN) MTU() (int, error)        { return t.mtu, nil }
func (t *stackTUN) Name() (string, error)    { return "arca-gw", nil }
func (t *stackTUN) Events() <-chan tun.Event { return t.events }
func (t *stackTUN) BatchSize() int           { return 1 }

// Read hands wireguard-go the stack's next outgoing packet.
func (t *stackTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	pkt := t.ep.ReadContext(t.ctx)
	if pkt == nil {
		return 0, os.ErrClosed
	}
	view := pkt.ToView()
	pkt.DecRef()
	defer view.Release()
	n, err := view.Read(bufs[0][offset:])
	if err != nil {
		return 0, err
	}
	sizes[0] = n
	return 1, nil
}

// Write gives the stack packets wireguard-go decrypted.
func (t *stackTUN) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		packet := b[offset:]
		if len(packet) == 0 {
			continue
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(packet)})
		switch packet[0] >> 4 {
		case 4:
			t.ep.InjectInbound(header.IPv4ProtocolNumber, pkt)
		case 6:
			t.ep.InjectInbound(header.IPv6ProtocolNumber, pkt)
		default:
			pkt.DecRef()
			return 0, syscall.EAFNOSUPPORT
		}
		pkt.DecRef()
	}
	return len(bufs), nil
}

func (t *stackTUN) Close() error {
	t.once.Do(func() {
		t.cancel()
		close(t.events)
	})
	return nil
}
