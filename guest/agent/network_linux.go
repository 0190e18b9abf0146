package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/arcavm/arca/guest/wire"
)

// network is the machine's network plumbing: the underlay link, one
// WireGuard device per Docker network, and the DNS server. It converges on
// whatever configuration the host sent last. The underlay link stays in
// the agent's namespace; the WireGuard interfaces and the resolver are in
// the container's (ns), with their UDP sockets left behind in the agent's.
type network struct {
	ns *netNS
	h  *netlink.Handle // netlink in the container's namespace

	mu   sync.Mutex
	devs map[string]*wgDevice
	wg   *wgctrl.Client
	dns  *dnsServer
	// devDir is the machine's /dev, opened before the agent pivoted away
	// from it: new TUN devices are cloned from its net/tun.
	devDir int
}

// wgDevice is one WireGuard interface. Without the kernel module it is
// wireguard-go running in the agent, with its UAPI socket where wgctrl
// looks for it.
type wgDevice struct {
	name string
	user *device.Device // nil for a kernel device
	uapi net.Listener
}

func (d *wgDevice) close(h *netlink.Handle) {
	if d.uapi != nil {
		d.uapi.Close()
	}
	if d.user != nil {
		d.user.Close() // also removes the TUN link
		return
	}
	if l, err := h.LinkByName(d.name); err == nil {
		_ = h.LinkDel(l)
	}
}

// ConfigureNetwork implements wire.Handler.
func (a *Agent) ConfigureNetwork(ctx context.Context, cfg wire.NetworkConfig) error {
	n := a.net
	if n == nil {
		return wire.Errorf(wire.KindInvalid, "configure network: this machine has no network support")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(cfg.Interfaces) > 0 && cfg.Underlay == nil {
		return wire.Errorf(wire.KindInvalid, "configure network: interfaces without an underlay")
	}
	if cfg.Underlay != nil {
		// In a VM the NIC's and WireGuard's modules come on first use.
		if err := loadModuleGroup(networkModules); err != nil {
			return fmt.Errorf("configure network: %w", err)
		}
		if err := configureUnderlay(*cfg.Underlay); err != nil {
			return fmt.Errorf("configure network: %w", err)
		}
	}
	want := map[string]bool{}
	for _, ifc := range cfg.Interfaces {
		want[ifc.Name] = true
	}
	for name, d := range n.devs {
		if !want[name] {
			d.close(n.h)
			delete(n.devs, name)
		}
	}
	for _, ifc := range cfg.Interfaces {
		if err := n.configureInterface(a, ifc); err != nil {
			return fmt.Errorf("configure network: %s: %w", ifc.Name, err)
		}
	}
	if cfg.DNS.Off {
		// Host networking: the container asks the host's resolvers.
		if n.dns != nil {
			n.dns.close()
			n.dns = nil
		}
		return nil
	}
	if n.dns == nil {
		var d *dnsServer
		err := n.ns.do(func() (err error) {
			d, err = startDNS(a.log, n.dialContainer)
			return err
		})
		if err != nil {
			return fmt.Errorf("configure network: %w", err)
		}
		n.dns = d
	}
	n.dns.setTable(newDNSTable(cfg.DNS))
	return nil
}

// dialContainer connects from the container's namespace, where its
// servers and its routes are.
func (n *network) dialContainer(ctx context.Context, proto, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.ns.do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err = d.DialContext(ctx, proto, addr)
		return err
	})
	return c, err
}

