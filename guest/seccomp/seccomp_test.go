package seccomp

import (
	"runtime"
	"strings"
	"testing"

	sbpf "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestBoundary(t *testing.T) {
	b := Boundary()
	tests := []struct {
		call call
		want sbpf.Action
	}{
		{call{name: "read"}, allow},
		{call{name: "ptrace"}, allow},
		{call{name: "unshare"}, allow},
		{call{name: "mount"}, eperm},
		{call{name: "umount2"}, eperm},
		{call{name: "finit_module"}, eperm},
		{call{name: "init_module"}, eperm},
		{call{name: "open_by_handle_at"}, eperm},
		{call{name: "fsopen"}, eperm},
		{call{name: "move_mount"}, eperm},
		{call{name: "bpf"}, eperm},
		{call{name: "keyctl"}, eperm},
		{call{name: "userfaultfd"}, eperm},
		{call{name: "clock_settime"}, eperm},
		{call{name: "pivot_root"}, eperm},
		{call{name: "fanotify_init"}, eperm},
		{call{name: "ioctl", args: [6]uint64{3, ioctlFIFREEZE}}, eperm},
		{call{name: "ioctl", args: [6]uint64{3, ioctlFITHAW}}, eperm},
		{call{name: "ioctl", args: [6]uint64{1, 0x5401}}, allow}, // TCGETS
	}
	for _, tt := range tests {
		if got := decide(t, b, tt.call); got != tt.want {
			t.Errorf("%s: got %v (%#x), want %v (%#x)", tt.call.name, got, uint32(got), tt.want, uint32(tt.want))
		}
	}
}

// A permissive filter from the library lets a foreign ABI through
// unfiltered; the native-only filter loaded with it must not.
func TestBoundaryForeignABI(t *testing.T) {
	var foreign *arch.Info
	switch runtime.GOARCH {
	case "amd64":
		foreign = arch.I386
	case "arm64":
		foreign = arch.ARM
	default:
		t.Skip("no foreign ABI known for", runtime.GOARCH)
	}
	for _, name := range []string{"mount", "read"} {
		if got := decide(t, Boundary(), call{abi: foreign, name: name}); got&actionMask != sbpf.ActionErrno {
			t.Errorf("%s %s: got %v, want a refusal", foreign.Name, name, got)
		}
	}
	if runtime.GOARCH == "amd64" {
		if got := decide(t, Boundary(), call{abi: arch.X32, name: "mount"}); got != errno(errnoENOSYS) {
			t.Errorf("x32 mount: got %#x, want ENOSYS", uint32(got))
		}
	}
}

