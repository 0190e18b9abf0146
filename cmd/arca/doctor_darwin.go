package main

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
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

// hostSummary: "macOS 14.5 (23F79), Apple M2 Pro, 10 cores, 32.0 GiB memory".
func hostSummary() string {
	name := macOutput("sw_vers", "-productName") + " " + macOutput("sw_vers", "-productVersion")
	if b := macOutput("sw_vers", "-buildVersion"); b != "" {
		name += " (" + b + ")"
	}
	mem, _ := strconv.ParseUint(macOutput("sysctl", "-n", "hw.memsize"), 10, 64)
	return formatHost(name, "", macOutput("sysctl", "-n", "machdep.cpu.brand_string"), runtime.NumCPU(), mem)
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