// configureUnderlay finds the driver's NIC by its address and gives it
// its name and address.
func configureUnderlay(u wire.UnderlayConfig) error {
	mac, err := net.ParseMAC(u.MAC)
	if err != nil {
		return fmt.Errorf("underlay: %w", err)
	}
	link, err := linkByMAC(mac)
	if err != nil {
		return fmt.Errorf("underlay: %w", err)
	}
	if link.Attrs().Name != u.Name {
		if err := netlink.LinkSetDown(link); err != nil {
			return fmt.Errorf("underlay: %w", err)
		}
		if err := netlink.LinkSetName(link, u.Name); err != nil {
			return fmt.Errorf("underlay: rename %s: %w", link.Attrs().Name, err)
		}
	}
	if u.MTU > 0 && link.Attrs().MTU != u.MTU {
		if err := netlink.LinkSetMTU(link, u.MTU); err != nil {
			return fmt.Errorf("underlay: mtu: %w", err)
		}
	}
	if err := setOnlyAddress(nil, link, u.Address); err != nil {
		return fmt.Errorf("underlay: %w", err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("underlay: up: %w", err)
	}
	return nil
}

func linkByMAC(mac net.HardwareAddr) (netlink.Link, error) {
	// In a VM the NIC may still be probing when the agent starts.
	deadline := time.Now().Add(5 * time.Second)
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			if l.Attrs().HardwareAddr.String() == mac.String() {
				return l, nil
			}
		}
		// A machine restored from a template: its card has the
		// template's address until it is given its own.
		if alias := nicAlias.get(); alias != nil {
			for _, l := range links {
				if l.Attrs().HardwareAddr.String() != alias.String() {
					continue
				}
				if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
					return nil, fmt.Errorf("give %s address %s: %w", l.Attrs().Name, mac, err)
				}
				return netlink.LinkByIndex(l.Attrs().Index)
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no link with address %s", mac)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setOnlyAddress makes cidr the link's one IPv4 address; h nil is the
// agent's own namespace.
func setOnlyAddress(h *netlink.Handle, link netlink.Link, cidr string) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	have, err := h.AddrList(link, unix.AF_INET)
	if err != nil {
		return err
	}
	for _, a := range have {
		if !a.Equal(*addr) {
			if err := h.AddrDel(link, &a); err != nil {
				return fmt.Errorf("remove %s: %w", a.IPNet, err)
			}
		}
	}
	if err := h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("address %s: %w", cidr, err)
	}
	return nil
}

func (n *network) configureInterface(a *Agent, ifc wire.Interface) error {
	mtu := ifc.MTU
	if mtu == 0 {
		mtu = 1420
	}
	if n.devs[ifc.Name] == nil {
		d, err := n.newDevice(ifc.Name, mtu)
		if err != nil {
			return err
		}
		n.devs[ifc.Name] = d
	}
	if n.wg == nil {
		// Made in the container's namespace, where the kernel's devices
		// are; wireguard-go's are found by their UAPI sockets anywhere.
		err := n.ns.do(func() (err error) {
			n.wg, err = wgctrl.New()
			return err
		})
		if err != nil {
			return fmt.Errorf("wgctrl: %w", err)
		}
	}
	if err := configureWireGuard(n.wg, ifc); err != nil {
		return err
	}
	link, err := n.h.LinkByName(ifc.Name)
	if err != nil {
		return err
	}
	if link.Attrs().MTU != mtu {
		if err := n.h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("mtu: %w", err)
		}
	}
	// No IPv6 on a network without it, as dockerd does: else the kernel
	// gives the link an fe80:: address nothing answers on.
	n.ns.do(func() error {
		return os.WriteFile(a.procDir+"/sys/net/ipv6/conf/"+ifc.Name+"/disable_ipv6", []byte("1"), 0)
	})
	if err := setOnlyAddress(n.h, link, ifc.Address); err != nil {
		return err
	}
	if err := n.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if ifc.Gateway != "" {
		gw := net.ParseIP(ifc.Gateway)
		if gw == nil {
			return fmt.Errorf("gateway %q is not an address", ifc.Gateway)
		}
		if err := n.h.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
	}
	return nil
}

// configureWireGuard gives the device ifc's key, port and peers, telling
// it only what changed: a peer given anew (or every peer, with
// replace_peers) loses its session, and a member whose session was dropped
// sends into the void until its own timers shake hands again (~25 s), so
// one container's join or leave must not touch the others' sessions.
// Setting the port rebinds the socket, so it too is set only when new.
func configureWireGuard(wg *wgctrl.Client, ifc wire.Interface) error {
	have, err := wg.Device(ifc.Name)
	if err != nil {
		return fmt.Errorf("wireguard %s: %w", ifc.Name, err)
	}
	wc, err := wgConfig(have, ifc)
	if err != nil {
		return err
	}
	if wc.PrivateKey == nil && wc.ListenPort == nil && len(wc.Peers) == 0 {
		return nil
	}
	if err := wg.ConfigureDevice(ifc.Name, wc); err != nil {
		return fmt.Errorf("wireguard %s: %w", ifc.Name, err)
	}
	return nil
}

