package vz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	codehex "github.com/Code-Hex/vz/v3"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/hostproc"
	"github.com/arcavm/arca/guest/vm/underlay"
)

// ConnectTimeout bounds how long Boot waits for the agent to listen on
// vsock, from the VM's start (a guest reaches it in a second or two).
const ConnectTimeout = 30 * time.Second

// Driver boots Virtualization framework machines. It is safe for
// concurrent use.
type Driver struct{ h *host }

var _ vm.Driver = (*Driver)(nil)

// GuestKernel names the kit's kernel, for docker info and the actor tree.
func (d *Driver) GuestKernel() string { return d.h.kit.Describe() }

// New loads the kit and packs the initramfs.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := newHost(cfg)
	if err != nil {
		return nil, err
	}
	return &Driver{h: h}, nil
}

// Name implements vm.Driver.
func (d *Driver) Name() string { return "vz" }

// UseSwitch gives machines that ask for one a NIC on the daemon's
// user-space underlay switch: a VZFileHandleNetworkDeviceAttachment on one
// end of a datagram socket pair, the switch holding the other. Called
// before the first Boot.
func (d *Driver) UseSwitch(s *underlay.Switch) { d.h.nics = s }

// HostPathMounts reports that host directories reach the guest (virtiofs),
// so volumes and binds work.
func (d *Driver) HostPathMounts() bool { return true }

// Boot implements vm.Driver: it returns once the agent accepted the
// host's vsock connection.
func (d *Driver) Boot(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	c, release, err := d.h.prepare(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("boot vz %s: %w", spec.ID, err)
	}
	m, err := start(ctx, c, release)
	if err != nil {
		return nil, fmt.Errorf("boot vz %s: %w", spec.ID, err)
	}
	return m, nil
}

// configuration turns c into the framework's configuration.
func configuration(c vmConfig) (*codehex.VirtualMachineConfiguration, error) {
	boot, err := codehex.NewLinuxBootLoader(c.Kernel,
		codehex.WithCommandLine(c.kernelCmdline()), codehex.WithInitrd(c.Initrd))
	if err != nil {
		return nil, fmt.Errorf("boot loader: %w", err)
	}
	conf, err := codehex.NewVirtualMachineConfiguration(boot, c.CPUs, c.MemoryBytes)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}

	// The image's disk, the container's, then each block volume's: the
	// guest finds each by its identifier, not its order.
	var disks []codehex.StorageDeviceConfiguration
	for _, b := range c.Disks {
		att, err := codehex.NewDiskImageStorageDeviceAttachment(b.Path, b.ReadOnly)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", b.Path, err)
		}
		dev, err := codehex.NewVirtioBlockDeviceConfiguration(att)
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", b.Path, err)
		}
		if err := dev.SetBlockDeviceIdentifier(b.ID); err != nil {
			return nil, fmt.Errorf("disk %s: identifier: %w", b.Path, err)
		}
		disks = append(disks, dev)
	}
	conf.SetStorageDevicesVirtualMachineConfiguration(disks)

	var shares []codehex.DirectorySharingDeviceConfiguration
	for _, sh := range c.Shares {
		dir, err := codehex.NewSharedDirectory(sh.HostPath, sh.ReadOnly)
		if err != nil {
			return nil, fmt.Errorf("share %s: %w", sh.HostPath, err)
		}
		single, err := codehex.NewSingleDirectoryShare(dir)
		if err != nil {
			return nil, fmt.Errorf("share %s: %w", sh.HostPath, err)
		}
		dev, err := codehex.NewVirtioFileSystemDeviceConfiguration(sh.Tag)
		if err != nil {
			return nil, fmt.Errorf("share %s: %w", sh.HostPath, err)
		}
		dev.SetDirectoryShare(single)
		shares = append(shares, dev)
	}
	conf.SetDirectorySharingDevicesVirtualMachineConfiguration(shares)

	sock, err := codehex.NewVirtioSocketDeviceConfiguration()
	if err != nil {
		return nil, fmt.Errorf("vsock: %w", err)
	}
	conf.SetSocketDevicesVirtualMachineConfiguration([]codehex.SocketDeviceConfiguration{sock})

	if c.NIC != nil {
		// The framework reads and writes frames on the socket; its MTU
		// stays the default 1500, the underlay's.
		att, err := codehex.NewFileHandleNetworkDeviceAttachment(c.NIC.File)
		if err != nil {
			return nil, fmt.Errorf("nic: %w", err)
		}
		dev, err := codehex.NewVirtioNetworkDeviceConfiguration(att)
		if err != nil {
			return nil, fmt.Errorf("nic: %w", err)
		}
		mac, err := codehex.NewMACAddress(c.NIC.MAC)
		if err != nil {
			return nil, fmt.Errorf("nic: %w", err)
		}
		dev.SetMACAddress(mac)
		conf.SetNetworkDevicesVirtualMachineConfiguration([]*codehex.VirtioNetworkDeviceConfiguration{dev})
	}

	// Each boot's console starts afresh; made here so the file exists
	// whatever the framework does with a missing one.
	if err := os.WriteFile(c.Console, nil, 0o644); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	console, err := codehex.NewFileSerialPortAttachment(c.Console, true)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	serial, err := codehex.NewVirtioConsoleDeviceSerialPortConfiguration(console)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	conf.SetSerialPortsVirtualMachineConfiguration([]*codehex.VirtioConsoleDeviceSerialPortConfiguration{serial})

	// The guest's random pool is seeded at once, not after seconds of
	// waiting for entropy.
	entropy, err := codehex.NewVirtioEntropyDeviceConfiguration()
	if err != nil {
		return nil, fmt.Errorf("entropy: %w", err)
	}
	conf.SetEntropyDevicesVirtualMachineConfiguration([]*codehex.VirtioEntropyDeviceConfiguration{entropy})

	if ok, err := conf.Validate(); !ok || err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return conf, nil
}

