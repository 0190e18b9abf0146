package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// peerPID is the pid of the process serving the unix socket at path, as the
// kernel recorded it when that process called listen (SO_PEERCRED).
func peerPID(path string) (int, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return 0, fmt.Errorf("dial %s: %w", path, err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("raw conn: %w", err)
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("control: %w", err)
	}
	if credErr != nil {
		return 0, fmt.Errorf("SO_PEERCRED on %s: %w", path, credErr)
	}
	return int(cred.Pid), nil
}

// treeMemory sums memory over a daemon's process set.
type treeMemory struct {
	DaemonRSS int64 // the daemon process alone
	RSS, PSS  int64 // every process in the set
	Procs     int
}

type procInfo struct {
	ppid    int
	cmdline string
	cgroup  string
}

// measureTree sums RSS and PSS over the processes that run on the daemon's
// behalf: its descendants, plus every process whose command line or cgroup
// names one of ids, and their descendants. The second rule catches what a
// daemon hands to others: dockerd's containerd-shim processes are reparented
// away from it but carry `-id <container id>`, and the containers' own
// processes sit in cgroups named after their IDs.
func measureTree(daemon int, ids []string) (treeMemory, error) {
	procs, err := listProcs()
	if err != nil {
		return treeMemory{}, err
	}
	if _, ok := procs[daemon]; !ok {
		return treeMemory{}, fmt.Errorf("daemon pid %d is not running", daemon)
	}
	roots := []int{daemon}
	for pid, p := range procs {
		for _, id := range ids {
			if strings.Contains(p.cmdline, id) || strings.Contains(p.cgroup, id) {
				roots = append(roots, pid)
				break
			}
		}
	}
	set := descendants(procs, roots)
	var m treeMemory
	for pid := range set {
		rss, pss, err := procMemory(pid)
		if err != nil {
			continue // exited while we looked
		}
		m.RSS += rss
		m.PSS += pss
		m.Procs++
		if pid == daemon {
			m.DaemonRSS = rss
		}
	}
	if m.DaemonRSS == 0 {
		return treeMemory{}, fmt.Errorf("no memory figures for daemon pid %d", daemon)
	}
	return m, nil
}

// descendants is roots and everything below them in the parent relation.
func descendants(procs map[int]procInfo, roots []int) map[int]bool {
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	set := map[int]bool{}
	stack := append([]int(nil), roots...)
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if set[pid] {
			continue
		}
		set[pid] = true
		stack = append(stack, children[pid]...)
	}
	return set
}

func listProcs() (map[int]procInfo, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	procs := map[int]procInfo{}
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", ent.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		ppid, ok := parsePPID(stat)
		if !ok {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		cg, _ := os.ReadFile(filepath.Join(dir, "cgroup"))
		procs[pid] = procInfo{ppid: ppid, cmdline: string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})), cgroup: string(cg)}
	}
	return procs, nil
}

// parsePPID reads field 4 of /proc/PID/stat; the command name in field 2
// may hold spaces and parentheses, so fields count from the last ')'.
func parsePPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// procMemory is a process's RSS and PSS in bytes, from smaps_rollup (PSS
// charges shared pages to each sharer in proportion, so sums over many
// processes mapping one binary stay honest).
func procMemory(pid int) (rss, pss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []struct {
			prefix string
			dst    *int64
		}{{"Rss:", &rss}, {"Pss:", &pss}} {
			if rest, ok := strings.CutPrefix(line, k.prefix); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				*k.dst = kb * 1024
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if rss == 0 {
		// Kernel threads and zombies have an empty rollup.
		return 0, 0, fmt.Errorf("no rss for %d", pid)
	}
	return rss, pss, nil
}
