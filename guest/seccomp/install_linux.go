package seccomp

import (
	"fmt"

	sbpf "github.com/elastic/go-seccomp-bpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Install compiles f and loads it into the calling process, on every one
// of its threads (SECCOMP_FILTER_FLAG_TSYNC), for good: filters survive
// execve and can never be removed. A nil f installs nothing.
//
// The caller needs CAP_SYS_ADMIN or no_new_privs set; the filter must
// allow every syscall the caller makes between Install and execve (Docker's
// profile and Boundary do for capset, setgroups, setuid, execve...).
// Install the Boundary and the process's own filter in either order: each
// is a separate filter and the kernel applies both. f may compile to
// several filters, loaded one by one: after an error some may be in
// place, and the process must not go on to execve.
func Install(f *specs.LinuxSeccomp) error {
	c, err := compile(f)
	if err != nil {
		return err
	}
	for _, p := range c.policies {
		err := sbpf.LoadFilter(sbpf.Filter{
			Flag:   sbpf.FilterFlagTSync | c.flags,
			Policy: p,
		})
		if err != nil {
			return fmt.Errorf("install seccomp: %w", err)
		}
	}
	return nil
}
