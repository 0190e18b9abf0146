package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/arcavm/arca/guest/wire"
)

// userHZ is the unit of /proc/stat; Linux fixes it at 100 for user space.
const userHZ = 100

// Stats implements wire.Handler. Everything comes from inside the machine:
// the container's cgroup and the agent's procfs, read from the
// container's network namespace for the network counters.
func (a *Agent) Stats(ctx context.Context) (wire.Stats, error) {
	s := wire.Stats{Read: time.Now().UTC(), OnlineCPUs: uint32(runtime.NumCPU())}
	if data, err := os.ReadFile(filepath.Join(a.procDir, "stat")); err == nil {
		s.SystemCPU, _ = parseProcStat(data)
	}
	// The counters of the container's namespace, not the agent's.
	var netDev []byte
	if err := a.netNS().do(func() (err error) {
		netDev, err = os.ReadFile(filepath.Join(a.procDir, "thread-self/net/dev"))
		return err
	}); err == nil {
		s.Networks = parseNetDev(netDev)
	}
	memTotal := uint64(0)
	if data, err := os.ReadFile(filepath.Join(a.procDir, "meminfo")); err == nil {
		memTotal = flatKeyedKB(data)["MemTotal:"]
	}
	cg := a.cg
	if !cg.ok() {
		return s, nil
	}
	// CPU time: cpu.stat is there in every v2 cgroup, controller or not.
	if data, err := cg.read("cpu.stat"); err == nil {
		m := flatKeyed(data)
		s.CPUTotal, s.CPUUser, s.CPUSystem = m["usage_usec"]*1000, m["user_usec"]*1000, m["system_usec"]*1000
	}
	if data, err := cg.readV1("cpuacct", "cpuacct.usage_percpu"); err == nil {
		for _, f := range strings.Fields(string(data)) {
			n, _ := strconv.ParseUint(f, 10, 64)
			s.PerCPU = append(s.PerCPU, n)
		}
	}
	if data, err := cg.read("memory.current"); err == nil {
		s.MemoryUsage = parseUint(data)
		if data, err := cg.read("memory.stat"); err == nil {
			s.MemoryStats = flatKeyed(data)
		}
		// The limit is on the machine's cgroup (the parent): the host set
		// it there, or in a VM there is none but the machine's memory.
		s.MemoryLimit = minLimit(memTotal, cg.readMax("memory.max"), cg.readMax("../memory.max"))
	} else if data, err := cg.readV1("memory", "memory.usage_in_bytes"); err == nil {
		s.MemoryUsage = parseUint(data)
		if data, err := cg.readV1("memory", "memory.stat"); err == nil {
			s.MemoryStats = flatKeyed(data)
		}
		lim := uint64(0)
		if data, err := cg.readV1("memory", "memory.limit_in_bytes"); err == nil {
			lim = parseUint(data)
		}
		s.MemoryLimit = minLimit(memTotal, lim)
	}
	if data, err := cg.read("pids.current"); err == nil {
		s.PidsCurrent = parseUint(data)
	} else if data, err := cg.read("cgroup.threads"); err == nil {
		s.PidsCurrent = uint64(bytes.Count(data, []byte("\n")))
	}
	s.PidsLimit = minLimit(0, cg.readMax("pids.max"), cg.readMax("../pids.max"))
	if s.PidsLimit == 0 {
		if data, err := cg.readV1("pids", "pids.max"); err == nil {
			s.PidsLimit = parseUint(data)
		}
	}
	if data, err := cg.read("io.stat"); err == nil {
		s.Blkio = parseIOStat(data)
	} else if data, err := cg.readV1("blkio", "blkio.throttle.io_service_bytes_recursive"); err == nil {
		s.Blkio = parseBlkioV1(data)
	}
	for _, e := range s.Blkio {
		switch e.Op {
		case "read":
			s.BlkioRead += e.Value
		case "write":
			s.BlkioWrite += e.Value
		}
	}
	return s, nil
}

// readMax reads a limit file; "max", a missing file or garbage give 0.
func (cg *cgroups) readMax(name string) uint64 {
	data, err := cg.read(name)
	if err != nil {
		return 0
	}
	return parseUint(data)
}

// minLimit is the smallest non-zero limit, else def.
func minLimit(def uint64, limits ...uint64) uint64 {
	best := def
	for _, l := range limits {
		if l != 0 && (best == 0 || l < best) {
			best = l
		}
	}
	return best
}

func parseUint(data []byte) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	return n
}

// parseProcStat returns the machine's CPU time in nanoseconds as Docker
// counts it: user, nice, system, idle, iowait, irq and softirq of the
// "cpu" line.
func parseProcStat(data []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 8 {
			return 0, fmt.Errorf("/proc/stat: short cpu line %q", sc.Text())
		}
		var ticks uint64
		for _, v := range f[1:8] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat: %w", err)
			}
			ticks += n
		}
		return ticks * (1e9 / userHZ), nil
	}
	return 0, fmt.Errorf("/proc/stat: no cpu line")
}

// parseNetDev reads /proc/net/dev, leaving out loopback as Docker does.
func parseNetDev(data []byte) map[string]wire.NetworkStats {
	out := map[string]wire.NetworkStats{}
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if name == "lo" || len(f) < 16 {
			continue
		}
		n := make([]uint64, 16)
		for i := range n {
			n[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		out[name] = wire.NetworkStats{
			RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11],
		}
	}
	return out
}

// parseIOStat reads cgroup v2 io.stat ("8:0 rbytes=1 wbytes=2 ...").
func parseIOStat(data []byte) []wire.BlkioEntry {
	var out []wire.BlkioEntry
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		major, minor, ok := parseDevice(f[0])
		if !ok {
			continue
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			op := map[string]string{"rbytes": "read", "wbytes": "write"}[k]
			if op == "" {
				continue
			}
			n, _ := strconv.ParseUint(v, 10, 64)
			out = append(out, wire.BlkioEntry{Major: major, Minor: minor, Op: op, Value: n})
		}
	}
	return out
}

// parseBlkioV1 reads v1 blkio.*io_service_bytes* ("8:0 Read 123").
func parseBlkioV1(data []byte) []wire.BlkioEntry {
	var out []wire.BlkioEntry
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		major, minor, ok := parseDevice(f[0])
		op := strings.ToLower(f[1])
		if !ok || (op != "read" && op != "write") {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		out = append(out, wire.BlkioEntry{Major: major, Minor: minor, Op: op, Value: n})
	}
	return out
}

func parseDevice(s string) (major, minor uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	major, err1 := strconv.ParseUint(a, 10, 64)
	minor, err2 := strconv.ParseUint(b, 10, 64)
	return major, minor, err1 == nil && err2 == nil
}

// flatKeyedKB reads /proc/meminfo-style "Key: N kB" lines into bytes.
func flatKeyedKB(data []byte) map[string]uint64 {
	m := map[string]uint64{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 2 && f[2] == "kB" {
			n *= 1024
		}
		m[f[0]] = n
	}
	return m
}
