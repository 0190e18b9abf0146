package testenv

import (
	"net"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// ResolverDomain is the zone the test resolver answers: NAME.arca-test.
// resolves to ResolverAnswer, anything else is NXDOMAIN.
const ResolverDomain = "arca-test"

// ResolverAnswer is the address every name in ResolverDomain has (from
// TEST-NET-1: it is never dialed).
const ResolverAnswer = "192.0.2.53"

var resolver struct {
	once sync.Once
	addr string
	err  error
}

// Resolver is the address ("127.0.0.1:port") of a DNS server on loopback
// that this test binary runs. Every daemon testenv starts forwards to it
// (--dns), so no test ever sends a query to the machine's real
// resolvers.
func Resolver() (string, error) {
	resolver.once.Do(func() {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			resolver.err = err
			return
		}
		resolver.addr = pc.LocalAddr().String()
		go serveResolver(pc)
	})
	return resolver.addr, resolver.err
}

func serveResolver(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
			continue
		}
		q := m.Questions[0]
		m.Header.Response, m.Header.RecursionAvailable = true, true
		m.Answers, m.Authorities, m.Additionals = nil, nil, nil
		name := strings.ToLower(q.Name.String())
		switch {
		case !strings.HasSuffix(name, "."+ResolverDomain+"."):
			m.Header.RCode = dnsmessage.RCodeNameError
		case q.Type == dnsmessage.TypeA:
			ip := net.ParseIP(ResolverAnswer).To4()
			m.Answers = []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 30},
				Body:   &dnsmessage.AResource{A: [4]byte(ip)},
			}}
		}
		if out, err := m.Pack(); err == nil {
			pc.WriteTo(out, from)
		}
	}
}
