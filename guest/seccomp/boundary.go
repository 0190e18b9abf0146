package seccomp

import specs "github.com/opencontainers/runtime-spec/specs-go"

// boundaryGroups are the syscalls the sandbox refuses whatever the
// capabilities. In a VM each of them acts on the container's own kernel;
// on the sandbox driver the container shares the host's kernel, and each
// acts on the host as a whole, so CAP_SYS_ADMIN & co. in a container must
// not be enough.
var boundaryGroups = []struct {
	why   string
	names []string
}{
	{"kernel code: loading, unloading or replacing the kernel or its modules runs code in the host kernel",
		[]string{"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
			"create_module", "get_kernel_syms", "query_module", "uselib"}},
	{"raw hardware and escapes: I/O ports are the host's devices; open_by_handle_at opens any file of a mounted filesystem by handle, outside the container's root (the shocker escape)",
		[]string{"iopl", "ioperm", "open_by_handle_at", "vm86", "vm86old"}},
	{"mounts: the container's mounts are the agent's to make; a mount or pivot_root from inside could reach host filesystems, devices or the agent's own mounts",
		[]string{"mount", "umount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick",
			"move_mount", "open_tree", "mount_setattr", "pivot_root"}},
	{"host-wide state: swap, the clocks, the kernel log, process accounting, quotas and nfsd are one per host kernel",
		[]string{"swapon", "swapoff", "settimeofday", "clock_settime", "clock_settime64",
			"clock_adjtime", "clock_adjtime64", "adjtimex", "stime", "syslog", "acct",
			"quotactl", "quotactl_fd", "nfsservctl", "_sysctl", "lookup_dcookie"}},
	{"kernel attack surface shared with the host: BPF programs and perf events run in or observe the host kernel; keyrings are not namespaced (a key is visible host-wide to its uid); userfaultfd makes kernel races easy to win, and nothing in a container needs it",
		[]string{"bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd"}},
	{"whole filesystems: fanotify with CAP_SYS_ADMIN watches a mount or a filesystem and hands out open descriptors of every file accessed on it, so a volume on the host's root filesystem would give the host's files",
		[]string{"fanotify_init", "fanotify_mark"}},
}

// Linux's FIFREEZE and FITHAW ioctls: with CAP_SYS_ADMIN, freezing a
// volume's filesystem would freeze the host's (a bind or a named volume
// lies on it).
const (
	ioctlFIFREEZE = 0xC0045877
	ioctlFITHAW   = 0xC0045878
)

// Boundary is the sandbox's confinement filter: everything allowed but the
// syscalls above, which get EPERM. The agent installs it on top of the
// process's own filter (ProcessSpec.Confine); the kernel keeps the most
// restrictive answer of the two, so it only ever takes away. ptrace is not
// in it: the container's processes see no process of the host or of the
// agent to trace.
func Boundary() *specs.LinuxSeccomp {
	eperm := uint(errnoEPERM)
	var names []string
	for _, g := range boundaryGroups {
		names = append(names, g.names...)
	}
	syscalls := []specs.LinuxSyscall{{Names: names, Action: specs.ActErrno, ErrnoRet: &eperm}}
	for _, req := range []uint64{ioctlFIFREEZE, ioctlFITHAW} {
		syscalls = append(syscalls, specs.LinuxSyscall{
			Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: req, Op: specs.OpEqualTo}},
		})
	}
	return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: syscalls}
}
