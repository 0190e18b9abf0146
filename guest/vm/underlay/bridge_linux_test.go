package underlay

import (
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/prereq"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestBridgeAttachesVethAndTap(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "needs root")
	}
	b, err := NewBridge()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The daemon's own namespace must not see the bridge.
	if _, err := netlink.LinkByName(bridgeName); err == nil {
		t.Fatal("bridge leaked into the host namespace")
	}

	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	mac := NewMAC()
	detach, err := b.AttachVeth(cmd.Process.Pid, mac)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.GetFromPid(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	found := func() bool {
		links, err := h.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if l.Attrs().HardwareAddr.String() == mac.String() {
				return true
			}
		}
		return false
	}
	if !found() {
		t.Fatal("machine namespace has no link with the given MAC")
	}
	detach()
	if found() {
		t.Fatal("link still there after detach")
	}

	tap, remove, err := b.OpenTap()
	if err != nil {
		t.Fatal(err)
	}
	links, _ := b.h.LinkList()
	var taps int
	for _, l := range links {
		if l.Type() == "tuntap" && l.Attrs().MasterIndex == b.br.Attrs().Index {
			taps++
		}
	}
	tap.Close()
	remove()
	if taps != 1 {
		t.Fatalf("want 1 tap on the bridge, got %d", taps)
	}
}

// TestBridgeListenUDP: the host's underlay socket is bound to
// HostAddress, which exists only inside the underlay's namespace.
func TestBridgeListenUDP(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "needs root")
	}
	b, err := NewBridge()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, err := b.ListenUDP(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.UDPAddr).IP.String(); got != HostAddress.String() {
		t.Fatalf("bound to %s, want %s", got, HostAddress)
	}
	// The same address in the host's namespace is not there to bind.
	if h, err := net.ListenUDP("udp4", &net.UDPAddr{IP: HostAddress.AsSlice()}); err == nil {
		h.Close()
		t.Fatal("host address bound in the daemon's own namespace")
	}
	d, err := b.ListenUDP(0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.WriteTo([]byte("x"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadFrom(make([]byte, 8)); err != nil {
		t.Fatalf("underlay datagram: %v", err)
	}
	b.Close()
	if _, err := b.ListenUDP(0); err == nil {
		t.Fatal("listen after close")
	}
}
