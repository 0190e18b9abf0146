package portmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/arcavm/arca/guest/wire"
)

func TestBindings(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, c := range []struct {
		name    string
		cfg     *container.Config
		hc      *container.HostConfig
		want    []Binding
		wantErr string
	}{
		{name: "fixed", hc: &container.HostConfig{PortBindings: network.PortMap{
			network.MustParsePort("80/tcp"): {{HostIP: lo, HostPort: "8080"}},
		}}, want: []Binding{{Port: network.MustParsePort("80/tcp"), HostIP: lo, HostPort: 8080, HostPortEnd: 8080}}},
		{name: "free", hc: &container.HostConfig{PortBindings: network.PortMap{
			network.MustParsePort("53/udp"): {{HostPort: ""}},
		}}, want: []Binding{{Port: network.MustParsePort("53/udp")}}},
		{name: "range", hc: &container.HostConfig{PortBindings: network.PortMap{
			network.MustParsePort("80/tcp"): {{HostPort: "9000-9010"}},
		}}, want: []Binding{{Port: network.MustParsePort("80/tcp"), HostPort: 9000, HostPortEnd: 9010}}},
		{name: "publish all", cfg: &container.Config{ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}, network.MustParsePort("443/tcp"): {}}},
			hc: &container.HostConfig{PublishAllPorts: true, PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}},
			want: []Binding{
				{Port: network.MustParsePort("80/tcp"), HostPort: 8080, HostPortEnd: 8080},
				{Port: network.MustParsePort("443/tcp")},
			}},
		{name: "bad host port", hc: &container.HostConfig{PortBindings: network.PortMap{
			network.MustParsePort("80/tcp"): {{HostPort: "http"}},
		}}, wantErr: "invalid hostPort: http"},
		{name: "reversed range", hc: &container.HostConfig{PortBindings: network.PortMap{
			network.MustParsePort("80/tcp"): {{HostPort: "9010-9000"}},
		}}, wantErr: "invalid hostPort"},
		{name: "sctp", hc: &container.HostConfig{PortBindings: network.PortMap{
			network.MustParsePort("80/sctp"): {{}},
		}}, wantErr: "sctp ports are not supported"},
	} {
		got, err := Bindings(c.cfg, c.hc)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v %v, want %v", c.name, got, err, c.want)
		}
	}
}

// loopbackDialer stands in for the agent: it dials the "container port"
// on the host's loopback at a port offset.
func loopbackDialer(target map[int]string) Dialer {
	return func(ctx context.Context, proto string, port int) (net.Conn, error) {
		c, err := net.Dial(proto, target[port])
		if err != nil || proto == "tcp" {
			return c, err
		}
		// UDP flows are framed datagrams over a stream, as from the agent.
		a, b := net.Pipe()
		go wire.PipeDatagrams(b, c, time.Minute)
		return a, nil
	}
}

func TestPublishTCPAndUDP(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { b, _ := io.ReadAll(c); fmt.Fprintf(c, "tcp:%s", b); c.Close() }()
		}
	}()
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	defer pc.Close()
	go func() {
		buf := make([]byte, 100)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("udp:"), buf[:n]...), from)
		}
	}()
	lo := netip.MustParseAddr("127.0.0.1")
	pub, err := Publish([]Binding{
		{Port: network.MustParsePort("80/tcp"), HostIP: lo},
		{Port: network.MustParsePort("53/udp"), HostIP: lo},
	}, loopbackDialer(map[int]string{80: ln.Addr().String(), 53: pc.LocalAddr().String()}))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	tcpPort := pub.Ports[network.MustParsePort("80/tcp")][0].HostPort
	udpPort := pub.Ports[network.MustParsePort("53/udp")][0].HostPort
	if tcpPort == "0" || udpPort == "0" {
		t.Fatalf("ports not picked: %v", pub.Ports)
	}

	c, err := net.Dial("tcp", "127.0.0.1:"+tcpPort)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hi"))
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "tcp:hi" {
		t.Errorf("tcp through the published port: %q", b)
	}

	u, err := net.Dial("udp", "127.0.0.1:"+udpPort)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	u.Write([]byte("q"))
	buf := make([]byte, 100)
	n, err := u.Read(buf)
	if err != nil || string(buf[:n]) != "udp:q" {
		t.Errorf("udp through the published port: %q %v", buf[:n], err)
	}
}

func TestPublishTakenPortBindsNothing(t *testing.T) {
	taken, _ := net.Listen("tcp4", "127.0.0.1:0")
	defer taken.Close()
	port := uint16(taken.Addr().(*net.TCPAddr).Port)
	lo := netip.MustParseAddr("127.0.0.1")
	free, _ := net.Listen("tcp4", "127.0.0.1:0")
	freePort := uint16(free.Addr().(*net.TCPAddr).Port)
	free.Close()
	_, err := Publish([]Binding{
		{Port: network.MustParsePort("81/tcp"), HostIP: lo, HostPort: freePort, HostPortEnd: freePort},
		{Port: network.MustParsePort("80/tcp"), HostIP: lo, HostPort: port, HostPortEnd: port},
	}, loopbackDialer(nil))
	if !errors.Is(err, ErrAllocated) || !strings.Contains(err.Error(), fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", port)) {
		t.Fatalf("err %v", err)
	}
	// The first binding was given back.
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", freePort))
	if err != nil {
		t.Fatalf("port %d still held after a failed publish: %v", freePort, err)
	}
	l.Close()
}

// A connection accepted before the server inside listens is held until
// it does, not reset; one to a port nothing ever serves ends once the
// ports close.
func TestPublishHoldsEarlyConnection(t *testing.T) {
	// Reserve an address, then free it: the server comes up there late.
	reserve, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := reserve.Addr().String()
	reserve.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	pub, err := Publish([]Binding{{Port: network.MustParsePort("80/tcp"), HostIP: lo}}, loopbackDialer(map[int]string{80: addr}))
	if err != nil {
		t.Fatal(err)
	}
	port := pub.Ports[network.MustParsePort("80/tcp")][0].HostPort
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("early"))
	c.(*net.TCPConn).CloseWrite()
	// Whatever the client sent while held is delivered once the server is up.
	time.Sleep(300 * time.Millisecond)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the address was taken meanwhile: %v", err)
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(s)
		fmt.Fprintf(s, "late:%s", b)
		s.Close()
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "late:early" {
		t.Fatalf("held connection got %q", b)
	}

	// Nothing will listen on this one: Close ends the hold.
	pub2, err := Publish([]Binding{{Port: network.MustParsePort("81/tcp"), HostIP: lo}}, loopbackDialer(map[int]string{81: addr + "0"}))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := net.Dial("tcp", "127.0.0.1:"+pub2.Ports[network.MustParsePort("81/tcp")][0].HostPort)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	pub2.Close()
	pub.Close()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c2); err != nil || time.Since(start) > 3*time.Second {
		t.Fatalf("held connection after Close: %v after %v", err, time.Since(start))
	}
}
