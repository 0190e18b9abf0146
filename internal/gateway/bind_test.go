package gateway

import (
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/arcavm/arca/guest/vm/underlay"
)

// TestBindClosedReadsErrClosed: once the bind is closed, its receive
// function says net.ErrClosed, the only error that ends wireguard-go's
// receive loop at once (others it retries ten times, a third of a second
// apart, which held every Close 3.3 s). Over a kernel UDP socket and over
// the switch's host stack (gVisor), whose closed socket says otherwise.
func TestBindClosedReadsErrClosed(t *testing.T) {
	sw, err := underlay.NewSwitch(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	for _, tc := range []struct {
		name   string
		listen func(uint16) (net.PacketConn, error)
	}{
		{"kernel", func(uint16) (net.PacketConn, error) { return net.ListenPacket("udp4", "127.0.0.1:0") }},
		{"switch", sw.ListenUDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &udpBind{listen: tc.listen}
			fns, _, err := b.Open(0)
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan error, 1)
			go func() {
				bufs, sizes, eps := [][]byte{make([]byte, 1500)}, []int{0}, []conn.Endpoint{nil}
				_, err := fns[0](bufs, sizes, eps)
				got <- err
			}()
			time.Sleep(50 * time.Millisecond) // the reader blocked in ReadFrom, as wireguard-go's is
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-got:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("receive after Close: %v, want net.ErrClosed", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("receive still blocked a minute after Close")
			}
		})
	}
}
