package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Published ports: the host accepts a connection, opens a stream with a
// dial request, and the agent connects to the port inside the machine.
// After the agent's answer the stream carries the connection's bytes (TCP,
// with half-close passed on both ways) or length-prefixed datagrams (UDP).

// UDPIdle is how long a UDP flow lives without traffic.
const UDPIdle = 2 * time.Minute

// Dial connects to port inside the machine. For "tcp" the returned conn
// is the connection: close its write side (CloseWrite) to half-close. For
// "udp" use ReadDatagram and WriteDatagram on it.
func (c *Client) Dial(ctx context.Context, proto string, port int) (net.Conn, error) {
	st, err := c.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("dial %d/%s: %w", port, proto, err)
	}
	if _, err := roundTrip(ctx, st, request{Op: opDial, Proto: proto, Port: port}); err != nil {
		st.Close()
		return nil, fmt.Errorf("dial %d/%s: %w", port, proto, err)
	}
	return halfCloser{st}, nil
}

// halfCloser gives a stream CloseWrite: a yamux stream's Close only ends
// its own direction, and reads go on until the other side closes too.
type halfCloser struct{ net.Conn }

func (h halfCloser) CloseWrite() error { return h.Conn.Close() }

func (s *server) dial(st net.Conn, req request) {
	c, err := s.h.Dial(s.ctx, req.Proto, req.Port)
	if err != nil {
		writeFrame(st, errorResponse(err))
		st.Close()
		return
	}
	if err := writeFrame(st, response{}); err != nil {
		c.Close()
		st.Close()
		return
	}
	if req.Proto == "udp" {
		PipeDatagrams(halfCloser{st}, c, UDPIdle)
		return
	}
	PipeStream(halfCloser{st}, c)
}

// PipeStream copies both ways until both directions have ended, passing
// each end-of-stream on as a half-close, then closes both.
func PipeStream(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	one := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go one(a, b)
	go one(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}

// PipeDatagrams relays between a stream of framed datagrams and a
// connected packet conn until either ends or idle passes without traffic.
func PipeDatagrams(st net.Conn, pc net.Conn, idle time.Duration) {
	var once sync.Once
	done := func() {
		once.Do(func() {
			st.Close()
			pc.Close()
		})
	}
	var mu sync.Mutex
	last := time.Now()
	touch := func() {
		mu.Lock()
		last = time.Now()
		mu.Unlock()
	}
	go func() {
		defer done()
		buf := make([]byte, 65535)
		for {
			n, err := ReadDatagram(st, buf)
			if err != nil {
				return
			}
			touch()
			if _, err := pc.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	defer done()
	buf := make([]byte, 65535)
	for {
		pc.SetReadDeadline(time.Now().Add(idle))
		n, err := pc.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				mu.Lock()
				quiet := time.Since(last) >= idle
				mu.Unlock()
				if !quiet {
					continue
				}
			}
			return
		}
		touch()
		if err := WriteDatagram(st, buf[:n]); err != nil {
			return
		}
	}
}

// WriteDatagram writes one length-prefixed datagram.
func WriteDatagram(w io.Writer, p []byte) error {
	if len(p) > 65535 {
		return errors.New("datagram too large")
	}
	b := make([]byte, 2+len(p))
	binary.BigEndian.PutUint16(b, uint16(len(p)))
	copy(b[2:], p)
	_, err := w.Write(b)
	return err
}

// ReadDatagram reads one length-prefixed datagram into buf.
func ReadDatagram(r io.Reader, buf []byte) (int, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n > len(buf) {
		return 0, errors.New("datagram too large")
	}
	return io.ReadFull(r, buf[:n])
}
