package qemu

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/underlay"
	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/internal/gateway"
	"github.com/arcavm/arca/internal/portmap"
)

// TestSwitchNetwork boots two machines whose NICs are on the daemon's
// user-space switch (the code the vz driver uses on a Mac), with a
// network's gateway on the switch's host stack, and configures them as a
// network actor would: a WireGuard mesh over the underlay, names in the
// agent's DNS. Then one reaches the other by name, and the host's
// loopback as host.docker.internal through the gateway; a stream of
// bytes between them gives the throughput. On the amd64 kit (microvm,
// virtio-mmio) and, when there, the arm64 kit (virt, virtio-pci), whose
// NIC is what vz gives a guest.
func TestSwitchNetwork(t *testing.T) {
	t.Run("amd64", func(t *testing.T) {
		kit := testKit(t)
		root := t.TempDir()
		d := newDriver(t, kit, root)
		checkNetwork(t, d, root, newImage(t), underlayOf(t, d))
	})
	t.Run("arm64", func(t *testing.T) {
		kit, busybox := arm64Kit(t)
		root := t.TempDir()
		d, err := New(context.Background(), Config{Kit: kit.Dir, Agent: arm64Agent(t, root), Root: root, Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		checkNetwork(t, d, root, arm64Image(t, busybox), underlayOf(t, d))
	})
}

// underlayOf puts d's machines on a new switch, or on a new bridge when
// ARCA_TEST_UNDERLAY=bridge (to compare the two), and returns how a
// gateway listens on it.
func underlayOf(t *testing.T, d *Driver) func(uint16) (net.PacketConn, error) {
	t.Helper()
	if os.Getenv("ARCA_TEST_UNDERLAY") == "bridge" {
		b, err := underlay.NewBridge()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		d.UseUnderlay(b)
		return b.ListenUDP
	}
	s, err := underlay.NewSwitch(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		t.Logf("switch: %d frames dropped at full queues", s.Dropped())
		// Each port takes frames from its machine's address only; a
		// restored machine must send none with its template's.
		if n := s.Spoofed(); n > 0 {
			t.Errorf("switch: %d frames from an address not their port's", n)
		}
	})
	d.UseSwitch(s)
	return s.ListenUDP
}

// arm64Agent cross-builds the agent for arm64 into dir.
func arm64Agent(t *testing.T, dir string) string {
	t.Helper()
	agent := filepath.Join(dir, "arca-agent-arm64")
	build := exec.Command("go", "build", "-trimpath", "-o", agent, "github.com/arcavm/arca/cmd/arca-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build arm64 agent: %v\n%s", err, out)
	}
	return agent
}

// member is one machine on the test's network.
type member struct {
	name     string
	mac      string
	underlay netip.Prefix
	addr     netip.Addr
	key      wgtypes.Key
	c        *wire.Client
}

const (
	testWGPort = 51820
	testMTU    = underlay.MTU - 80
)

