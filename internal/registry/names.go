package registry

import (
	"net"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
)

const (
	dockerHub       = "docker.io"
	officialPrefix  = "library/"
	statusPrefixNew = "Status: Downloaded newer image for "
	statusPrefixOld = "Status: Image is up to date for "
)

// Familiar turns a normalized reference into the short form Docker prints:
// "docker.io/library/busybox:latest" becomes "busybox:latest",
// "docker.io/foo/bar:1" becomes "foo/bar:1"; other registries stay as given.
func Familiar(ref string) string {
	rest, ok := strings.CutPrefix(ref, dockerHub+"/")
	if !ok {
		return ref
	}
	if name, ok := strings.CutPrefix(rest, officialPrefix); ok && !strings.Contains(repoPart(name), "/") {
		return name
	}
	return rest
}

// repoPart is the reference without its tag or digest.
func repoPart(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// StatusDownloaded is the last line of a pull that brought a new image or
// moved a tag: "Status: Downloaded newer image for busybox:latest".
func StatusDownloaded(ref string) jsonstream.Message {
	return jsonstream.Message{Status: statusPrefixNew + Familiar(ref)}
}

// StatusUpToDate is the last line of a pull that changed nothing.
func StatusUpToDate(ref string) jsonstream.Message {
	return jsonstream.Message{Status: statusPrefixOld + Familiar(ref)}
}

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
