package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
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
// whatever configuration the host sent last.
type network struct {
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

func (d *wgDevice) close() {
	if d.uapi != nil {
		d.uapi.Close()
	}
	if d.user != nil {
		d.user.Close() // also removes the TUN link
		return
	}
	if l, err := netlink.LinkByName(d.name); err == nil {
		_ = netlink.LinkDel(l)
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
			d.close()
			delete(n.devs, name)
		}
	}
	for _, ifc := range cfg.Interfaces {
		if err := n.configureInterface(a, ifc); err != nil {
			return fmt.Errorf("configure network: %s: %w", ifc.Name, err)
		}
	}
	if n.dns == nil {
		d, err := startDNS(a.log)
		if err != nil {
			return fmt.Errorf("configure network: %w", err)
		}
		n.dns = d
	}
	n.dns.setTable(newDNSTable(cfg.DNS))
	return nil
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
	if err := setOnlyAddress(link, u.Address); err != nil {
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
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no link with address %s", mac)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setOnlyAddress makes cidr the link's one IPv4 address.
func setOnlyAddress(link netlink.Link, cidr string) error {
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	have, err := netlink.AddrList(link, unix.AF_INET)
	if err != nil {
		return err
	}
	for _, h := range have {
		if !h.Equal(*addr) {
			if err := netlink.AddrDel(link, &h); err != nil {
				return fmt.Errorf("remove %s: %w", h.IPNet, err)
			}
		}
	}
	if err := netlink.AddrReplace(link, addr); err != nil {
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
		c, err := wgctrl.New()
		if err != nil {
			return fmt.Errorf("wgctrl: %w", err)
		}
		n.wg = c
	}
	wc, err := wgConfig(ifc)
	if err != nil {
		return err
	}
	if err := n.wg.ConfigureDevice(ifc.Name, wc); err != nil {
		return fmt.Errorf("wireguard: %w", err)
	}
	link, err := netlink.LinkByName(ifc.Name)
	if err != nil {
		return err
	}
	if link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("mtu: %w", err)
		}
	}
	if err := setOnlyAddress(link, ifc.Address); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if ifc.Gateway != "" {
		gw := net.ParseIP(ifc.Gateway)
		if gw == nil {
			return fmt.Errorf("gateway %q is not an address", ifc.Gateway)
		}
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
	}
	return nil
}

// wgConfig is the wgctrl form of an interface: the peers replace whatever
// the device had.
func wgConfig(ifc wire.Interface) (wgtypes.Config, error) {
	key, err := wgtypes.ParseKey(ifc.PrivateKey)
	if err != nil {
		return wgtypes.Config{}, fmt.Errorf("private key: %w", err)
	}
	port := ifc.ListenPort
	c := wgtypes.Config{PrivateKey: &key, ListenPort: &port, ReplacePeers: true}
	for _, p := range ifc.Peers {
		pk, err := wgtypes.ParseKey(p.PublicKey)
		if err != nil {
			return wgtypes.Config{}, fmt.Errorf("peer key: %w", err)
		}
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
		c.Peers = append(c.Peers, pc)
	}
	return c, nil
}

// newDevice makes a WireGuard interface: the kernel's if it has the
// module, else wireguard-go on a TUN.
func (n *network) newDevice(name string, mtu int) (*wgDevice, error) {
	err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu}})
	if err == nil {
		return &wgDevice{name: name}, nil
	}
	if errors.Is(err, unix.EEXIST) {
		if l, lerr := netlink.LinkByName(name); lerr == nil {
			_ = netlink.LinkDel(l)
		}
	}
	t, err := n.openTUN(name, mtu)
	if err != nil {
		return nil, err
	}
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

// openTUN clones a TUN device from the /dev the agent kept.
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

// newNetwork keeps /dev for later TUN clones (in a VM, devtmpfs makes
// net/tun when the tun module loads).
func newNetwork() *network {
	n := &network{devs: map[string]*wgDevice{}, devDir: -1}
	if fd, err := unix.Open("/dev", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		n.devDir = fd
	}
	return n
}

// close removes every device and stops DNS.
func (n *network) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, d := range n.devs {
		d.close()
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
// the port on the machine's loopback, where the container's servers are
// reachable whichever address they bound.
func (a *Agent) Dial(ctx context.Context, proto string, port int) (net.Conn, error) {
	if proto != "tcp" && proto != "udp" {
		return nil, wire.Errorf(wire.KindInvalid, "dial: protocol %q is not supported", proto)
	}
	if port <= 0 || port > 65535 {
		return nil, wire.Errorf(wire.KindInvalid, "dial: bad port %d", port)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, proto, net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	if err != nil {
		return nil, fmt.Errorf("dial %d/%s: %w", port, proto, err)
	}
	return c, nil
}
