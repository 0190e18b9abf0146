// Package sandbox is the driver for hosts without a hypervisor: each
// machine is the agent in fresh mount, pid, uts, ipc, net and cgroup
// namespaces, with the agent as the namespaces' PID 1. It keeps the VM
// contract: the host reaches the machine only over the agent's stream, and
// all mounts live and die in the machine's own mount namespace.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"github.com/arcavm/arca/guest/vm/hostproc"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/underlay"
	"golang.org/x/sys/unix"
)

// Driver boots sandboxes running the agent binary at agentPath.
type Driver struct {
	agentPath string
	underlay  *underlay.Bridge // nil: machines get no underlay link
	group     string           // where machines' cgroups go; see UseCgroupGroup
}

var _ vm.Driver = (*Driver)(nil)

// New returns a driver that runs the (static, linux) agent at agentPath.
func New(agentPath string) *Driver {
	return &Driver{agentPath: agentPath, group: defaultCgroupGroup}
}

// UseCgroupGroup puts the machines' cgroups under group (say
// "arca/<daemon>"), a path of the daemon's alone, which
// ReleaseStaleCgroups empties after a crash.
func (d *Driver) UseCgroupGroup(group string) { d.group = group }

// UseUnderlay gives machines that ask for one a veth on b.
func (d *Driver) UseUnderlay(b *underlay.Bridge) { d.underlay = b }

// HostPathMounts: the agent shares the host's filesystem view, so binds
// and volumes are plain bind mounts of host paths.
func (d *Driver) HostPathMounts() bool { return true }

// Name implements vm.Driver.
func (d *Driver) Name() string { return "sandbox" }

// Files in a machine's StateDir.
const (
	logFile = "agent.log"
	runDir  = "agent" // the agent mounts its private tmpfs here
)

