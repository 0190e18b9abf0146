//go:build linux

package buildkit

import (
	"errors"
	"net"
	"sync"
)

var errListenerDone = errors.New("connection served")

// connListener hands out one connection, then waits for it to close
// before ending: gRPC serves each hijacked connection through its own
// Serve call, which returns when the client is gone.
type connListener struct {
	conn   net.Conn
	once   sync.Once
	given  bool
	closed chan struct{}
}

func newConnListener(c net.Conn) *connListener {
	l := &connListener{closed: make(chan struct{})}
	l.conn = &notifyConn{Conn: c, onClose: func() { l.Close() }}
	return l
}

func (l *connListener) Accept() (net.Conn, error) {
	if !l.given {
		l.given = true
		return l.conn, nil
	}
	<-l.closed
	return nil, errListenerDone
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.conn.LocalAddr() }

// notifyConn tells its listener when gRPC is done with it.
type notifyConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}
