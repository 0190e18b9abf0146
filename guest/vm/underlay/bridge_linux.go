package underlay

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const bridgeName = "arca-ul"

// Bridge is the underlay: a bridge in a network namespace that exists only
// while the daemon holds it open. Nothing is mounted and nothing named, so
// a daemon killed with -9 leaves no namespace, bridge or link behind.
type Bridge struct {
	ns netns.NsHandle
	h  *netlink.Handle
	br netlink.Link
	// mu keeps Close from pulling the handle from under a machine that is
	// attaching or detaching as the daemon stops.
	mu     sync.RWMutex
	closed bool
}

// NewBridge makes the namespace and its bridge.
func NewBridge() (*Bridge, error) {
	ns, err := newNamespace()
	if err != nil {
		return nil, fmt.Errorf("underlay: %w", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("underlay: netlink: %w", err)
	}
	b := &Bridge{ns: ns, h: h}
	if err := b.setup(); err != nil {
		b.Close()
		return nil, fmt.Errorf("underlay: %w", err)
	}
	return b, nil
}

// newNamespace creates a network namespace on a thread of its own and
// returns a handle to it. The thread is never unlocked, so Go ends it
// rather than reuse a thread that sits in the wrong namespace.
func newNamespace() (netns.NsHandle, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		ns, err := netns.Get()
		ch <- result{ns: ns, err: err}
	}()
	r := <-ch
	return r.ns, r.err
}

func (b *Bridge) setup() error {
	lo, err := b.h.LinkByName("lo")
	if err == nil {
		err = b.h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName, MTU: MTU}}
	if err := b.h.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge: %w", err)
	}
	link, err := b.h.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("find bridge: %w", err)
	}
	if err := b.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("bridge up: %w", err)
	}
	// The host's own address on the underlay, where the networks'
	// gateways listen.
	host := &netlink.Addr{IPNet: &net.IPNet{IP: HostAddress.AsSlice(), Mask: net.CIDRMask(DefaultPrefix.Bits(), 32)}}
	if err := b.h.AddrAdd(link, host); err != nil {
		return fmt.Errorf("bridge address: %w", err)
	}
	b.br = link
	return nil
}

// ListenUDP opens a UDP socket on the host's underlay address. The socket
// is made on a thread moved into the underlay and then thrown away; it
// stays in the underlay's namespace wherever it is used from.
func (b *Bridge) ListenUDP(port uint16) (net.PacketConn, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, errors.New("underlay is closed")
	}
	var c *net.UDPConn
	err := b.inNamespace(func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: HostAddress.AsSlice(), Port: int(port)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("underlay: %w", err)
	}
	return c, nil
}

// inNamespace runs fn on a thread moved into the underlay's namespace,
// which is then thrown away: what fn creates (sockets, taps) belongs to
// the underlay, and no other goroutine ever runs there.
func (b *Bridge) inNamespace(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(b.ns); err != nil {
			ch <- fmt.Errorf("enter underlay: %w", err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// Close drops the namespace; the kernel removes its links with it.
func (b *Bridge) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	if b.h != nil {
		b.h.Close()
	}
	b.ns.Close()
}

// AttachVeth gives the network namespace of process pid a link to the
// bridge whose hardware address is mac (the agent finds it by that). The
// returned function removes the link; it also goes when either namespace
// does.
func (b *Bridge) AttachVeth(pid int, mac net.HardwareAddr) (detach func(), err error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, errors.New("underlay is closed")
	}
	suffix := randomSuffix()
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: "ul" + suffix, MTU: MTU, MasterIndex: b.br.Attrs().Index},
		PeerName:         "ug" + suffix,
		PeerHardwareAddr: mac,
	}
	if err := b.h.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("underlay veth: %w", err)
	}
	del := func() {
		if l, err := b.h.LinkByName(veth.Name); err == nil {
			_ = b.h.LinkDel(l)
		}
	}
	detach = func() {
		b.mu.RLock()
		defer b.mu.RUnlock()
		if !b.closed {
			del()
		}
	}
	fail := func(err error) (func(), error) {
		del()
		return nil, fmt.Errorf("underlay veth: %w", err)
	}
	host, err := b.h.LinkByName(veth.Name)
	if err != nil {
		return fail(err)
	}
	if err := b.h.LinkSetUp(host); err != nil {
		return fail(err)
	}
	peer, err := b.h.LinkByName(veth.PeerName)
	if err != nil {
		return fail(err)
	}
	if err := b.h.LinkSetNsPid(peer, pid); err != nil {
		return fail(fmt.Errorf("move into machine %d: %w", pid, err))
	}
	return detach, nil
}

// OpenTap creates a tap device on the bridge, opened for a VM's NIC, and
// returns its file and a function that removes it. A tap is created in the
// namespace of the thread that opens /dev/net/tun, so that happens on a
// thread moved into the underlay and then thrown away.
func (b *Bridge) OpenTap() (*os.File, func(), error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, nil, errors.New("underlay is closed")
	}
	name := "ut" + randomSuffix()
	var r struct {
		f   *os.File
		err error
	}
	r.err = b.inNamespace(func() error {
		tap := &netlink.Tuntap{
			LinkAttrs: netlink.LinkAttrs{Name: name, MTU: MTU, MasterIndex: b.br.Attrs().Index},
			Mode:      netlink.TUNTAP_MODE_TAP,
			Flags:     netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE | netlink.TUNTAP_VNET_HDR,
			Queues:    1,
		}
		if err := netlink.LinkAdd(tap); err != nil {
			return err
		}
		if len(tap.Fds) != 1 {
			for _, f := range tap.Fds {
				f.Close()
			}
			return fmt.Errorf("got %d queues", len(tap.Fds))
		}
		r.f = tap.Fds[0]
		return nil
	})
	del := func() {
		if l, err := b.h.LinkByName(name); err == nil {
			_ = b.h.LinkDel(l)
		}
	}
	remove := func() {
		b.mu.RLock()
		defer b.mu.RUnlock()
		if !b.closed {
			del()
		}
	}
	if r.err == nil {
		if l, err := b.h.LinkByName(name); err != nil {
			r.err = err
		} else {
			r.err = b.h.LinkSetUp(l)
		}
	}
	if r.err != nil {
		if r.f != nil {
			r.f.Close()
		}
		del()
		return nil, nil, fmt.Errorf("underlay tap: %w", r.err)
	}
	return r.f, remove, nil
}

func randomSuffix() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) // "ul" + 10 hex: within IFNAMSIZ
}
