package actors

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// Host networking (--network host) in a machine per container: the
// machine's uplink to the host network's gateway is its only interface,
// so "the host's network" means what the host reaches, through the host.
// dockerd gives such a container copies of the host's /etc/hosts and
// /etc/resolv.conf; so does Arca, with what only the host can reach
// (its loopback) turned into the gateway that stands for it.

// hostNetResolvConf is the host's resolv.conf for a host-networking
// container, with --dns, --dns-search and --dns-option replacing its
// nameserver, search and options lines as on dockerd. A loopback
// nameserver, which in the container would be its own machine's, becomes
// the gateway, where the daemon answers with the host's resolvers;
// without a gateway it is left out.
func hostNetResolvConf(host []byte, hc *container.HostConfig, gateway netip.Addr) []byte {
	var servers []netip.Addr
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "nameserver":
			if ip, err := netip.ParseAddr(f[1]); err == nil {
				servers = append(servers, ip)
			}
			continue
		case len(f) >= 1 && (f[0] == "search" || f[0] == "domain") && len(hc.DNSSearch) > 0,
			len(f) >= 1 && f[0] == "options" && len(hc.DNSOptions) > 0:
			continue
		}
		lines = append(lines, line)
	}
	if len(hc.DNS) > 0 {
		servers = hc.DNS
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	gatewayListed := false
	for _, ip := range servers {
		if ip.IsLoopback() {
			if !gateway.IsValid() || gatewayListed {
				continue
			}
			ip, gatewayListed = gateway, true
		}
		b.WriteString("nameserver " + ip.String() + "\n")
	}
	if len(hc.DNSSearch) > 0 {
		b.WriteString("search " + strings.Join(hc.DNSSearch, " ") + "\n")
	}
	if len(hc.DNSOptions) > 0 {
		b.WriteString("options " + strings.Join(hc.DNSOptions, " ") + "\n")
	}
	return []byte(b.String())
}

// hostNetHosts is /etc/hosts for a host-networking container: a copy of
// the host's, as dockerd makes it, unless --add-host entries are given,
// when dockerd writes its defaults and those entries instead. Either way
// host.docker.internal names the gateway, which reaches the host's
// loopback (the container's 127.0.0.1 is its own machine's), unless the
// file already names it.
func hostNetHosts(host []byte, extra []string, gateway netip.Addr) []byte {
	var b strings.Builder
	if len(extra) == 0 {
		b.Write(host)
		if len(host) > 0 && host[len(host)-1] != '\n' {
			b.WriteByte('\n')
		}
	} else {
		b.WriteString(defaultHostsLines)
		hosts, _ := parseExtraHosts(extra) // checked at create
		for _, h := range hosts {
			ip := h.ip
			if !ip.IsValid() {
				ip = gateway
			}
			if ip.IsValid() {
				b.WriteString(ip.String() + "\t" + h.name + "\n")
			}
		}
	}
	if gateway.IsValid() && !namesHost(b.String(), hostDockerInternal) {
		b.WriteString(gateway.String() + "\t" + hostDockerInternal + "\n")
	}
	return []byte(b.String())
}

// namesHost tells whether a hosts file has an entry for name.
func namesHost(hosts, name string) bool {
	for _, line := range strings.Split(hosts, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		for _, n := range f[min(1, len(f)):] {
			if strings.EqualFold(n, name) {
				return true
			}
		}
	}
	return false
}
