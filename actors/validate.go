package actors

import (
	"fmt"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
)

// Bounds dockerd checks limits against (daemon/daemon_unix.go).
const (
	minMemory      = 6 << 20 // linuxMinMemory
	maxHostnameLen = 64      // HOST_NAME_MAX
	maxCPUShares   = 262144  // the kernel's MAX_SHARES
)

// validateSettings checks what a user asked for in Config and HostConfig
// before anything is stored, as dockerd's verifyContainerSettings does,
// in its words: a bad value is a 400 at create, not a 500 at start.
// update relaxes what an update may leave out (Memory with MemorySwap).
// It normalises as dockerd does: a PidsLimit of 0 or less is no limit.
func validateSettings(cfg *container.Config, hc *container.HostConfig, update bool) error {
	if err := validateConfig(cfg); err != nil {
		return err
	}
	if err := validateStrings(cfg, hc); err != nil {
		return err
	}
	if cfg != nil && len(cfg.Hostname) > maxHostnameLen {
		return messages.InvalidParameter("hostname %q is too long (maximum %d bytes)", cfg.Hostname, maxHostnameLen)
	}
	if hc == nil {
		return nil
	}
	if err := validateCapabilities(hc.CapAdd, "CapAdd"); err != nil {
		return err
	}
	if err := validateCapabilities(hc.CapDrop, "CapDrop"); err != nil {
		return err
	}
	if err := validateResources(&hc.Resources, update); err != nil {
		return err
	}
	if !hc.IpcMode.Valid() {
		return messages.InvalidParameter("invalid IPC mode: %v", hc.IpcMode)
	}
	if !hc.PidMode.Valid() {
		return messages.InvalidParameter("invalid PID mode: %v", hc.PidMode)
	}
	if !hc.UTSMode.Valid() {
		return messages.InvalidParameter("invalid UTS mode: %v", hc.UTSMode)
	}
	if !hc.CgroupnsMode.Valid() {
		return messages.InvalidParameter("invalid cgroup namespace mode: %v", hc.CgroupnsMode)
	}
	if hc.ShmSize < 0 {
		return messages.InvalidParameter("SHM size can not be less than 0")
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return messages.InvalidParameter("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	return nil
}

// validateConfig is dockerd's validateContainerConfig: an absolute
// WorkingDir, a known StopSignal, no variable without a name, health
// check durations of at least 1ms.
func validateConfig(cfg *container.Config) error {
	if cfg == nil {
		return nil
	}
	if cfg.WorkingDir != "" && !path.IsAbs(cfg.WorkingDir) {
		return messages.InvalidParameter("the working directory '%s' is invalid, it needs to be an absolute path", cfg.WorkingDir)
	}
	if cfg.StopSignal != "" {
		if _, err := parseSignal(cfg.StopSignal); err != nil {
			return err
		}
	}
	for _, e := range cfg.Env {
		if k, _, _ := strings.Cut(e, "="); k == "" {
			return messages.InvalidParameter("invalid environment variable: %s", e)
		}
	}
	h := cfg.Healthcheck
	if h == nil {
		return nil
	}
	short := func(d time.Duration) bool { return d != 0 && d < container.MinimumDuration }
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
		if short(f.d) {
			return messages.InvalidParameter("%s in Healthcheck cannot be less than %s", f.name, container.MinimumDuration)
		}
	}
	if h.Retries < 0 {
		return messages.InvalidParameter("Retries in Healthcheck cannot be negative")
	}
	return nil
}

// Linux's PATH_MAX (with its NUL) and NAME_MAX.
const (
	pathMax = 4096
	nameMax = 255
)

// validateStrings refuses, at create, what no syscall takes and would
// fail the start with a 500: a NUL byte in what becomes an argument, a
// variable, a user, a name or a path; a path over PATH_MAX or with a name
// over NAME_MAX; a tmpfs size or mode that does not parse.
func validateStrings(cfg *container.Config, hc *container.HostConfig) error {
	nul := func(what, v string) error {
		if strings.IndexByte(v, 0) >= 0 {
			return messages.InvalidParameter("invalid %s %q: it contains a NUL byte", what, v)
		}
		return nil
	}
	pathOK := func(what, p string) error {
		if err := nul(what, p); err != nil {
			return err
		}
		if len(p) >= pathMax {
			return messages.InvalidParameter("invalid %s: file name too long (%d bytes, at most %d)", what, len(p), pathMax-1)
		}
		for _, n := range strings.Split(p, "/") {
			if len(n) > nameMax {
				return messages.InvalidParameter("invalid %s: file name too long (a name of %d bytes, at most %d)", what, len(n), nameMax)
			}
		}
		return nil
	}
	var errs []error
	if cfg != nil {
		for _, a := range cfg.Entrypoint {
			errs = append(errs, nul("entrypoint", a))
		}
		for _, a := range cfg.Cmd {
			errs = append(errs, nul("command", a))
		}
		for _, e := range cfg.Env {
			errs = append(errs, nul("environment variable", e))
		}
		errs = append(errs, nul("user", cfg.User), nul("hostname", cfg.Hostname), nul("domainname", cfg.Domainname),
			pathOK("working directory", cfg.WorkingDir))
		if len(cfg.Domainname) > maxHostnameLen {
			errs = append(errs, messages.InvalidParameter("domainname %q is too long (maximum %d bytes)", cfg.Domainname, maxHostnameLen))
		}
		for v := range cfg.Volumes {
			errs = append(errs, pathOK("volume path", v))
		}
	}
	if hc != nil {
		for _, b := range hc.Binds {
			errs = append(errs, pathOK("bind", b))
		}
		for _, m := range hc.Mounts {
			errs = append(errs, pathOK("mount source", m.Source), pathOK("mount target", m.Target))
			if m.TmpfsOptions != nil && m.TmpfsOptions.SizeBytes < 0 {
				errs = append(errs, messages.InvalidParameter("invalid tmpfs size %d for %s: it cannot be negative", m.TmpfsOptions.SizeBytes, m.Target))
			}
		}
		for dst, opts := range hc.Tmpfs {
			errs = append(errs, pathOK("tmpfs path", dst), nul("tmpfs options", opts), tmpfsOptions(dst, opts))
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// tmpfsOptions checks --tmpfs's size and mode, which the kernel would
// refuse at start.
func tmpfsOptions(dst, opts string) error {
	for _, o := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "size":
			if strings.HasSuffix(v, "%") {
				if _, err := strconv.ParseUint(strings.TrimSuffix(v, "%"), 10, 32); err == nil {
					continue // a share of memory, as the kernel takes it
				}
			}
			if n, err := units.RAMInBytes(v); err != nil || n < 0 {
				return messages.InvalidParameter("invalid tmpfs option %q for %s: want a size like 64m", o, dst)
			}
		case "mode":
			if _, err := strconv.ParseUint(v, 8, 32); err != nil {
				return messages.InvalidParameter("invalid tmpfs option %q for %s: want an octal mode like 1777", o, dst)
			}
		}
	}
	return nil
}

// validateCapabilities refuses names the kernel does not define, as
// dockerd's NormalizeLegacyCapabilities, in its words.
func validateCapabilities(caps []string, field string) error {
	for _, c := range caps {
		c = strings.ToUpper(c)
		if c == "ALL" {
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !slices.Contains(wire.KnownCapabilities, strings.TrimPrefix(c, "CAP_")) {
			return messages.InvalidParameter("invalid %s: unknown capability: %q", field, c)
		}
	}
	return nil
}

// validateResources is dockerd's verifyPlatformContainerResources for a
// host that has every controller.
func validateResources(r *container.Resources, update bool) error {
	bad := messages.InvalidParameter
	if r.Memory != 0 && r.Memory < minMemory {
		return bad("Minimum memory limit allowed is 6MB")
	}
	if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return bad("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.Memory == 0 && r.MemorySwap > 0 && !update {
		return bad("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemorySwap < -1 {
		// dockerd passes this on and the runtime fails at start.
		return bad("Invalid value %d for memory swap: it is -1 (unlimited) or at least the memory limit", r.MemorySwap)
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness != -1 {
		if s := *r.MemorySwappiness; s < 0 || s > 100 {
			return bad("Invalid value: %v, valid memory swappiness range is 0-100", s)
		}
	}
	if r.MemoryReservation != 0 && r.MemoryReservation < minMemory {
		return bad("Minimum memory reservation allowed is 6MB")
	}
	if r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation {
		return bad("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	if r.PidsLimit != nil && *r.PidsLimit <= 0 {
		// 0 and -1 are "unlimited"; historically any negative value was.
		r.PidsLimit = nil
	}
	if r.NanoCPUs > 0 && r.CPUPeriod > 0 {
		return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	if nc := int64(runtime.NumCPU()); r.NanoCPUs != 0 && (r.NanoCPUs < 0 || r.NanoCPUs > nc*1e9) {
		return bad("range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", nc)
	}
	if r.CPUShares < 0 || r.CPUShares > maxCPUShares {
		// dockerd leaves this to the runtime on Linux; its Windows words.
		return bad("range of CPUShares is from 2 to %d", maxCPUShares)
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return bad("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return bad("Range of blkio weight is from 10 to 1000")
	}
	if r.IOMaximumBandwidth != 0 || r.IOMaximumIOps != 0 {
		return bad("Invalid QoS settings: %s does not support Maximum IO Bandwidth or Maximum IO IOps", runtime.GOOS)
	}
	_, err := rlimits(r.Ulimits)
	return err
}

// rlimits turns --ulimit into what the agent sets, checking each as the
// CLI's parser does (go-units ParseUlimit), in its words: a known name,
// soft no more than hard. -1 is unlimited (RLIM_INFINITY).
func rlimits(ulimits []*container.Ulimit) ([]wire.Rlimit, error) {
	var out []wire.Rlimit
	seen := map[string]int{}
	for _, u := range ulimits {
		if u == nil {
			continue
		}
		if u.Soft < -1 || u.Hard < -1 {
			return nil, messages.InvalidParameter("invalid ulimit %s: a limit is -1 (unlimited) or not negative, got %d:%d", u.Name, u.Soft, u.Hard)
		}
		if _, err := units.ParseUlimit(fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard)); err != nil {
			return nil, messages.InvalidParameter("%v", err)
		}
		rl := wire.Rlimit{Name: u.Name, Soft: uint64(u.Soft), Hard: uint64(u.Hard)}
		if i, ok := seen[u.Name]; ok {
			out[i] = rl // the last one wins, as the runtime applies them in order
			continue
		}
		seen[u.Name] = len(out)
		out = append(out, rl)
	}
	return out, nil
}
