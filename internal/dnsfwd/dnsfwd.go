// Package dnsfwd holds what the guest's resolver and the host's gateway
// both do with a DNS query they pass on: ask one server, and say
// SERVFAIL when none answered.
package dnsfwd

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Dial is how a server is reached (the guest dials from the container's
// network namespace).
type Dial func(ctx context.Context, proto, addr string) (net.Conn, error)

// Exchange asks server for the answer to query over proto ("udp" or
// "tcp", with its length prefix), within timeout.
func Exchange(dial Dial, server, proto string, query []byte, timeout time.Duration) ([]byte, error) {
	if len(query) < 2 {
		return nil, errors.New("short query")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := dial(ctx, proto, server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if proto == "udp" {
		if _, err := c.Write(query); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return nil, err
			}
			// A late answer to an earlier query is not this one's.
			if n >= 2 && buf[0] == query[0] && buf[1] == query[1] {
				return buf[:n], nil
			}
		}
	}
	if _, err := c.Write(append([]byte{byte(len(query) >> 8), byte(len(query))}, query...)); err != nil {
		return nil, err
	}
	var lenBuf [2]byte
	if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
		return nil, err
	}
	out := make([]byte, int(lenBuf[0])<<8|int(lenBuf[1]))
	if _, err := io.ReadFull(c, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ServerFailure is the SERVFAIL reply to query.
func ServerFailure(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: dnsmessage.RCodeServerFailure})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	return b.Finish()
}
