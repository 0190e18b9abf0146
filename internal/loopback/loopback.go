// Package loopback tells whether a host names this machine's loopback.
package loopback

import (
	"net"
	"strings"
)

// Host reports whether hostport (a host with an optional port, IPv6 in
// brackets or not) is localhost or a loopback address.
func Host(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
