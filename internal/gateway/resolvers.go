package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// HostResolvers reads the nameservers of a resolv.conf ("ip:53" each).
// A missing file gives none: forwarded names then fail with SERVFAIL.
func HostResolvers(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		// A zone ("fe80::1%eth0") is the host's business; netip keeps it.
		if ip, err := netip.ParseAddr(f[1]); err == nil {
			out = append(out, netip.AddrPortFrom(ip, 53).String())
		}
	}
	return out
}

// ParseResolver reads a --dns value: an address, with an optional port.
func ParseResolver(s string) (string, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String(), nil
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return "", fmt.Errorf("resolver %q: want an address, optionally with a port", s)
	}
	return netip.AddrPortFrom(ip, 53).String(), nil
}
