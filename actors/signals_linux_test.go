package actors

import (
	"syscall"
	"testing"
)

// The written-out table must be Linux's own numbers.
func TestSignalNamesAreLinux(t *testing.T) {
	want := map[string]syscall.Signal{
		"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS, "CHLD": syscall.SIGCHLD,
		"CONT": syscall.SIGCONT, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP, "ILL": syscall.SIGILL,
		"INT": syscall.SIGINT, "IO": syscall.SIGIO, "KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE,
		"PROF": syscall.SIGPROF, "PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV,
		"STOP": syscall.SIGSTOP, "SYS": syscall.SIGSYS, "TERM": syscall.SIGTERM, "TRAP": syscall.SIGTRAP,
		"TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG,
		"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "VTALRM": syscall.SIGVTALRM, "WINCH": syscall.SIGWINCH,
		"XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
	}
	if len(signalNames) != len(want) {
		t.Errorf("%d names, want %d", len(signalNames), len(want))
	}
	for name, sig := range want {
		if got, ok := signalNames[name]; !ok || got != sig {
			t.Errorf("%s = %d (present %v), want %d", name, got, ok, sig)
		}
	}
}
