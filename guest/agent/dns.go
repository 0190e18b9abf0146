package agent

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/internal/dnsfwd"
)

// DNSAddress is where every guest's resolver listens, as on dockerd.
const DNSAddress = "127.0.0.11:53"

// dnsTable is what the embedded resolver knows: names (lower case, no
// trailing dot) to IPv4 addresses, and reverse entries.
type dnsTable struct {
	a       map[string][]netip.Addr
	ptr     map[string]string // "4.3.2.1.in-addr.arpa" -> name
	forward bool
	servers []string // "ip:port", where forwarded queries go
}

func newDNSTable(c wire.DNSConfig) *dnsTable {
	t := &dnsTable{a: map[string][]netip.Addr{}, ptr: map[string]string{}, forward: c.Forward, servers: c.Servers}
	for _, r := range c.Records {
		name := canonicalName(r.Name)
		for _, s := range r.IPs {
			ip, err := netip.ParseAddr(s)
			if err != nil || !ip.Is4() {
				continue
			}
			t.a[name] = append(t.a[name], ip)
			rev := reverseName(ip)
			if _, ok := t.ptr[rev]; !ok {
				t.ptr[rev] = name
			}
		}
	}
	return t
}

func canonicalName(n string) string { return strings.TrimSuffix(strings.ToLower(n), ".") }

func reverseName(ip netip.Addr) string {
	b := ip.As4()
	return netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}).String() + ".in-addr.arpa"
}

// answer builds the reply to one query message, or says the query is
// for the upstream servers.
func (t *dnsTable) answer(query []byte) (reply []byte, upstream bool, err error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, false, err
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	name := canonicalName(q.Name.String())
	ips, known := t.a[name]
	ptr, knownPtr := t.ptr[name]
	switch {
	case known:
		rh.Authoritative = true
	case q.Type == dnsmessage.TypePTR && knownPtr:
		rh.Authoritative = true
	case t.forward && len(t.servers) > 0:
		return nil, true, nil
	case t.forward:
		// Forwarding without a server to forward to (no network has a
		// gateway): say so rather than deny the name.
		rh.RCode = dnsmessage.RCodeServerFailure
	default:
		rh.RCode = dnsmessage.RCodeNameError
	}
	b, err := startReply(rh, q)
	if err != nil {
		return nil, false, err
	}
	hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 600}
	switch {
	case known && q.Type == dnsmessage.TypeA:
		for _, ip := range ips {
			if err := b.AResource(hdr, dnsmessage.AResource{A: ip.As4()}); err != nil {
				return nil, false, err
			}
		}
	case knownPtr && q.Type == dnsmessage.TypePTR:
		target, err := dnsmessage.NewName(ptr + ".")
		if err != nil {
			return nil, false, err
		}
		if err := b.PTRResource(hdr, dnsmessage.PTRResource{PTR: target}); err != nil {
			return nil, false, err
		}
	}
	// Other types of a known name (AAAA above all) get an empty NOERROR,
	// as dockerd's resolver gives.
	reply, err = b.Finish()
	return reply, false, err
}

func startReply(h dnsmessage.Header, q dnsmessage.Question) (*dnsmessage.Builder, error) {
	b := dnsmessage.NewBuilder(nil, h)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	return &b, nil
}

// forwardTimeout bounds one upstream server's answer.
const forwardTimeout = 3 * time.Second

// reply answers one query, from the table or from the upstream servers.
func (s *dnsServer) reply(query []byte, proto string) ([]byte, error) {
	t := s.table.Load()
	out, upstream, err := t.answer(query)
	if err != nil || !upstream {
		return out, err
	}
	return s.forward(t, query, proto)
}

// forward asks t's upstream servers in order, over the protocol the
// client used (a truncated UDP answer makes the client ask again over
// TCP, which is then forwarded as TCP); SERVFAIL when none answers.
func (s *dnsServer) forward(t *dnsTable, query []byte, proto string) ([]byte, error) {
	for _, server := range t.servers {
		out, err := dnsfwd.Exchange(s.dial, server, proto, query, forwardTimeout)
		if err == nil {
			return out, nil
		}
		if s.log != nil {
			s.log.Debug("dns forward", "server", server, "err", err)
		}
	}
	return dnsfwd.ServerFailure(query)
}

// dnsServer answers on 127.0.0.11:53 over UDP and TCP.
type dnsServer struct {
	table atomic.Pointer[dnsTable]
	udp   net.PacketConn
	tcp   net.Listener
	log   *slog.Logger
	// dial reaches upstream servers from the container's network.
	dial dnsfwd.Dial
	wg   sync.WaitGroup
}

func startDNS(log *slog.Logger, dial dnsfwd.Dial) (*dnsServer, error) {
	return startDNSAt(DNSAddress, log, dial)
}

func startDNSAt(addr string, log *slog.Logger, dial dnsfwd.Dial) (*dnsServer, error) {
	udp, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, err
	}
	tcp, err := net.Listen("tcp4", udp.LocalAddr().String())
	if err != nil {
		udp.Close()
		return nil, err
	}
	s := &dnsServer{udp: udp, tcp: tcp, log: log, dial: dial}
	s.table.Store(newDNSTable(wire.DNSConfig{}))
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	return s, nil
}

func (s *dnsServer) setTable(t *dnsTable) { s.table.Store(t) }

func (s *dnsServer) close() {
	s.udp.Close()
	s.tcp.Close()
	s.wg.Wait()
}

func (s *dnsServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		t := s.table.Load()
		out, upstream, err := t.answer(buf[:n])
		switch {
		case err != nil:
			// Not a query we can parse: drop it, as resolvers do.
		case upstream:
			// Forwarding waits on another server: not in this loop.
			query := append([]byte(nil), buf[:n]...)
			go func() {
				if out, err := s.forward(t, query, "udp"); err == nil {
					s.udp.WriteTo(out, from)
				}
			}()
		default:
			s.udp.WriteTo(out, from)
		}
	}
}

func (s *dnsServer) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			return
		}
		go s.serveConn(c)
	}
}

// serveConn answers length-prefixed queries until the client closes.
func (s *dnsServer) serveConn(c net.Conn) {
	defer c.Close()
	var lenBuf [2]byte
	for {
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		q := make([]byte, int(lenBuf[0])<<8|int(lenBuf[1]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		out, err := s.reply(q, "tcp")
		if err != nil {
			return
		}
		if _, err := c.Write(append([]byte{byte(len(out) >> 8), byte(len(out))}, out...)); err != nil {
			return
		}
	}
}
