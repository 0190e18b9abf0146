package underlay

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestBridgeAttachesVethAndTap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
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
