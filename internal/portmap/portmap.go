// Package portmap publishes a container's ports on the host: it listens
// where the user asked and carries every connection (TCP) or flow (UDP)
// to the machine through a Dialer, which in Arca is the agent session. No
// packet filter rules are involved.
package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/arcavm/arca/guest/wire"
)

// Binding is one container port to publish on one host address.
type Binding struct {
	Port   network.Port // the container's port and protocol
	HostIP netip.Addr   // zero: every IPv4 address
	// HostPort..HostPortEnd is where to listen; 0 picks a free port, a
	// range takes the first free one in it.
	HostPort, HostPortEnd uint16
}

// Bindings lists what a container publishes: its PortBindings, and with
// PublishAllPorts (-P) every exposed port on a free host port. Bad specs
// are errors in dockerd's words.
func Bindings(cfg *container.Config, hc *container.HostConfig) ([]Binding, error) {
	var out []Binding
	if hc == nil {
		return nil, nil
	}
	ports := make([]network.Port, 0, len(hc.PortBindings))
	for p := range hc.PortBindings {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].String() < ports[j].String() })
	seen := map[network.Port]bool{}
	for _, p := range ports {
		if err := checkPort(p); err != nil {
			return nil, err
		}
		seen[p] = true
		pbs := hc.PortBindings[p]
		if len(pbs) == 0 {
			pbs = []network.PortBinding{{}}
		}
		for _, pb := range pbs {
			lo, hi, err := hostPorts(pb.HostPort)
			if err != nil {
				return nil, err
			}
			if pb.HostIP.IsValid() && !pb.HostIP.Is4() && !pb.HostIP.Is4In6() {
				return nil, fmt.Errorf("invalid host IP %s: only IPv4 addresses can be published", pb.HostIP)
			}
			out = append(out, Binding{Port: p, HostIP: pb.HostIP.Unmap(), HostPort: lo, HostPortEnd: hi})
		}
	}
	if hc.PublishAllPorts && cfg != nil {
		exposed := make([]network.Port, 0, len(cfg.ExposedPorts))
		for p := range cfg.ExposedPorts {
			exposed = append(exposed, p)
		}
		sort.Slice(exposed, func(i, j int) bool { return exposed[i].String() < exposed[j].String() })
		for _, p := range exposed {
			if seen[p] {
				continue
			}
			if err := checkPort(p); err != nil {
				return nil, err
			}
			out = append(out, Binding{Port: p})
		}
	}
	return out, nil
}

func checkPort(p network.Port) error {
	if !p.IsValid() || p.Num() == 0 {
		return fmt.Errorf("invalid port specification: %q", p.String())
	}
	switch p.Proto() {
	case network.TCP, network.UDP:
		return nil
	case network.SCTP:
		return fmt.Errorf("publishing %s: sctp ports are not supported", p)
	}
	return fmt.Errorf("invalid proto: %s", p.Proto())
}

// hostPorts parses "", "8080" or "8000-8010".
func hostPorts(s string) (uint16, uint16, error) {
	if s == "" {
		return 0, 0, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid hostPort: %s", s)
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(hi, 10, 16); err != nil || h < l {
			return 0, 0, fmt.Errorf("invalid hostPort: %s", s)
		}
	}
	return uint16(l), uint16(h), nil
}

// Dialer connects to a port inside the machine.
type Dialer func(ctx context.Context, proto string, port int) (net.Conn, error)

// ErrAllocated wraps a host port that is taken.
var ErrAllocated = errors.New("port is already allocated")

// Published is a set of live listeners.
type Published struct {
	dial    Dialer
	Ports   network.PortMap // what is bound, with the ports picked
	closers []func()
	mu      sync.Mutex
	conns   map[net.Conn]bool
	closed  bool
	wg      sync.WaitGroup
}

