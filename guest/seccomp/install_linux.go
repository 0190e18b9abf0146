package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/guest/wire"
)

// Install compiles f and loads it into the calling process (Load). A nil
// f installs nothing.
func Install(f *specs.LinuxSeccomp) error {
	p, err := Compile(f)
	if err != nil {
		return err
	}
	return Load(p)
}

// Load installs p's filters in the calling process, on every one of its
// threads (SECCOMP_FILTER_FLAG_TSYNC), for good: filters survive execve
// and can never be removed. A nil p installs nothing.
//
// The caller needs CAP_SYS_ADMIN or no_new_privs set; the filter must
// allow every syscall the caller makes between Load and execve (Docker's
// profile and Boundary do for capset, setgroups, setuid, execve...).
// Load the Boundary and the process's own filter in either order: each
// is a separate filter and the kernel applies both. A program may hold
// several filters, loaded one by one: after an error some may be in
// place, and the process must not go on to execve.
func Load(p *wire.SeccompProgram) error {
	if p == nil {
		return nil
	}
	filters, err := decode(p)
	if err != nil {
		return fmt.Errorf("install seccomp: %w", err)
	}
	for _, raw := range filters {
		f := make([]unix.SockFilter, len(raw))
		for i, r := range raw {
			f[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
		}
		prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
		tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
			uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC|p.Flags), uintptr(unsafe.Pointer(&prog)))
		runtime.KeepAlive(f)
		if errno != 0 {
			return fmt.Errorf("install seccomp: %w", errno)
		}
		if tid != 0 {
			// TSYNC names the thread it could not bring along.
			return fmt.Errorf("install seccomp: thread %d cannot take the filter", tid)
		}
	}
	return nil
}