// wgConfig is what turns the device have into ifc: the key and port when
// they differ, the removal of peers ifc does not name, and the peers that
// are new or whose endpoint or allowed addresses changed.
func wgConfig(have *wgtypes.Device, ifc wire.Interface) (wgtypes.Config, error) {
	key, err := wgtypes.ParseKey(ifc.PrivateKey)
	if err != nil {
		return wgtypes.Config{}, fmt.Errorf("private key: %w", err)
	}
	var c wgtypes.Config
	if have.PrivateKey != key {
		c.PrivateKey = &key
	}
	if port := ifc.ListenPort; have.ListenPort != port {
		c.ListenPort = &port
	}
	old := make(map[wgtypes.Key]wgtypes.Peer, len(have.Peers))
	for _, p := range have.Peers {
		old[p.PublicKey] = p
	}
	want := make(map[wgtypes.Key]bool, len(ifc.Peers))
	for _, p := range ifc.Peers {
		pk, err := wgtypes.ParseKey(p.PublicKey)
		if err != nil {
			return wgtypes.Config{}, fmt.Errorf("peer key: %w", err)
		}
		want[pk] = true
		ep, err := net.ResolveUDPAddr("udp", p.Endpoint)
		if err != nil {
			return wgtypes.Config{}, fmt.Errorf("peer endpoint: %w", err)
		}
		pc := wgtypes.PeerConfig{PublicKey: pk, Endpoint: ep, ReplaceAllowedIPs: true}
		for _, cidr := range p.AllowedIPs {
			_, ipn, err := net.ParseCIDR(cidr)
			if err != nil {
				return wgtypes.Config{}, fmt.Errorf("peer allowed ip: %w", err)
			}
			pc.AllowedIPs = append(pc.AllowedIPs, *ipn)
		}
		if o, ok := old[pk]; ok && samePeer(o, pc) {
			continue
		}
		c.Peers = append(c.Peers, pc)
	}
	for _, p := range have.Peers {
		if !want[p.PublicKey] {
			c.Peers = append(c.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, Remove: true})
		}
	}
	return c, nil
}

// samePeer says whether the device's peer already is what pc asks.
func samePeer(have wgtypes.Peer, pc wgtypes.PeerConfig) bool {
	if have.Endpoint == nil || have.Endpoint.String() != pc.Endpoint.String() || len(have.AllowedIPs) != len(pc.AllowedIPs) {
		return false
	}
	for i := range pc.AllowedIPs {
		if !slices.ContainsFunc(have.AllowedIPs, func(n net.IPNet) bool { return n.String() == pc.AllowedIPs[i].String() }) {
			return false
		}
	}
	return true
}

// newDevice makes a WireGuard interface in the container's namespace:
// the kernel's if it has the module, else wireguard-go on a TUN. Either
// way its UDP socket is made in the agent's namespace, on the underlay.
func (n *network) newDevice(name string, mtu int) (*wgDevice, error) {
	if l, err := n.h.LinkByName(name); err == nil {
		_ = n.h.LinkDel(l) // left by a configuration that failed half way
	}
	d, kerr := n.newKernelDevice(name, mtu)
	if kerr == nil {
		return d, nil
	}
	var t tun.Device
	err := n.ns.do(func() (err error) {
		t, err = n.openTUN(name, mtu)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("no kernel wireguard (%v), and no wireguard-go: %w", kerr, err)
	}
	t = nsTUN{Device: t, mtu: mtu}
	logger := device.NewLogger(device.LogLevelError, "wireguard "+name+": ")
	dev := device.NewDevice(t, conn.NewDefaultBind(), logger)
	uapiFile, err := ipc.UAPIOpen(name)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("uapi: %w", err)
	}
	uapi, err := ipc.UAPIListen(name, uapiFile)
	if err != nil {
		uapiFile.Close()
		dev.Close()
		return nil, fmt.Errorf("uapi: %w", err)
	}
	go func() {
		for {
			c, err := uapi.Accept()
			if err != nil {
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	if err := dev.Up(); err != nil {
		uapi.Close()
		dev.Close()
		return nil, fmt.Errorf("wireguard up: %w", err)
	}
	return &wgDevice{name: name, user: dev, uapi: uapi}, nil
}

// newKernelDevice creates a kernel WireGuard device where the agent is,
// which binds its socket there, then moves it into the container's
// namespace. It is born under a name of its own, as the agent's
// namespace may have an eth0 of its own (a VM's NIC before it is
// renamed).
func (n *network) newKernelDevice(name string, mtu int) (*wgDevice, error) {
	tmp := "wgtmp" + strconv.Itoa(os.Getpid()%1000)
	if l, err := netlink.LinkByName(tmp); err == nil {
		_ = netlink.LinkDel(l)
	}
	if err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: tmp, MTU: mtu}}); err != nil {
		return nil, err
	}
	link, err := netlink.LinkByName(tmp)
	if err == nil && n.ns != nil {
		err = netlink.LinkSetNsFd(link, n.ns.fd)
	}
	if err != nil {
		_ = netlink.LinkDel(link)
		return nil, fmt.Errorf("wireguard %s: %w", name, err)
	}
	if link, err = n.h.LinkByName(tmp); err == nil {
		err = n.h.LinkSetName(link, name)
	}
	if err != nil {
		if link != nil {
			_ = n.h.LinkDel(link)
		}
		return nil, fmt.Errorf("wireguard %s: %w", name, err)
	}
	return &wgDevice{name: name}, nil
}

