package agent

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun/netstack"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/internal/prereq"
)

// wgNode is a wireguard-go device on a userspace network stack.
type wgNode struct {
	dev  *device.Device
	net  *netstack.Net
	key  wgtypes.Key
	port int
	ip   netip.Addr
}

func newWGNode(t *testing.T, ip netip.Addr) *wgNode {
	t.Helper()
	tdev, tnet, err := netstack.CreateNetTUN([]netip.Addr{ip}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := wgtypes.GeneratePrivateKey()
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, ip.String()+": "))
	if err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=0\n", hex.EncodeToString(key[:]))); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	n := &wgNode{dev: dev, net: tnet, key: key, ip: ip}
	n.port = n.listenPort(t)
	return n
}

func (n *wgNode) listenPort(t *testing.T) int {
	state, err := n.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	var port int
	for _, l := range strings.Split(state, "\n") {
		if v, ok := strings.CutPrefix(l, "listen_port="); ok {
			fmt.Sscan(v, &port)
		}
	}
	return port
}

func (n *wgNode) peer() wire.Peer {
	return wire.Peer{PublicKey: n.key.PublicKey().String(), Endpoint: fmt.Sprintf("127.0.0.1:%d", n.port), AllowedIPs: []string{n.ip.String() + "/32"}}
}

// lastHandshake is the device's last handshake with the peer of key.
func (n *wgNode) lastHandshake(key wgtypes.Key) string {
	state, _ := n.dev.IpcGet()
	mine := false
	for _, l := range strings.Split(state, "\n") {
		if v, ok := strings.CutPrefix(l, "public_key="); ok {
			mine = v == hex.EncodeToString(key[:])
		}
		if v, ok := strings.CutPrefix(l, "last_handshake_time_sec="); ok && mine {
			return v
		}
	}
	return ""
}

// TestWireGuardPeersKeepSessions: the agent configures its device through
// wgctrl, as on a machine without the kernel module; another member's
// join or leave leaves an established session as it was (replace_peers
// dropped it, and the member then sent into the void for ~25 s).
func TestWireGuardPeersKeepSessions(t *testing.T) {
	prereq.Root(t, "the UAPI socket lives in /var/run/wireguard")
	a := newWGNode(t, netip.MustParseAddr("10.97.0.2"))
	b := newWGNode(t, netip.MustParseAddr("10.97.0.3"))
	name := fmt.Sprintf("arcat%d", os.Getpid()%100000)
	uf, err := ipc.UAPIOpen(name)
	if err != nil {
		t.Fatal(err)
	}
	ul, err := ipc.UAPIListen(name, uf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ul.Close() })
	go func() {
		for {
			c, err := ul.Accept()
			if err != nil {
				return
			}
			go a.dev.IpcHandle(c)
		}
	}()
	wg, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer wg.Close()

	ifc := func(peers ...wire.Peer) wire.Interface {
		return wire.Interface{Name: name, PrivateKey: a.key.String(), ListenPort: a.port, Peers: peers}
	}
	if err := configureWireGuard(wg, ifc(b.peer())); err != nil {
		t.Fatal(err)
	}
	aPub := a.key.PublicKey()
	if err := b.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=%s/32\n",
		hex.EncodeToString(aPub[:]), a.port, a.ip)); err != nil {
		t.Fatal(err)
	}
	// A round trip from b to a makes the session.
	ln, err := a.net.ListenTCP(&net.TCPAddr{Port: 80})
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
	c, err := b.net.DialContext(ctx, "tcp", a.ip.String()+":80")
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
	before := a.lastHandshake(b.key.PublicKey())
	if before == "" || before == "0" {
		t.Fatalf("no session with b: handshake %q", before)
	}
	other, _ := wgtypes.GeneratePrivateKey()
	joined := wire.Peer{PublicKey: other.PublicKey().String(), Endpoint: "127.0.0.1:9", AllowedIPs: []string{"10.97.0.4/32"}}
	for _, peers := range [][]wire.Peer{{b.peer(), joined}, {joined, b.peer()}, {b.peer()}} {
		if err := configureWireGuard(wg, ifc(peers...)); err != nil {
			t.Fatal(err)
		}
		if got := a.lastHandshake(b.key.PublicKey()); got != before {
			t.Fatalf("b's session after the peers became %d: handshake %s, was %s", len(peers), got, before)
		}
	}
	dev, err := wg.Device(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(dev.Peers) != 1 || dev.Peers[0].PublicKey != b.key.PublicKey() {
		t.Fatalf("peers after the leave: %+v", dev.Peers)
	}
	if _, err := c.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("the connection after the joins and leaves: %v", err)
	}
}

func TestWGConfigDiff(t *testing.T) {
	key, _ := wgtypes.GeneratePrivateKey()
	p1, _ := wgtypes.GeneratePrivateKey()
	p2, _ := wgtypes.GeneratePrivateKey()
	ep := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 51820}
	_, n1, _ := net.ParseCIDR("10.1.0.2/32")
	have := &wgtypes.Device{PrivateKey: key, ListenPort: 51820, Peers: []wgtypes.Peer{
		{PublicKey: p1.PublicKey(), Endpoint: ep, AllowedIPs: []net.IPNet{*n1}},
		{PublicKey: p2.PublicKey(), Endpoint: ep, AllowedIPs: []net.IPNet{*n1}},
	}}
	same := wire.Peer{PublicKey: p1.PublicKey().String(), Endpoint: "10.0.0.1:51820", AllowedIPs: []string{"10.1.0.2/32"}}
	moved := same
	moved.Endpoint = "10.0.0.9:51820"
	for _, tc := range []struct {
		name             string
		ifc              wire.Interface
		key, port        bool
		set, remove      int
		wantErrSubstring string
	}{
		{name: "unchanged but one gone", ifc: wire.Interface{PrivateKey: key.String(), ListenPort: 51820, Peers: []wire.Peer{same}}, remove: 1},
		{name: "moved endpoint", ifc: wire.Interface{PrivateKey: key.String(), ListenPort: 51820, Peers: []wire.Peer{moved}}, set: 1, remove: 1},
		{name: "new port", ifc: wire.Interface{PrivateKey: key.String(), ListenPort: 1, Peers: []wire.Peer{same}}, port: true, remove: 1},
		{name: "new key", ifc: wire.Interface{PrivateKey: p2.String(), ListenPort: 51820}, key: true, remove: 2},
		{name: "bad key", ifc: wire.Interface{PrivateKey: "x"}, wantErrSubstring: "private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := wgConfig(have, tc.ifc)
			if tc.wantErrSubstring != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstring) {
					t.Fatalf("err %v, want %q", err, tc.wantErrSubstring)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (c.PrivateKey != nil) != tc.key || (c.ListenPort != nil) != tc.port || c.ReplacePeers {
				t.Fatalf("key %v port %v replace %v", c.PrivateKey != nil, c.ListenPort != nil, c.ReplacePeers)
			}
			set, remove := 0, 0
			for _, p := range c.Peers {
				if p.Remove {
					remove++
				} else {
					set++
				}
			}
			if set != tc.set || remove != tc.remove {
				t.Fatalf("set %d remove %d, want %d %d", set, remove, tc.set, tc.remove)
			}
		})
	}
}
