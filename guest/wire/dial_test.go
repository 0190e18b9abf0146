package wire

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
)

func (f *fakeAgent) Dial(ctx context.Context, proto string, port int) (net.Conn, error) {
	if port == 1 {
		return nil, Errorf(KindNotFound, "connection refused")
	}
	return net.Dial(proto, fmt.Sprintf("127.0.0.1:%d", port))
}

// TestDialTCPHalfClose: the client's half-close reaches the server, whose
// reply still comes back.
func TestDialTCPHalfClose(t *testing.T) {
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
		b, _ := io.ReadAll(c) // until the client's half-close
		fmt.Fprintf(c, "got %d bytes", len(b))
		c.Close()
	}()
	c, _ := pair(t, newFakeAgent())
	conn, err := c.Dial(ctx(t), "tcp", ln.Addr().(*net.TCPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("hello"))
	conn.(interface{ CloseWrite() error }).CloseWrite()
	reply, err := io.ReadAll(conn)
	if err != nil || string(reply) != "got 5 bytes" {
		t.Fatalf("reply %q %v", reply, err)
	}
	if _, err := c.Dial(ctx(t), "tcp", 1); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
}

func TestDialUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	c, _ := pair(t, newFakeAgent())
	conn, err := c.Dial(ctx(t), "udp", pc.LocalAddr().(*net.UDPAddr).Port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, msg := range []string{"one", "two"} {
		if err := WriteDatagram(conn, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := ReadDatagram(conn, buf)
		if err != nil || string(buf[:n]) != "echo:"+msg {
			t.Fatalf("got %q %v", buf[:n], err)
		}
	}
}
