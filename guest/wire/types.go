// Package wire is the protocol between the host and the agent that runs as
// PID 1 inside every machine. One yamux session runs over the machine's byte
// stream: the host is the yamux client, the agent the server. Each call opens
// a stream, writes one request frame and reads one response frame; a
// process's stdin, stdout and stderr each get their own stream, and its exit
// status arrives on the stream that started it.
//
// The host side is Client; the agent side is Serve with a Handler.
package wire

import (
	"os"
	"time"

	"github.com/arcavm/arca/guest/vm"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ProtocolVersion changes whenever a host and an agent of different versions
// could misunderstand each other. Ping fails on a mismatch.
const ProtocolVersion = 1

// SetupRequest prepares the container inside the machine: its root
// filesystem, the kernel filesystems in it and the files Docker provides.
type SetupRequest struct {
	Rootfs   vm.RootfsSpec `json:"rootfs"`
	Hostname string        `json:"hostname"`
	// Hosts becomes /etc/hosts; nil gives a loopback-only file.
	Hosts []byte `json:"hosts"`
	// ResolvConf becomes /etc/resolv.conf; nil leaves the image's file
	// (an empty slice gives an empty file).
	ResolvConf []byte `json:"resolvConf"`
	// Mounts go on the root after it is mounted, before the container's
	// /etc files are provided.
	Mounts []Mount `json:"mounts,omitempty"`
	// ReadonlyRootfs makes the container's root read-only once its mounts
	// and /etc files are in place (--read-only), as runc does; volumes,
	// binds, tmpfs mounts and /dev, /dev/shm, /proc keep their own modes.
	ReadonlyRootfs bool `json:"readonlyRootfs,omitempty"`
	// ShmSize is the size of /dev/shm in bytes (--shm-size); 0 is
	// Docker's 64 MiB.
	ShmSize int64 `json:"shmSize,omitempty"`
	// PidsLimit is pids.max of the container's cgroup (--pids-limit);
	// 0 is no limit.
	PidsLimit int64 `json:"pidsLimit,omitempty"`
	// Privileged is --privileged: as runc does for dockerd, /sys is
	// writable and nothing in /proc or /sys is masked, and the main
	// process gets a cgroup namespace of its own with cgroup2 mounted
	// writable at /sys/fs/cgroup (nested container runtimes need it);
	// its execs join that namespace.
	Privileged bool `json:"privileged,omitempty"`
}

// ProcessSpec is a process to start in the container: its main process or
// an exec.
type ProcessSpec struct {
	// ID names the process for Signal and Resize; unique per machine.
	ID   string   `json:"id"`
	Args []string `json:"args"`
	// Env is passed as given, plus HOME from the user's passwd entry when
	// absent and TERM=xterm with a tty when absent.
	Env []string `json:"env,omitempty"`
	// Cwd is created if missing, as Docker does for WorkingDir; "" is /.
	Cwd string `json:"cwd,omitempty"`
	// User is "", "uid", "name", "uid:gid", "name:group" and so on, looked up
	// in the container's /etc/passwd and /etc/group.
	User string `json:"user,omitempty"`
	// Tty gives the process a pty; Stdout then carries everything.
	Tty bool `json:"tty,omitempty"`
	// Stdin attaches a stdin stream; without it stdin is /dev/null.
	Stdin bool `json:"stdin,omitempty"`
	// Main marks the container's main process: when it exits every other
	// process in the container is killed, as when a pid namespace dies.
	Main bool `json:"main,omitempty"`
	// ConsoleSize is the pty's initial size; zero keeps the kernel's.
	ConsoleSize WindowSize `json:"consoleSize,omitzero"`
	// Capabilities bounds what the process may ever hold, by name
	// ("CAP_NET_ADMIN", "NET_ADMIN" or "ALL"); nil is Docker's default set,
	// empty is none.
	// The host folds CapAdd, CapDrop and Privileged into it.
	Capabilities []string `json:"capabilities"`
	// Seccomp is the filter the process runs under, as the host resolved
	// it (Docker's default profile or --security-opt seccomp=FILE, for the
	// process's capabilities); nil runs it unconfined.
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`
	// SeccompProgram is Seccomp compiled by the host for its own
	// architecture (guest/seccomp.Compile). A guest of that architecture
	// loads it as it is; compiling Docker's profile in every process's
	// stage cost ~70 ms of a start under emulation (TCG). A guest of
	// another architecture compiles Seccomp itself.
	SeccompProgram *SeccompProgram `json:"seccompProgram,omitempty"`
	// Confine stacks the sandbox's boundary filter (guest/seccomp) on top:
	// the syscalls that reach the host kernel as a whole, refused whatever
	// the capabilities. The host sets it on the sandbox driver, where the
	// container shares the host's kernel, unless the container is
	// privileged.
	Confine bool `json:"confine,omitempty"`
	// NoNewPrivileges sets no_new_privs: setuid files and file
	// capabilities grant nothing (--security-opt no-new-privileges).
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// Rlimits are set before the process starts (--ulimit); the rest are
	// inherited from the agent.
	Rlimits []Rlimit `json:"rlimits,omitempty"`
}

// Rlimit is one resource limit, by Docker's name without the RLIMIT_
// prefix ("nofile", "nproc", ...).
type Rlimit struct {
	Name string `json:"name"`
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
}

// WindowSize is a terminal size in characters.
type WindowSize struct {
	Height uint16 `json:"height"`
	Width  uint16 `json:"width"`
}

// ExitStatus is how a process ended. A process killed by signal N has
// Signal N and Code 128+N, as Docker reports it.
type ExitStatus struct {
	Code      int  `json:"code"`
	Signal    int  `json:"signal,omitempty"`
	OOMKilled bool `json:"oomKilled,omitempty"`
}

// DefaultCapabilities is Docker's default capability set for a container,
// without the "CAP_" prefix.
var DefaultCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}

// KnownCapabilities are the capabilities the kernel defines (to
// CAP_CHECKPOINT_RESTORE, 40), in number order, without "CAP_": what
// CapAdd and CapDrop may name. The host refuses any other at create.
var KnownCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
	"SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
	"NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
	"SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
	"AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// ExportKind says what Export sends.
type ExportKind string

const (
	// ExportRootfs is the container's whole filesystem as docker export
	// gives it: the image's layers and the writable layer merged, without
	// the mounts made over it (/proc, /sys, /dev, volumes, binds).
	ExportRootfs ExportKind = "rootfs"
	// ExportLayer is the writable layer as an image layer: what it adds
	// or changes, and a ".wh." entry for each deletion, as docker commit
	// makes one.
	ExportLayer ExportKind = "layer"
)

// Change is a path of the container's filesystem that differs from its
// image, as docker diff lists it.
type Change struct {
	Path string     `json:"path"`
	Kind ChangeKind `json:"kind"`
}

// ChangeKind is numbered as Docker's FilesystemChange.Kind.
type ChangeKind uint8

const (
	ChangeModified ChangeKind = 0
	ChangeAdded    ChangeKind = 1
	ChangeDeleted  ChangeKind = 2
)

// DiskUsage is what the container's writable layer holds: the bytes of
// its files (each hard-linked file once), as dockerd counts SizeRw.
type DiskUsage struct {
	WritableBytes int64 `json:"writableBytes"`
}

// Stats is one sample of the container's resource use, with what Docker's
// stats JSON needs. Counters are cumulative; the host computes rates from
// two samples, as Docker clients do.
type Stats struct {
	Read time.Time `json:"read"`
	// CPU time used by the container's processes, in nanoseconds.
	CPUTotal  uint64   `json:"cpuTotal"`
	CPUUser   uint64   `json:"cpuUser"`
	CPUSystem uint64   `json:"cpuSystem"`
	PerCPU    []uint64 `json:"perCPU,omitempty"` // only where the kernel gives it cheaply
	// SystemCPU is the whole machine's CPU time from /proc/stat, in
	// nanoseconds, as Docker's system_cpu_usage.
	SystemCPU  uint64 `json:"systemCPU"`
	OnlineCPUs uint32 `json:"onlineCPUs"`
	// Memory: Usage is what the cgroup charges (memory.current); Docker's
	// CLI shows Usage minus Stats["inactive_file"]. Limit is the cgroup's
	// limit, or the machine's memory when there is none.
	MemoryUsage uint64                  `json:"memoryUsage"`
	MemoryLimit uint64                  `json:"memoryLimit"`
	MemoryStats map[string]uint64       `json:"memoryStats,omitempty"`
	PidsCurrent uint64                  `json:"pidsCurrent"`
	PidsLimit   uint64                  `json:"pidsLimit,omitempty"` // 0: none
	Networks    map[string]NetworkStats `json:"networks,omitempty"`
	BlkioRead   uint64                  `json:"blkioRead"`
	BlkioWrite  uint64                  `json:"blkioWrite"`
	// Blkio lists per device, as Docker's io_service_bytes_recursive.
	Blkio []BlkioEntry `json:"blkio,omitempty"`
}

// NetworkStats are one interface's counters from the guest's /proc/net/dev.
type NetworkStats struct {
	RxBytes   uint64 `json:"rxBytes"`
	RxPackets uint64 `json:"rxPackets"`
	RxErrors  uint64 `json:"rxErrors"`
	RxDropped uint64 `json:"rxDropped"`
	TxBytes   uint64 `json:"txBytes"`
	TxPackets uint64 `json:"txPackets"`
	TxErrors  uint64 `json:"txErrors"`
	TxDropped uint64 `json:"txDropped"`
}

// BlkioEntry is one device's byte count for one operation ("read" or
// "write"), as Docker's BlkioStatEntry.
type BlkioEntry struct {
	Major uint64 `json:"major"`
	Minor uint64 `json:"minor"`
	Op    string `json:"op"`
	Value uint64 `json:"value"`
}

// TopResult is a process list as `docker top` shows it.
type TopResult struct {
	Titles    []string   `json:"titles"`
	Processes [][]string `json:"processes"`
}

// PathStat describes a path in the container as Docker's
// X-Docker-Container-Path-Stat header does. Mode carries Go's os.FileMode
// bits, which is what Docker sends.
type PathStat struct {
	Name       string      `json:"name"`
	Size       int64       `json:"size"`
	Mode       os.FileMode `json:"mode"`
	Mtime      time.Time   `json:"mtime"`
	LinkTarget string      `json:"linkTarget"`
}

// ArchivePutOptions are Docker's extract-to-dir options.
type ArchivePutOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory from the archive, or the other way round.
	NoOverwriteDirNonDir bool `json:"noOverwriteDirNonDir,omitempty"`
	// CopyUIDGID (docker cp -a) makes every extracted file owned by User,
	// the container's configured user, as dockerd does; without it the
	// archive's own uid and gid are kept.
	CopyUIDGID bool   `json:"copyUIDGID,omitempty"`
	User       string `json:"user,omitempty"`
}

// NetworkConfig is the whole network state of a machine. Each
// ConfigureNetwork call replaces the one before: the agent creates what is
// new, updates what changed and removes what is no longer listed, so the
// host can always send the full picture.
type NetworkConfig struct {
	// Underlay is the machine's link to the daemon's underlay bridge, which
	// carries the WireGuard traffic between machines. Nil: no underlay (a
	// container with no networks).
	Underlay *UnderlayConfig `json:"underlay,omitempty"`
	// Interfaces are the container's networks, one WireGuard device each,
	// in the order Docker would name them (eth0 first).
	Interfaces []Interface `json:"interfaces,omitempty"`
	// DNS is what the resolver at 127.0.0.11 answers.
	DNS DNSConfig `json:"dns"`
}

// UnderlayConfig names the machine's underlay link by hardware address
// (the driver made it; its name in the guest is not known) and the address
// to give it.
type UnderlayConfig struct {
	MAC     string `json:"mac"`     // "02:..."
	Name    string `json:"name"`    // renamed to this, e.g. "arca0"
	Address string `json:"address"` // CIDR, e.g. "198.18.0.5/16"
	MTU     int    `json:"mtu,omitempty"`
}

// Interface is one Docker network as the container sees it: a WireGuard
// device with the container's address on that network and every other
// member as a peer.
type Interface struct {
	Name       string `json:"name"`       // "eth0", "eth1", ...
	PrivateKey string `json:"privateKey"` // base64, as wgtypes.Key.String
	ListenPort int    `json:"listenPort"` // UDP port on the underlay
	Address    string `json:"address"`    // CIDR, e.g. "172.18.0.2/16"
	MTU        int    `json:"mtu,omitempty"`
	// Gateway, when set, is the default route's next hop through this
	// interface (only one interface carries it).
	Gateway string `json:"gateway,omitempty"`
	Peers   []Peer `json:"peers"`
}

// Peer is another member of the same network.
type Peer struct {
	PublicKey  string   `json:"publicKey"`  // base64
	Endpoint   string   `json:"endpoint"`   // underlay "ip:port"
	AllowedIPs []string `json:"allowedIPs"` // CIDRs, e.g. "172.18.0.3/32"
}

// DNSConfig is the embedded resolver's table. Names are matched without
// regard to case and with or without a trailing dot.
type DNSConfig struct {
	Records []DNSRecord `json:"records,omitempty"`
	// Forward sends names not in Records on to Servers; without it they
	// get NXDOMAIN.
	Forward bool `json:"forward,omitempty"`
	// Servers are the resolvers ("ip:port") a forwarded query goes to, in
	// order, from the container's network: the gateway of its default
	// network (the host answers there with its own resolvers) or the
	// servers given with --dns. None: forwarded names get SERVFAIL.
	Servers []string `json:"servers,omitempty"`
	// Off: no resolver at 127.0.0.11 at all (host networking, whose
	// resolv.conf names the host's resolvers).
	Off bool `json:"off,omitempty"`
}

// DNSRecord maps a name (container name, alias, service name, short ID)
// to the addresses it has on the networks the querier shares with it.
type DNSRecord struct {
	Name string   `json:"name"`
	IPs  []string `json:"ips"`
}

// Mount is a filesystem the agent mounts into the container after its
// root, in the order given.
type Mount struct {
	Type   string `json:"type"`   // "bind" or "tmpfs"
	Source string `json:"source"` // bind: a path the agent sees (a host path in the sandbox)
	Target string `json:"target"` // inside the container
	// ReadOnly binds are remounted read-only.
	ReadOnly bool `json:"readOnly,omitempty"`
	// CopyUp: when Source is an empty directory, first copy what the image
	// has at Target into it (Docker's rule for a volume's first use).
	CopyUp  bool   `json:"copyUp,omitempty"`
	Options string `json:"options,omitempty"` // tmpfs mount options
}

// SeccompProgram is a seccomp filter compiled to BPF: the filters to load
// in order, each with Flags (and TSYNC), for the architecture Arch
// (GOARCH; the syscall numbers and the audit architecture are its).
type SeccompProgram struct {
	Arch  string `json:"arch"`
	Flags uint32 `json:"flags,omitempty"`
	// Filters are struct sock_filter arrays, 8 bytes an instruction:
	// code (2 bytes), jt, jf, k (4 bytes), little-endian.
	Filters [][]byte `json:"filters"`
}
