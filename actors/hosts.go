package actors

import (
	"net/netip"
	"strings"

	"github.com/arcavm/arca/messages"
)

// hostGatewayName is the --add-host value that stands for the host as the
// container reaches it (its default network's gateway), as on dockerd.
const hostGatewayName = "host-gateway"

// extraHost is one --add-host entry.
type extraHost struct {
	name string
	ip   netip.Addr // zero for host-gateway
}

// parseExtraHosts checks HostConfig.ExtraHosts: "name:ip" (the CLI also
// sends "name=ip" from newer clients as "name:ip"), the IP may be IPv6 or
// host-gateway.
func parseExtraHosts(list []string) ([]extraHost, error) {
	out := make([]extraHost, 0, len(list))
	for _, e := range list {
		name, addr, ok := strings.Cut(e, ":")
		if !ok {
			name, addr, ok = strings.Cut(e, "=")
		}
		if !ok || name == "" {
			return nil, messages.InvalidParameter("bad format for add-host: %q", e)
		}
		addr = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		if addr == hostGatewayName {
			out = append(out, extraHost{name: name})
			continue
		}
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return nil, messages.InvalidParameter("invalid IP address in add-host: %q", addr)
		}
		out = append(out, extraHost{name: name, ip: ip})
	}
	return out, nil
}

// defaultHostsLines open every /etc/hosts dockerd writes.
const defaultHostsLines = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"

// hostsFileFor is /etc/hosts as dockerd writes it: the defaults, the
// --add-host entries, then the container's own address on its first
// network (127.0.1.1 without one) naming it. host-gateway entries get
// hostGateway, and are left out when the container has no way to the
// host.
func hostsFileFor(hostname string, self netip.Addr, extra []string, hostGateway netip.Addr) []byte {
	var b strings.Builder
	b.WriteString(defaultHostsLines)
	hosts, _ := parseExtraHosts(extra) // checked at create
	for _, h := range hosts {
		ip := h.ip
		if !ip.IsValid() {
			ip = hostGateway
		}
		if ip.IsValid() {
			b.WriteString(ip.String() + "\t" + h.name + "\n")
		}
	}
	own := "127.0.1.1"
	if self.IsValid() {
		own = self.String()
	}
	b.WriteString(own + "\t" + hostname + "\n")
	return []byte(b.String())
}