// openTUN clones a TUN device from the /dev the agent kept. The device
// belongs to the namespace of the calling thread.
func (n *network) openTUN(name string, mtu int) (tun.Device, error) {
	if n.devDir < 0 {
		return nil, errors.New("no /dev/net/tun")
	}
	fd, err := unix.Openat(n.devDir, "net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun %s: %w", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	t, err := tun.CreateTUNFromFile(os.NewFile(uintptr(fd), "/dev/net/tun"), mtu)
	if err != nil {
		return nil, fmt.Errorf("tun %s: %w", name, err)
	}
	return t, nil
}

// newNetwork makes the container's network namespace and keeps /dev for
// later TUN clones (in a VM, devtmpfs makes net/tun when the tun module
// loads). Without a namespace of its own the container shares the
// agent's, underlay link included, which the log says.
func newNetwork(log *slog.Logger) *network {
	n := &network{devs: map[string]*wgDevice{}, devDir: -1}
	if fd, err := unix.Open("/dev", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		n.devDir = fd
	}
	ns, err := newNetNS()
	if err != nil {
		log.Warn("container shares the agent's network namespace", "err", err)
	}
	n.ns = ns
	// Its sockets are made on a thread in the namespace (NewHandleAt
	// would look for the current one in a /proc the agent may not have).
	var h *netlink.Handle
	if err := ns.do(func() (err error) {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	}); err != nil {
		log.Warn("no netlink in the container's namespace", "err", err)
		h = &netlink.Handle{}
	}
	n.h = h
	return n
}

// nsTUN is a TUN device in the container's namespace. wireguard-go asks
// a TUN its MTU by name from whatever thread it runs on, which is in the
// agent's namespace, where the name is unknown: the MTU it was made with
// is the answer.
type nsTUN struct {
	tun.Device
	mtu int
}

func (t nsTUN) MTU() (int, error) { return t.mtu, nil }

// netNS is the container's network namespace; nil: the agent's.
func (a *Agent) netNS() *netNS {
	if a.net == nil {
		return nil
	}
	return a.net.ns
}

// close removes every device and stops DNS.
func (n *network) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, d := range n.devs {
		d.close(n.h)
		delete(n.devs, name)
	}
	if n.wg != nil {
		n.wg.Close()
	}
	if n.dns != nil {
		n.dns.close()
	}
}

// interfaceNames lists the WireGuard devices, for tests and logs.
func (n *network) interfaceNames() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for name := range n.devs {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Dial implements wire.Handler: a published port's connection, made to
// the port on the container's loopback, where its servers are reachable
// whichever address they bound.
func (a *Agent) Dial(ctx context.Context, proto string, port int) (net.Conn, error) {
	if proto != "tcp" && proto != "udp" {
		return nil, wire.Errorf(wire.KindInvalid, "dial: protocol %q is not supported", proto)
	}
	if port <= 0 || port > 65535 {
		return nil, wire.Errorf(wire.KindInvalid, "dial: bad port %d", port)
	}
	if a.net == nil {
		return nil, wire.Errorf(wire.KindInvalid, "dial: this machine has no network support")
	}
	c, err := a.net.dialContainer(ctx, proto, net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	if err != nil {
		return nil, fmt.Errorf("dial %d/%s: %w", port, proto, err)
	}
	return c, nil
}