func checkNetwork(t *testing.T, d *Driver, root string, layers []string, listen func(uint16) (net.PacketConn, error)) {
	gwAddr := netip.MustParseAddr("10.77.0.1")
	gw, err := gateway.New(gateway.Config{Address: gwAddr, Listen: listen, MTU: testMTU, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	hostSrv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostSrv.Close()
	go http.Serve(hostSrv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "host here") }))

	pool := underlay.NewPool(underlay.DefaultPrefix)
	var members []*member
	for i, name := range []string{"a", "b"} {
		ul, err := pool.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		key, _ := wgtypes.GeneratePrivateKey()
		m := &member{name: name, mac: underlay.NewMAC().String(), underlay: ul,
			addr: netip.AddrFrom4([4]byte{10, 77, 0, byte(2 + i)}), key: key}
		spec := vm.MachineSpec{ID: name, StateDir: filepath.Join(root, "containers", name), Layers: layers,
			Hostname: name, UnderlayMAC: m.mac}
		_, m.c, _ = session(t, d, spec)
		members = append(members, m)
	}
	var gwPeers []gateway.Peer
	for _, m := range members {
		gwPeers = append(gwPeers, gateway.Peer{PublicKey: m.key.PublicKey().String(),
			Endpoint: netip.AddrPortFrom(m.underlay.Addr(), testWGPort), IP: m.addr})
	}
	if err := gw.SetPeers(gwPeers); err != nil {
		t.Fatal(err)
	}
	records := []wire.DNSRecord{{Name: "host.docker.internal", IPs: []string{gwAddr.String()}}}
	for _, m := range members {
		records = append(records, wire.DNSRecord{Name: m.name, IPs: []string{m.addr.String()}})
	}
	for _, m := range members {
		peers := []wire.Peer{{PublicKey: gw.PublicKey(), Endpoint: netip.AddrPortFrom(underlay.HostAddress, gw.Port()).String(),
			AllowedIPs: []string{"0.0.0.0/0"}}}
		for _, o := range members {
			if o != m {
				peers = append(peers, wire.Peer{PublicKey: o.key.PublicKey().String(),
					Endpoint: netip.AddrPortFrom(o.underlay.Addr(), testWGPort).String(), AllowedIPs: []string{o.addr.String() + "/32"}})
			}
		}
		cfg := wire.NetworkConfig{
			Underlay: &wire.UnderlayConfig{MAC: m.mac, Name: "arca0", Address: m.underlay.String(), MTU: underlay.MTU},
			Interfaces: []wire.Interface{{Name: "eth0", PrivateKey: m.key.String(), ListenPort: testWGPort,
				Address: m.addr.String() + "/24", MTU: testMTU, Gateway: gwAddr.String(), Peers: peers}},
			DNS: wire.DNSConfig{Records: records},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := m.c.ConfigureNetwork(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("configure %s: %v", m.name, err)
		}
	}
	a, b := members[0].c, members[1].c
	for _, m := range members {
		// What the container actor writes for a container on a network.
		if r := run(t, m.c, "resolv.conf", nil, "sh", "-c", "echo nameserver 127.0.0.11 > /etc/resolv.conf"); r.code != 0 {
			t.Fatalf("resolv.conf in %s: %+v", m.name, r)
		}
	}

	// b serves its /etc over HTTP; a fetches from it by name.
	if r := run(t, b, "httpd", nil, "httpd", "-p", "8080", "-h", "/etc"); r.code != 0 {
		t.Fatalf("httpd in b: %+v", r)
	}
	if r := run(t, a, "by name", nil, "wget", "-q", "-O", "-", "http://b:8080/passwd"); r.out != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Errorf("a fetching from b by name: %+v", r)
	}
	// b's port published on the host's loopback, as the container actor
	// publishes one (portmap over the agent session): the same path on
	// every driver and underlay.
	pub, err := portmap.Publish([]portmap.Binding{{Port: network.MustParsePort("8080/tcp"), HostIP: netip.MustParseAddr("127.0.0.1")}},
		func(ctx context.Context, proto string, port int) (net.Conn, error) { return b.Dial(ctx, proto, port) })
	if err != nil {
		t.Fatalf("publish b's 8080: %v", err)
	}
	defer pub.Close()
	if got := pub.Ports[network.MustParsePort("8080/tcp")]; len(got) != 1 {
		t.Fatalf("published: %v", pub.Ports)
	} else if body, err := httpGet("http://127.0.0.1:" + got[0].HostPort + "/passwd"); body != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Errorf("the host fetching from b's published port %s: %q, %v", got[0].HostPort, body, err)
	}
	// The host's loopback, through the network's gateway on the switch.
	port := strconv.Itoa(hostSrv.Addr().(*net.TCPAddr).Port)
	if r := run(t, a, "host", nil, "wget", "-q", "-O", "-", "http://host.docker.internal:"+port+"/"); r.out != "host here" {
		t.Errorf("a fetching from host.docker.internal: %+v", r)
	}

	// Throughput over the mesh: b counts what a sends it.
	const mib = 16
	received := make(chan result, 1)
	// busybox nc quits when the other side shuts its half down, as the
	// listener's would at once on an empty stdin: a fifo opened for
	// reading and writing never ends.
	go func() {
		received <- run(t, b, "listen", nil, "sh", "-c", "mkfifo /tmp/in && nc -l -p 9000 0<>/tmp/in | wc -c")
	}()
	time.Sleep(time.Second) // nc listening
	start := time.Now()
	r := run(t, a, "send", nil, "sh", "-c", fmt.Sprintf("head -c %d /dev/zero | nc b 9000", mib<<20))
	took := time.Since(start)
	if r.code != 0 {
		t.Fatalf("nc from a: %+v", r)
	}
	var got string
	select {
	case r := <-received:
		got = strings.TrimSpace(r.out)
	case <-time.After(30 * time.Second):
	}
	if got != strconv.Itoa(mib<<20) {
		t.Errorf("b received %q bytes, want %d", got, mib<<20)
	}
	t.Logf("%d MiB from a to b over WireGuard on the %s: %s, %.1f MB/s", mib, underlayKind(), took.Round(time.Millisecond),
		float64(mib<<20)/took.Seconds()/1e6)
}

func underlayKind() string {
	if os.Getenv("ARCA_TEST_UNDERLAY") == "bridge" {
		return "bridge"
	}
	return "switch"
}

// httpGet fetches url from the host, within 30 s (TCG guests are slow).
func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}
