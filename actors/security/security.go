// Package security turns a container's --security-opt and --privileged
// into what its processes run under: the seccomp filter (Docker's default
// profile, a profile the client sent, or none), no_new_privs, and whether
// the sandbox's boundary filter goes on top. The words and errors are
// dockerd's (daemon/daemon_unix.go parseSecurityOpt,
// daemon/seccomp_linux.go WithSeccomp).
package security

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/arcavm/arca/guest/seccomp"
	"github.com/arcavm/arca/guest/wire"
)

// Seccomp profile names dockerd takes besides a JSON profile.
const (
	ProfileDefault    = "builtin"
	ProfileUnconfined = "unconfined"
)

// Options is what --security-opt asked for.
type Options struct {
	// Seccomp is "" (the daemon's default: builtin), "builtin",
	// "unconfined", or a JSON profile: the CLI reads the file and sends
	// its text.
	Seccomp         string
	NoNewPrivileges bool
	// AppArmor and Labels are accepted and kept, as by a dockerd on a host
	// without AppArmor or SELinux: a VM or the sandbox has neither.
	AppArmor string
	Labels   []string
}

// Parse reads HostConfig.SecurityOpt as dockerd does: "no-new-privileges"
// alone, or key=value (key:value, deprecated, still taken) for label,
// apparmor, seccomp, no-new-privileges and writable-cgroups.
func Parse(opts []string) (Options, error) {
	var o Options
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			o.NoNewPrivileges = true
			continue
		}
		if opt == "disable" {
			o.Labels = append(o.Labels, "disable")
			continue
		}
		var k, v string
		var ok bool
		if strings.Contains(opt, "=") {
			k, v, ok = strings.Cut(opt, "=")
		} else if strings.Contains(opt, ":") {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return Options{}, fmt.Errorf("invalid --security-opt 1: %q", opt)
		}
		switch k {
		case "label":
			o.Labels = append(o.Labels, v)
		case "apparmor":
			o.AppArmor = v
		case "seccomp":
			o.Seccomp = v
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Options{}, fmt.Errorf("invalid --security-opt 2: %q", opt)
			}
			o.NoNewPrivileges = b
		case "writable-cgroups":
			// Taken as dockerd takes it; the agent mounts cgroups as it
			// always does.
			if _, err := strconv.ParseBool(v); err != nil {
				return Options{}, fmt.Errorf("invalid --security-opt 2: %q", opt)
			}
		default:
			return Options{}, fmt.Errorf("invalid --security-opt 2: %q", opt)
		}
	}
	return o, nil
}

// Check is the create-time validation: the options parse and a JSON
// profile decodes (dockerd finds a bad profile only at start; a 400 at
// create is kinder).
func Check(hc *container.HostConfig) error {
	if hc == nil {
		return nil
	}
	o, err := Parse(hc.SecurityOpt)
	if err != nil {
		return err
	}
	if hc.Privileged {
		return nil
	}
	_, err = resolve(o.Seccomp, nil)
	return err
}

// Apply fills p's Seccomp, NoNewPrivileges and Confine from the
// container's host config. caps are the container's capabilities as
// ProcessSpec names them (nil is Docker's default set, "ALL" every one):
// profile rules with includes.caps or excludes.caps follow them. An exec
// passes its container's caps even when --privileged: like runc exec, it
// runs under the container's filter. sandbox is true when the daemon's
// driver shares the host's kernel.
func Apply(p *wire.ProcessSpec, hc *container.HostConfig, caps []string, sandbox bool) error {
	if hc == nil {
		hc = &container.HostConfig{}
	}
	o, err := Parse(hc.SecurityOpt)
	if err != nil {
		return err
	}
	p.NoNewPrivileges = o.NoNewPrivileges
	// --privileged is unconfined in dockerd whatever the options say; on
	// the sandbox it is also the one way out of the boundary.
	p.Confine = sandbox && !hc.Privileged
	p.Seccomp, p.SeccompProgram = nil, nil
	if hc.Privileged {
		return nil
	}
	if p.Seccomp, err = resolve(o.Seccomp, caps); err != nil {
		return err
	}
	// Compiled here, at native speed, for a guest of the daemon's own
	// architecture (the agent compiles for any other). A profile the
	// compiler refuses is left to the agent, which fails the start with
	// the same words.
	p.SeccompProgram, _ = seccomp.Compile(p.Seccomp)
	return nil
}

// resolve turns the seccomp option into a filter for a process with caps.
func resolve(profile string, caps []string) (*specs.LinuxSeccomp, error) {
	if profile == ProfileUnconfined {
		return nil, nil
	}
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: bounding(caps)}}}
	if profile == "" || profile == ProfileDefault {
		return defaultProfile(rs)
	}
	return loadProfile(profile, rs)
}

// bounding spells caps as the profile's includes and excludes do.
func bounding(caps []string) []string {
	if caps == nil {
		caps = wire.DefaultCapabilities
	}
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		c = strings.TrimPrefix(strings.ToUpper(c), "CAP_")
		if c == "ALL" {
			return append([]string(nil), allCaps...)
		}
		out = append(out, "CAP_"+c)
	}
	return out
}

// allCaps is every capability Linux has (up to CAP_CHECKPOINT_RESTORE, 40),
// what --privileged and --cap-add ALL grant.
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}
