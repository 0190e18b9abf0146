package httpfront

import (
	"bytes"
	"net"
)

// The moby client's hijacked requests (DialHijack: /grpc and /session,
// what buildx's docker driver dials) carry an empty Host header, which
// net/http (dockerd) accepts and fasthttp refuses with a 400. A hijack is
// always the first request of a connection it dials for itself, so the
// first request's header block is all that needs mending: its empty Host
// gets a placeholder value. Nothing after the header block is touched.

// emptyHostPlaceholder is what an empty Host becomes; the daemon never
// reads it.
const emptyHostPlaceholder = "docker"

// maxFirstHeader bounds how much of a connection is held back looking for
// the end of its first header block (fasthttp's own limit is its read
// buffer, 64 KiB here).
const maxFirstHeader = 64 << 10

// emptyHostListener gives each accepted connection an emptyHostConn.
type emptyHostListener struct{ net.Listener }

func (l emptyHostListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &emptyHostConn{Conn: c}, nil
}

// emptyHostConn reads its first header block whole, mends it, then reads
// through.
type emptyHostConn struct {
	net.Conn
	done    bool   // the first header block was handled
	pending []byte // mended bytes not read yet
	err     error  // the read error met while gathering them
}

// UnsafeConn is the connection below, for hijacked streams' Close.
func (c *emptyHostConn) UnsafeConn() net.Conn { return c.Conn }

func (c *emptyHostConn) Read(p []byte) (int, error) {
	if !c.done {
		c.done = true
		c.pending, c.err = readFirstHeader(c.Conn)
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}

// readFirstHeader reads until the end of a header block (or the limit,
// or an error) and mends an empty Host in it.
func readFirstHeader(c net.Conn) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for {
		if end := bytes.Index(buf, []byte("\r\n\r\n")); end >= 0 {
			return append(mendEmptyHost(buf[:end+2]), buf[end+2:]...), nil
		}
		if len(buf) >= maxFirstHeader {
			return buf, nil
		}
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, len(buf))...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
	}
}

// mendEmptyHost gives an empty Host line of head (the request line and
// headers, each ending in CRLF) the placeholder value.
func mendEmptyHost(head []byte) []byte {
	lines := bytes.SplitAfter(head, []byte("\r\n"))
	for i, line := range lines {
		if i == 0 {
			continue // the request line
		}
		name, value, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\r\n")), []byte(":"))
		if ok && bytes.EqualFold(name, []byte("Host")) && len(bytes.TrimSpace(value)) == 0 {
			lines[i] = []byte("Host: " + emptyHostPlaceholder + "\r\n")
		}
	}
	return bytes.Join(lines, nil)
}
