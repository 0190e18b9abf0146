package registry

import (
	"net"
	"strings"
)

// isLoopback reports whether a registry host (with optional port) is on this
// machine; dockerd talks plain HTTP to those, and so do we.
func isLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