// start starts the VM and connects to its agent; release runs once the
// VM is gone (its NIC). Nothing is left running on error.
func start(ctx context.Context, c vmConfig, release func()) (*machine, error) {
	conf, err := configuration(c)
	if err != nil {
		release()
		return nil, err
	}
	v, err := codehex.NewVirtualMachine(conf)
	if err != nil {
		release()
		return nil, fmt.Errorf("new vm: %w", err)
	}
	m := &machine{vm: v, cfg: c, release: release, done: make(chan struct{})}
	// Watch before starting, so no state change is missed.
	states := v.StateChangedNotify()
	if err := v.Start(); err != nil {
		release()
		return nil, fmt.Errorf("start: %w%s", err, consoleDetail(c.Console))
	}
	go m.watch(states)
	conn, err := m.connect(ctx)
	if err != nil {
		m.Kill()
		return nil, err
	}
	m.mu.Lock()
	m.conn = conn
	m.mu.Unlock()
	select {
	case <-m.done:
		conn.Close() // stopped just after the connection: Done tells
	default:
	}
	return m, nil
}

// connect dials the agent's vsock port until it listens (see dialAgent).
func (m *machine) connect(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	devs := m.vm.SocketDevices()
	if len(devs) == 0 {
		return nil, errors.New("connect agent: the vm has no vsock device")
	}
	dial := func() (net.Conn, error) { return devs[0].Connect(m.cfg.AgentPort) }
	conn, err := dialAgent(ctx, dial, m.done, dialTimings{})
	switch {
	case errors.Is(err, errStopped):
		return nil, m.stoppedErr()
	case err != nil:
		return nil, fmt.Errorf("connect agent on vsock port %d: %w%s", m.cfg.AgentPort, err, consoleDetail(m.cfg.Console))
	}
	return conn, nil
}

// stoppedErr says why the VM ended before its agent listened.
func (m *machine) stoppedErr() error {
	if err := m.Err(); err != nil {
		return fmt.Errorf("connect agent: %w", err)
	}
	return fmt.Errorf("connect agent: the vm stopped before the agent listened%s", consoleDetail(m.cfg.Console))
}

// machine is one running VM.
type machine struct {
	vm      *codehex.VirtualMachine // held: the framework's object lives while we do
	cfg     vmConfig
	conn    net.Conn
	release func() // the NIC's socket and switch port, once the VM has stopped

	done     chan struct{}
	mu       sync.Mutex
	err      error
	state    codehex.VirtualMachineState
	killed   bool
	killOnce sync.Once
}

// watch follows the VM's state until it stops or fails.
func (m *machine) watch(states <-chan codehex.VirtualMachineState) {
	for s := range states {
		if s != codehex.VirtualMachineStateStopped && s != codehex.VirtualMachineStateError {
			continue
		}
		m.mu.Lock()
		m.state = s
		m.err = m.endErr()
		m.mu.Unlock()
		m.closeConn() // whoever reads the stream learns at once
		m.release()
		close(m.done)
		return
	}
}

// endErr says why the VM ended: nil after Kill or a clean power-off.
// Callers hold m.mu.
func (m *machine) endErr() error {
	if m.killed {
		return nil
	}
	console := hostproc.Tail(m.cfg.Console, 2048)
	switch {
	case m.state == codehex.VirtualMachineStateError:
		return fmt.Errorf("vz: the virtual machine failed%s", consoleDetail(m.cfg.Console))
	case strings.Contains(console, "Kernel panic"):
		return fmt.Errorf("vz: guest kernel panicked%s", consoleDetail(m.cfg.Console))
	}
	return nil
}

func consoleDetail(path string) string {
	if s := strings.TrimSpace(hostproc.Tail(path, 2048)); s != "" {
		return "; console ends: " + s
	}
	return ""
}

func (m *machine) closeConn() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn != nil {
		m.conn.Close()
	}
}

// Conn implements vm.Machine.
func (m *machine) Conn() net.Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conn
}

// Rootfs implements vm.Machine.
func (m *machine) Rootfs() vm.RootfsSpec { return m.cfg.rootfs() }

// GuestPath implements vm.GuestPaths.
func (m *machine) GuestPath(hostPath string) (string, bool) { return m.cfg.guestPath(hostPath) }

// DiskPath implements vm.DiskPaths: block volumes are disks of the VM,
// mounted by the agent at their volumeMount.
func (m *machine) DiskPath(image string) (string, bool) { return m.cfg.diskPath(image) }

var (
	_ vm.GuestPaths = (*machine)(nil)
	_ vm.DiskPaths  = (*machine)(nil)
)

// Done implements vm.Machine.
func (m *machine) Done() <-chan struct{} { return m.done }

// Err implements vm.Machine.
func (m *machine) Err() error {
	select {
	case <-m.done:
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.err
	default:
		return nil
	}
}

// Kill implements vm.Machine: the VM is stopped at once (no guest
// shutdown) and waited for.
func (m *machine) Kill() error {
	var err error
	m.killOnce.Do(func() {
		m.mu.Lock()
		m.killed = true
		m.mu.Unlock()
		if m.vm.CanStop() {
			if e := m.vm.Stop(); e != nil {
				err = fmt.Errorf("stop vm: %w", e)
			}
		}
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
			if err == nil {
				err = errors.New("stop vm: it did not stop within 10s")
			}
		}
		m.closeConn()
	})
	return err
}