// Publish binds every binding, or none: on error what was bound is
// closed again.
func Publish(bs []Binding, dial Dialer) (*Published, error) {
	p := &Published{dial: dial, Ports: network.PortMap{}, conns: map[net.Conn]bool{}}
	for _, b := range bs {
		if err := p.bind(b); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

func (p *Published) bind(b Binding) error {
	ip := b.HostIP
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	lo, hi := b.HostPort, b.HostPortEnd
	if hi < lo {
		hi = lo
	}
	var lastErr error
	for port := int(lo); port <= int(hi); port++ {
		addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
		bound, err := p.listen(b.Port, addr)
		if err == nil {
			p.Ports[b.Port] = append(p.Ports[b.Port], network.PortBinding{HostIP: ip, HostPort: strconv.Itoa(bound)})
			return nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if errors.Is(lastErr, syscall.EADDRINUSE) {
		shown := strconv.Itoa(int(lo))
		if hi != lo {
			shown += "-" + strconv.Itoa(int(hi))
		}
		return fmt.Errorf("Bind for %s failed: %w", net.JoinHostPort(ip.String(), shown), ErrAllocated)
	}
	return fmt.Errorf("listen %s %s: %w", ip, b.Port, lastErr)
}

// listen starts serving one host address and returns the port it got.
func (p *Published) listen(port network.Port, addr string) (int, error) {
	if port.Proto() == network.UDP {
		pc, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return 0, err
		}
		p.closers = append(p.closers, func() { pc.Close() })
		p.wg.Add(1)
		go p.serveUDP(pc, int(port.Num()))
		return pc.LocalAddr().(*net.UDPAddr).Port, nil
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return 0, err
	}
	p.closers = append(p.closers, func() { ln.Close() })
	p.wg.Add(1)
	go p.serveTCP(ln, int(port.Num()))
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (p *Published) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed {
			return false
		}
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Published) serveTCP(ln net.Listener, port int) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c, true) {
			c.Close()
			return
		}
		go func() {
			defer p.track(c, false)
			in, err := p.dialHeld(port)
			if err != nil {
				c.Close() // refused inside all along: the client sees EOF
				return
			}
			wire.PipeStream(c, in)
		}()
	}
}

// holdFor is how long an accepted connection waits for the container's
// server: a client that connects right after `docker run -d -p` (or
// compose's up) reaches the server once it listens, instead of a reset
// because the machine or the server was a moment late.
const holdFor = 10 * time.Second

// dialHeld dials port inside the machine until it answers, the hold runs
// out or the ports are closed (the container stopped).
func (p *Published) dialHeld(port int) (net.Conn, error) {
	deadline := time.Now().Add(holdFor)
	wait := 20 * time.Millisecond
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		in, err := p.dial(ctx, "tcp", port)
		cancel()
		if err == nil {
			return in, nil
		}
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed || time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		time.Sleep(wait)
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// serveUDP keeps one flow into the machine per client address.
func (p *Published) serveUDP(pc net.PacketConn, port int) {
	defer p.wg.Done()
	var mu sync.Mutex
	flows := map[string]net.Conn{}
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			mu.Lock()
			for _, f := range flows {
				f.Close()
			}
			mu.Unlock()
			return
		}
		key := from.String()
		mu.Lock()
		f := flows[key]
		mu.Unlock()
		if f == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			f, err = p.dial(ctx, "udp", port)
			cancel()
			if err != nil {
				continue
			}
			mu.Lock()
			flows[key] = f
			mu.Unlock()
			go func(f net.Conn, to net.Addr) {
				// Replies until the machine's side ends the flow (idle).
				rbuf := make([]byte, 65535)
				for {
					n, err := wire.ReadDatagram(f, rbuf)
					if err != nil {
						break
					}
					pc.WriteTo(rbuf[:n], to)
				}
				f.Close()
				mu.Lock()
				if flows[to.String()] == f {
					delete(flows, to.String())
				}
				mu.Unlock()
			}(f, from)
		}
		if err := wire.WriteDatagram(f, buf[:n]); err != nil {
			f.Close()
		}
	}
}

// Close stops listening and ends every connection carried.
func (p *Published) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	for _, c := range p.closers {
		c()
	}
	for c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
