package main

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func platform() string { return "darwin/" + runtime.GOARCH }

// platformChecks on a Mac: what the Virtualization framework asks of the
// machine and of this binary, and the vz driver's kit. The framework
// itself is checked by the daemon when it starts.
func platformChecks(env doctorEnv) []finding {
	out := []finding{
		macOSFinding(macOutput("sw_vers", "-productVersion")),
		translatedFinding(runtime.GOARCH, macOutput("sysctl", "-n", "sysctl.proc_translated")),
	}
	if exe, err := os.Executable(); err == nil {
		ents, err := exec.Command("codesign", "-d", "--entitlements", "-", exe).CombinedOutput()
		out = append(out, entitlementFinding(exe, string(ents), err))
	}
	return append(out, kitFinding(env.kit, "make kit-install KIT_TARBALL=... (docs/macos.md)"))
}

// macOutput runs one of macOS's tools and returns its output trimmed, ""
// if it failed.
func macOutput(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
