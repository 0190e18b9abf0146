package seccomp

import (
	"testing"

	sbpf "github.com/elastic/go-seccomp-bpf"
	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

var allCaps = append([]string{
	"CAP_DAC_READ_SEARCH", "CAP_LINUX_IMMUTABLE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_LEASE", "CAP_AUDIT_CONTROL",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}, dockerCaps...)

func defaultProfile(caps []string) (*specs.LinuxSeccomp, error) {
	return profiles.GetDefaultProfile(&specs.Spec{Process: &specs.Process{
		Capabilities: &specs.LinuxCapabilities{Bounding: caps},
	}})
}

func dockerProfile(t *testing.T, caps []string) *specs.LinuxSeccomp {
	t.Helper()
	f, err := defaultProfile(caps)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const (
	cloneNewUser = 0x10000000
	cloneNewNS   = 0x00020000
	sigchld      = 17
)

func TestDockerDefaultProfile(t *testing.T) {
	def := dockerProfile(t, dockerCaps)
	all := dockerProfile(t, allCaps)
	tests := []struct {
		name    string
		f       *specs.LinuxSeccomp
		call    call
		allowed bool
	}{
		{"read", def, call{name: "read"}, true},
		{"write", def, call{name: "write"}, true},
		{"execve", def, call{name: "execve"}, true},
		{"clone(SIGCHLD)", def, call{name: "clone", args: [6]uint64{sigchld}}, true},
		{"clone(NEWUSER)", def, call{name: "clone", args: [6]uint64{cloneNewUser | sigchld}}, false},
		{"clone(NEWNS)", def, call{name: "clone", args: [6]uint64{cloneNewNS | sigchld}}, false},
		{"unshare", def, call{name: "unshare", args: [6]uint64{cloneNewUser}}, false},
		{"mount", def, call{name: "mount"}, false},
		{"umount2", def, call{name: "umount2"}, false},
		{"keyctl", def, call{name: "keyctl"}, false},
		{"add_key", def, call{name: "add_key"}, false},
		{"bpf", def, call{name: "bpf"}, false},
		{"init_module", def, call{name: "init_module"}, false},
		{"reboot", def, call{name: "reboot"}, false},
		{"personality(0)", def, call{name: "personality", args: [6]uint64{0}}, true},
		{"personality(PER_LINUX32)", def, call{name: "personality", args: [6]uint64{8}}, true},
		{"personality(query)", def, call{name: "personality", args: [6]uint64{0xffffffff}}, true},
		{"personality(ADDR_NO_RANDOMIZE)", def, call{name: "personality", args: [6]uint64{0x0040000}}, false},
		{"personality(41)", def, call{name: "personality", args: [6]uint64{41}}, false},
		{"socket(AF_INET)", def, call{name: "socket", args: [6]uint64{2}}, true},
		{"socket(AF_VSOCK)", def, call{name: "socket", args: [6]uint64{40}}, false},
		{"ptrace", def, call{name: "ptrace"}, true},
		{"all caps: mount", all, call{name: "mount"}, true},
		{"all caps: unshare", all, call{name: "unshare"}, true},
		{"all caps: clone(NEWUSER)", all, call{name: "clone", args: [6]uint64{cloneNewUser | sigchld}}, true},
		{"all caps: init_module", all, call{name: "init_module"}, true},
		{"all caps: reboot", all, call{name: "reboot"}, true},
		{"all caps: bpf", all, call{name: "bpf"}, true},
		{"all caps: personality(ADDR_NO_RANDOMIZE)", all, call{name: "personality", args: [6]uint64{0x0040000}}, false},
		// Docker refuses keyctl even to a privileged-by-caps container
		// (keyrings are not namespaced); seccomp=unconfined lifts it.
		{"all caps: keyctl", all, call{name: "keyctl"}, false},
	}
	for _, tt := range tests {
		got := decide(t, tt.f, tt.call)
		if (got == sbpf.ActionAllow) != tt.allowed {
			t.Errorf("%s: got %v (%#x), want allowed=%v", tt.name, got, uint32(got), tt.allowed)
		}
		if !tt.allowed && got != eperm {
			t.Errorf("%s: refused with %#x, want EPERM", tt.name, uint32(got))
		}
	}
	// clone3 gets ENOSYS, so that libc falls back to clone, whose flags
	// the filter can see.
	if got := decide(t, def, call{name: "clone3"}); got != errno(errnoENOSYS) {
		t.Errorf("clone3: got %#x, want ENOSYS", uint32(got))
	}
}
