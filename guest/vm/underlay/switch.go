package underlay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
)

// Switch is the underlay the daemon owns in user space: an Ethernet
// switch whose ports are the VMs' NICs and the host's own stack
// (hoststack.go), where the networks' gateways listen. A VM's NIC is one
// end of a datagram socket pair, one frame per datagram: qemu takes it as
// -netdev dgram, Apple's framework as a VZFileHandleNetworkDeviceAttachment.
// No kernel bridge, tap or namespace is involved, so macOS runs the same
// code as Linux, and nothing outlives the daemon.
type Switch struct {
	log  *slog.Logger
	host *hostStack

	mu     sync.RWMutex
	ports  map[*port]struct{}
	fdb    map[mac]*port // the port of each NIC's address
	closed bool

	dropped atomic.Uint64 // frames a full queue had no room for
	spoofed atomic.Uint64 // frames from an address not their port's
}

type mac [6]byte

// Frames are at most the MTU and an Ethernet header with a VLAN tag; the
// NICs here offload nothing, so nothing larger comes.
const (
	minFrame = 14
	maxFrame = MTU + 18
)

// portQueue is how many frames wait for a port's receiver. A frame that
// finds it full is dropped, as a switch drops: the sender's TCP backs off,
// and one slow machine never stalls the others.
const portQueue = 512

// Socket buffers of a NIC's pair. Apple asks for a receive buffer at least
// twice, better four times, the send buffer; Linux counts both against the
// sender's and caps them at its sysctl maximums.
const (
	nicSendBuf = 1 << 20
	nicRecvBuf = 4 << 20
)

// NewSwitch starts a switch with the host's stack on it, at HostAddress.
func NewSwitch(log *slog.Logger) (*Switch, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Switch{log: log, ports: map[*port]struct{}{}, fdb: map[mac]*port{}}
	h, err := newHostStack(s)
	if err != nil {
		return nil, fmt.Errorf("underlay switch: %w", err)
	}
	s.host = h
	return s, nil
}

// OpenNIC makes a socket pair, puts one end on the switch and returns the
// other for the NIC of a VM whose card has hardware address hw, with the
// function that takes the port off again (the VM's end is the caller's to
// close). The port goes when detach runs or the switch closes, whichever
// is first.
//
// The port takes only frames from hw, and frames for hw go to it alone
// from the start: a machine cannot take another's frames by sending from
// its address, nor be sent others' by flooding before it spoke. (A
// machine restored from a template sends nothing before its agent gave
// its card the machine's own address.)
func (s *Switch) OpenNIC(hw net.HardwareAddr) (nicEnd *os.File, detach func(), err error) {
	if len(hw) != 6 || hw[0]&1 != 0 {
		return nil, nil, fmt.Errorf("underlay nic: %q is not a unicast Ethernet address", hw)
	}
	ours, theirs, err := socketPair()
	if err != nil {
		return nil, nil, fmt.Errorf("underlay nic: %w", err)
	}
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("underlay nic: %w", err)
	}
	uc := c.(*net.UnixConn)
	p := newPort(func(f []byte) error { _, err := uc.Write(f); return err }, func() { uc.Close() })
	copy(p.hw[:], hw)
	if err := s.attach(p); err != nil {
		uc.Close()
		theirs.Close()
		return nil, nil, err
	}
	go s.readLoop(p, uc)
	return theirs, func() { s.detach(p) }, nil
}

// ListenUDP opens a UDP socket on the host's underlay address in the
// switch's own stack; port 0 picks a free one.
func (s *Switch) ListenUDP(port uint16) (net.PacketConn, error) {
	return s.host.listenUDP(port)
}

// Dropped is how many frames were dropped at full queues.
func (s *Switch) Dropped() uint64 { return s.dropped.Load() }

// Spoofed is how many frames were dropped for a source address that is
// not their port's.
func (s *Switch) Spoofed() uint64 { return s.spoofed.Load() }

// Close takes every port off and stops the host's stack.
func (s *Switch) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	ports := s.ports
	s.ports, s.fdb = map[*port]struct{}{}, map[mac]*port{}
	s.mu.Unlock()
	for p := range ports {
		p.stop()
	}
	s.host.close()
}

// port is where frames for one NIC wait to be written to it by the port's
// own goroutine.
type port struct {
	hw   mac // the only source address taken from the port
	out  chan []byte
	send func([]byte) error // writes one frame to the NIC
	end  func()             // closes the switch's end, ending its reader
	done chan struct{}
	once sync.Once
}

func newPort(send func([]byte) error, end func()) *port {
	return &port{out: make(chan []byte, portQueue), send: send, end: end, done: make(chan struct{})}
}

func (s *Switch) attach(p *port) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("underlay switch is closed")
	}
	if q, taken := s.fdb[p.hw]; taken && q != p {
		return fmt.Errorf("underlay switch: %s is on another port", net.HardwareAddr(p.hw[:]))
	}
	s.ports[p] = struct{}{}
	s.fdb[p.hw] = p
	go p.writeLoop()
	return nil
}

func (s *Switch) detach(p *port) {
	s.mu.Lock()
	if _, attached := s.ports[p]; attached {
		delete(s.ports, p)
		delete(s.fdb, p.hw)
	}
	s.mu.Unlock()
	p.stop()
}

// stop ends the port's goroutines: done ends the writer (out is never
// closed, so a late enqueue cannot panic), end the reader.
func (p *port) stop() {
	p.once.Do(func() {
		close(p.done)
		p.end()
	})
}

func (p *port) writeLoop() {
	for {
		select {
		case <-p.done:
			return
		case f := <-p.out:
			// A NIC whose VM is gone refuses the frame: dropped, as on
			// a cable to nothing, until the port is detached.
			_ = p.send(f)
		}
	}
}

// enqueue hands f to p's writer, or drops it when p's queue is full.
func (s *Switch) enqueue(p *port, f []byte) {
	select {
	case p.out <- f:
	default:
		s.dropped.Add(1)
	}
}

// readLoop switches what the NIC of p sends until the port is stopped.
func (s *Switch) readLoop(p *port, c *net.UnixConn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			select {
			case <-p.done:
			default:
				s.log.Debug("underlay switch: port read", "err", err)
			}
			return
		}
		if n < minFrame || n > maxFrame {
			continue
		}
		s.forward(p, append([]byte(nil), buf[:n]...))
	}
}

// forward passes f on: to the port its destination is on, or, for
// broadcast and multicast, to every port but the one it came in on. A
// frame whose source is not its port's address, or whose destination is
// on no port, goes nowhere. f is not written to after this (one copy goes
// to every port it floods to).
func (s *Switch) forward(from *port, f []byte) {
	var dst, src mac
	copy(dst[:], f[0:6])
	copy(src[:], f[6:12])
	if src != from.hw {
		s.spoofed.Add(1)
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, attached := s.ports[from]; !attached {
		return // a frame read as its port was detached, or the switch closed
	}
	if dst[0]&1 == 0 {
		if to := s.fdb[dst]; to != nil && to != from {
			s.enqueue(to, f)
		}
		return
	}
	for p := range s.ports {
		if p != from {
			s.enqueue(p, f)
		}
	}
}