// Boot implements vm.Driver.
func (d *Driver) Boot(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if spec.StateDir == "" {
		return nil, errors.New("boot sandbox: no state dir")
	}
	if len(spec.Layers) == 0 && spec.RootDir == "" {
		return nil, errors.New("boot sandbox: no layers")
	}
	run := filepath.Join(spec.StateDir, runDir)
	if err := os.MkdirAll(run, 0o700); err != nil {
		return nil, fmt.Errorf("boot sandbox: %w", err)
	}
	logPath := filepath.Join(spec.StateDir, logFile)
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("boot sandbox: %w", err)
	}
	defer log.Close()

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("boot sandbox: socketpair: %w", err)
	}
	agentEnd := os.NewFile(uintptr(fds[1]), "agent-stream")
	defer agentEnd.Close()
	hostEnd := os.NewFile(uintptr(fds[0]), "host-stream")
	conn, err := net.FileConn(hostEnd)
	hostEnd.Close()
	if err != nil {
		return nil, fmt.Errorf("boot sandbox: %w", err)
	}

	cmd := &exec.Cmd{
		Path:       d.agentPath,
		Args:       []string{"arca-agent", "-stream", "fd:3", "-run-dir", run},
		Env:        []string{},
		Stdout:     log,
		Stderr:     log,
		ExtraFiles: []*os.File{agentEnd}, // fd 3
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
				unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP,
			// Unshared rather than cloned: Go then makes every mount
			// private before the agent runs, so not even a buggy agent
			// can propagate a mount to the host.
			Unshareflags: unix.CLONE_NEWNS,
			// The daemon's death takes its machines with it.
			Pdeathsig: unix.SIGKILL,
		},
	}
	// Before the agent starts, so its mount namespace has them.
	disks, err := attachDisks(spec)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("boot sandbox: %w", err)
	}
	cg, err := newMachineCgroup(spec, d.group)
	if err != nil {
		conn.Close()
		detachDisks(disks)
		return nil, fmt.Errorf("boot sandbox: %w", err)
	}
	cgfd, err := cg.open()
	if err != nil {
		conn.Close()
		cg.remove()
		detachDisks(disks)
		return nil, fmt.Errorf("boot sandbox: %w", err)
	}
	if cgfd >= 0 {
		// Born in the machine's cgroup, which its cgroup namespace then
		// makes its root.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cgfd
	}
	err = hostproc.StartOnSteadyThread(cmd)
	if cgfd >= 0 {
		unix.Close(cgfd)
	}
	if err == nil {
		if err = cg.join(cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	var detach func()
	if err == nil && spec.UnderlayMAC != "" {
		if detach, err = d.attachUnderlay(cmd.Process.Pid, spec.UnderlayMAC); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	if err != nil {
		conn.Close()
		cg.remove()
		detachDisks(disks)
		return nil, fmt.Errorf("boot sandbox: start agent: %w", err)
	}
	m := &machine{
		cg:      cg,
		disks:   disks,
		cmd:     cmd,
		detach:  detach,
		conn:    conn,
		logPath: logPath,
		rootfs:  sandboxRootfs(spec),
		done:    make(chan struct{}),
	}
	go m.wait()
	return m, nil
}

// sandboxRootfs is the agent's rootfs: the host's paths as they are,
// since the agent's mount namespace sees the host's.
func sandboxRootfs(spec vm.MachineSpec) vm.RootfsSpec {
	if spec.RootDir != "" {
		return vm.RootfsSpec{Dir: spec.RootDir}
	}
	return vm.RootfsSpec{Lower: topFirst(spec.Layers), Upper: spec.UpperDir, Work: spec.WorkDir}
}

// machine is one running sandbox.
type machine struct {
	cg      *machineCgroup
	cmd     *exec.Cmd
	detach  func() // removes the underlay link; nil without one
	disks   []mountedDisk
	conn    net.Conn
	logPath string
	rootfs  vm.RootfsSpec

	done     chan struct{}
	err      error
	killOnce sync.Once
}

// Conn implements vm.Machine.
func (m *machine) Conn() net.Conn { return m.conn }

// Rootfs implements vm.Machine: the overlay over the host's layer
// directories, which the agent's mount namespace sees as the host does.
func (m *machine) Rootfs() vm.RootfsSpec { return m.rootfs }

// DiskPath implements vm.DiskPaths: the host mounted each disk, and the
// agent sees the host's paths.
func (m *machine) DiskPath(image string) (string, bool) {
	for _, d := range m.disks {
		if d.image == image {
			return d.target, true
		}
	}
	return "", false
}

// Done implements vm.Machine.
func (m *machine) Done() <-chan struct{} { return m.done }

// Err implements vm.Machine: nil after a clean Shutdown, else how the agent
// died (with the end of its log).
func (m *machine) Err() error {
	select {
	case <-m.done:
		return m.err
	default:
		return nil
	}
}

func (m *machine) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// wait records how the agent ended. When the agent (the pid namespace's
// init) dies, the kernel kills every process in the namespace before the
// agent can be reaped, so nothing of the machine outlives this.
func (m *machine) wait() {
	err := m.cmd.Wait()
	if err != nil {
		err = fmt.Errorf("sandbox agent: %w%s", err, logSuffix(hostproc.Tail(m.logPath, 2048)))
	}
	// Its processes are gone with it: the cgroups can go too, before
	// Done says the machine left nothing behind.
	if cerr := m.cg.remove(); cerr != nil && err == nil {
		err = fmt.Errorf("sandbox agent: %w", cerr)
	}
	if m.detach != nil {
		// Gone with the namespace already; this removes the bridge end
		// should the kernel not have done so yet.
		m.detach()
	}
	if derr := detachDisks(m.disks); derr != nil && err == nil {
		err = fmt.Errorf("sandbox agent: %w", derr)
	}
	m.err = err
	close(m.done)
}

// Kill implements vm.Machine.
func (m *machine) Kill() error {
	m.killOnce.Do(func() {
		if !m.exited() {
			// ESRCH only: it exited since the check.
			m.cmd.Process.Kill()
		}
		<-m.done
		m.conn.Close()
	})
	return nil
}

func (d *Driver) attachUnderlay(pid int, mac string) (func(), error) {
	if d.underlay == nil {
		return nil, errors.New("no underlay network on this host")
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return nil, fmt.Errorf("underlay: %w", err)
	}
	return d.underlay.AttachVeth(pid, hw)
}

// topFirst orders layers as overlayfs wants them: the top one first.
func topFirst(layers []string) []string {
	out := slices.Clone(layers)
	slices.Reverse(out)
	return out
}

func logSuffix(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return "; agent log ends: " + s
}