func TestCompileRules(t *testing.T) {
	f := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "no_such_syscall"}, Action: specs.ActAllow},
			{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uptr(13)},
			// A rule that is the default changes nothing.
			{Names: []string{"getppid"}, Action: specs.ActErrno},
			// A deny and an allow for one syscall: the deny wins.
			{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: uptr(5),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 99, Op: specs.OpEqualTo}}},
			{Names: []string{"personality"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpEqualTo}}},
			{Names: []string{"personality"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
			{Names: []string{"socket"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 40, Op: specs.OpNotEqual}}},
			{Names: []string{"dup"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, Op: specs.OpLessThan}}},
			{Names: []string{"setpgid"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, Op: specs.OpLessEqual}}},
			{Names: []string{"dup3"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1 << 33, Op: specs.OpGreaterThan}}},
			{Names: []string{"close"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, Op: specs.OpGreaterEqual}}},
			// (flags & 0xf0) == 0x30
			{Names: []string{"fcntl"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xf0, ValueTwo: 0x30, Op: specs.OpMaskedEqual}}},
			// Never matches: wants bits outside the mask.
			{Names: []string{"lseek"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xf0, ValueTwo: 0x100, Op: specs.OpMaskedEqual}}},
			{Names: []string{"sendfile"}, Action: specs.ActAllow},
			{Names: []string{"kill"}, Action: specs.ActKillProcess},
			{Names: []string{"tkill"}, Action: specs.ActTrap},
			{Names: []string{"tgkill"}, Action: specs.ActLog},
		},
	}
	tests := []struct {
		call call
		want sbpf.Action
	}{
		{call{name: "read"}, allow},
		{call{name: "write", args: [6]uint64{1}}, allow},
		{call{name: "write", args: [6]uint64{99}}, errno(5)},
		{call{name: "getpid"}, errno(13)},
		{call{name: "getppid"}, eperm},
		{call{name: "openat"}, eperm},
		{call{name: "personality", args: [6]uint64{0}}, allow},
		{call{name: "personality", args: [6]uint64{0xffffffff}}, allow},
		{call{name: "personality", args: [6]uint64{8}}, eperm},
		{call{name: "personality", args: [6]uint64{1 << 32}}, eperm},
		// The library's programs compare a syscall number against the
		// last argument word loaded after a failed comparison: 41 is
		// socket and 40 sendfile on x86_64.
		{call{name: "personality", args: [6]uint64{41}}, eperm},
		{call{name: "personality", args: [6]uint64{40}}, eperm},
		{call{name: "socket", args: [6]uint64{2}}, allow},
		{call{name: "socket", args: [6]uint64{40}}, eperm},
		{call{name: "socket", args: [6]uint64{40 | 1<<32}}, allow},
		{call{name: "dup", args: [6]uint64{2}}, allow},
		{call{name: "dup", args: [6]uint64{3}}, eperm},
		{call{name: "setpgid", args: [6]uint64{3}}, allow},
		{call{name: "setpgid", args: [6]uint64{1 << 32}}, eperm},
		{call{name: "dup3", args: [6]uint64{1 << 33}}, eperm},
		{call{name: "dup3", args: [6]uint64{1<<33 + 1}}, allow},
		{call{name: "close", args: [6]uint64{2}}, eperm},
		{call{name: "close", args: [6]uint64{3}}, allow},
		{call{name: "fcntl", args: [6]uint64{0, 0x30}}, allow},
		{call{name: "fcntl", args: [6]uint64{0, 0x3f | 0x100}}, allow},
		{call{name: "fcntl", args: [6]uint64{0, 0x70}}, eperm},
		{call{name: "fcntl", args: [6]uint64{0, 0x20}}, eperm},
		{call{name: "lseek", args: [6]uint64{0, 0x100}}, eperm},
		{call{name: "kill"}, sbpf.ActionKillProcess},
		{call{name: "tkill"}, sbpf.ActionTrap},
		{call{name: "tgkill"}, sbpf.ActionLog},
	}
	for _, tt := range tests {
		if got := decide(t, f, tt.call); got != tt.want {
			t.Errorf("%s%v: got %#x, want %#x", tt.call.name, tt.call.args[:2], uint32(got), uint32(tt.want))
		}
	}
}

// A permissive profile with conditional refusals: the refusal only where
// its comparison holds.
func TestCompileAllowDefault(t *testing.T) {
	f := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: uptr(97),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 40, Op: specs.OpEqualTo}}},
			{Names: []string{"clone"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x10000000, ValueTwo: 0x10000000, Op: specs.OpMaskedEqual}}},
			{Names: []string{"reboot"}, Action: specs.ActKillProcess},
		},
	}
	tests := []struct {
		call call
		want sbpf.Action
	}{
		{call{name: "read"}, allow},
		{call{name: "socket", args: [6]uint64{2}}, allow},
		{call{name: "socket", args: [6]uint64{40}}, errno(97)},
		{call{name: "clone", args: [6]uint64{0x11}}, allow},
		{call{name: "clone", args: [6]uint64{0x10000011}}, eperm},
		{call{name: "reboot"}, sbpf.ActionKillProcess},
	}
	for _, tt := range tests {
		if got := decide(t, f, tt.call); got != tt.want {
			t.Errorf("%s%v: got %#x, want %#x", tt.call.name, tt.call.args[:1], uint32(got), uint32(tt.want))
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		f    *specs.LinuxSeccomp
		want string
	}{
		{"notify", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActNotify}}}, "SCMP_ACT_NOTIFY"},
		{"bad default", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_MAYBE"}, "unknown action"},
		{"bad op", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_ABOUT"}}}}}, "unknown comparison"},
		{"bad index", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "out of range"},
		{"bad flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NOPE"}}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Programs(tt.f)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestCompileEmpty(t *testing.T) {
	if progs, err := Programs(nil); err != nil || len(progs) != 0 {
		t.Fatalf("nil: %v, %v", progs, err)
	}
	f := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	if got := decide(t, f, call{name: "read"}); got != eperm {
		t.Fatalf("read: got %#x", uint32(got))
	}
}
