package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// Top implements wire.Handler. It reads the machine's procfs itself (an
// image need not have ps) and lists the container's processes, never the
// agent. As dockerd does (it runs `ps ARGS -q PIDS`), every container
// process is listed whatever the selection options say; the options choose
// the columns.
func (a *Agent) Top(ctx context.Context, psArgs string) (wire.TopResult, error) {
	cols, err := parsePsArgs(psArgs)
	if err != nil {
		return wire.TopResult{}, err
	}
	pids, err := a.containerPids()
	if err != nil {
		return wire.TopResult{}, fmt.Errorf("list processes: %w", err)
	}
	env := psEnv{now: time.Now(), pageSize: uint64(os.Getpagesize())}
	if data, err := os.ReadFile(filepath.Join(a.procDir, "stat")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "btime "); ok {
				env.bootTime, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
	}
	if data, err := os.ReadFile(filepath.Join(a.procDir, "meminfo")); err == nil {
		env.memTotal = flatKeyedKB(data)["MemTotal:"]
	}
	a.mu.Lock()
	root := a.root
	a.mu.Unlock()
	if root != nil {
		env.users, env.groups = a.names(root)
	}
	res := wire.TopResult{Processes: [][]string{}}
	for _, c := range cols {
		res.Titles = append(res.Titles, c.title)
	}
	for _, pid := range pids {
		p, err := readProc(filepath.Join(a.procDir, strconv.Itoa(pid)))
		if err != nil {
			continue // gone meanwhile
		}
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.value(p, &env)
		}
		res.Processes = append(res.Processes, row)
	}
	return res, nil
}

// containerPids lists the container's processes: its cgroup's, or
// without cgroups every process but the agent.
func (a *Agent) containerPids() ([]int, error) {
	var pids []int
	if data, err := a.cg.read("cgroup.procs"); err == nil {
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil && !a.isStage(n) {
				pids = append(pids, n)
			}
		}
	} else {
		ents, err := os.ReadDir(a.procDir)
		if err != nil {
			return nil, err
		}
		self := os.Getpid()
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil && n != self && !a.isStage(n) {
				pids = append(pids, n)
			}
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// names maps ids to names with the container's passwd and group files, as
// ps inside the container would.
func (a *Agent) names(root *rootDir) (users, groups map[uint32]string) {
	read := func(name string) map[uint32]string {
		m := map[uint32]string{}
		f, err := root.openFile(name, unix.O_RDONLY)
		if err != nil {
			return m
		}
		defer f.Close()
		var buf bytes.Buffer
		buf.ReadFrom(f)
		for _, line := range strings.Split(buf.String(), "\n") {
			parts := strings.Split(line, ":")
			if len(parts) < 3 {
				continue
			}
			if id, err := strconv.ParseUint(parts[2], 10, 32); err == nil {
				if _, dup := m[uint32(id)]; !dup {
					m[uint32(id)] = parts[0]
				}
			}
		}
		return m
	}
	return read("/etc/passwd"), read("/etc/group")
}

// procInfo is what Top needs of one process.
type procInfo struct {
	pid, ppid, pgrp, sid, tpgid int
	comm, state                 string
	ttyNr                       uint64
	utime, stime                uint64 // clock ticks
	nice                        int
	threads                     int
	start                       uint64 // ticks after boot
	vsize, rss                  uint64 // bytes, pages
	uid, gid                    uint32 // effective
	args                        []string
}

func readProc(dir string) (procInfo, error) {
	var p procInfo
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return p, err
	}
	if p, err = parseProcPidStat(stat); err != nil {
		return p, err
	}
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			k, v, _ := strings.Cut(line, ":")
			f := strings.Fields(v)
			if len(f) < 2 {
				continue
			}
			n, _ := strconv.ParseUint(f[1], 10, 32)
			switch k {
			case "Uid":
				p.uid = uint32(n)
			case "Gid":
				p.gid = uint32(n)
			}
		}
	}
	if cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(cmdline) > 0 {
		p.args = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	}
	return p, nil
}

// parseProcPidStat reads /proc/PID/stat; comm may hold spaces and
// parentheses, so the fields are counted from its last ')'.
func parseProcPidStat(data []byte) (procInfo, error) {
	var p procInfo
	s := string(data)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return p, fmt.Errorf("malformed stat %q", s)
	}
	p.pid, _ = strconv.Atoi(strings.TrimSpace(s[:open]))
	p.comm = s[open+1 : close]
	f := strings.Fields(s[close+1:])
	if len(f) < 22 {
		return p, fmt.Errorf("short stat %q", s)
	}
	num := func(i int) uint64 { n, _ := strconv.ParseUint(f[i], 10, 64); return n }
	inum := func(i int) int { n, _ := strconv.Atoi(f[i]); return n }
	// f[0] is field 3 of proc(5).
	p.state = f[0]
	p.ppid, p.pgrp, p.sid = inum(1), inum(2), inum(3)
	p.ttyNr = num(4)
	p.tpgid = inum(5)
	p.utime, p.stime = num(11), num(12)
	p.nice = inum(16)
	p.threads = inum(17)
	p.start = num(19)
	p.vsize, p.rss = num(20), num(21)
	return p, nil
}

type psEnv struct {
	now      time.Time
	bootTime int64
	memTotal uint64
	pageSize uint64
	users    map[uint32]string
	groups   map[uint32]string
}

func (e *psEnv) started(p procInfo) time.Time {
	return time.Unix(e.bootTime, 0).Add(time.Duration(p.start) * time.Second / userHZ)
}

// cpuPercent is ps's %CPU: CPU time over the process's lifetime.
func (e *psEnv) cpuPercent(p procInfo) float64 {
	life := e.now.Sub(e.started(p)).Seconds()
	if life <= 0 {
		return 0
	}
	return float64(p.utime+p.stime) / userHZ / life * 100
}

type psColumn struct {
	title string
	value func(p procInfo, e *psEnv) string
}

func idName(m map[uint32]string, id uint32) string {
	if n, ok := m[id]; ok {
		return n
	}
	return strconv.FormatUint(uint64(id), 10)
}

// psColumns are the -o keywords understood, with procps's headers.
var psColumns = map[string]psColumn{
	"pid":  {"PID", func(p procInfo, e *psEnv) string { return strconv.Itoa(p.pid) }},
	"ppid": {"PPID", func(p procInfo, e *psEnv) string { return strconv.Itoa(p.ppid) }},
	"pgid": {"PGID", func(p procInfo, e *psEnv) string { return strconv.Itoa(p.pgrp) }},
	"sid":  {"SID", func(p procInfo, e *psEnv) string { return strconv.Itoa(p.sid) }},
	"uid":  {"UID", func(p procInfo, e *psEnv) string { return strconv.FormatUint(uint64(p.uid), 10) }},
	"gid":  {"GID", func(p procInfo, e *psEnv) string { return strconv.FormatUint(uint64(p.gid), 10) }},
	"user": {"USER", func(p procInfo, e *psEnv) string { return idName(e.users, p.uid) }},
	"group": {"GROUP", func(p procInfo, e *psEnv) string {
		return idName(e.groups, p.gid)
	}},
	"comm": {"COMMAND", func(p procInfo, e *psEnv) string { return p.comm }},
	"args": {"COMMAND", psArgsValue},
	"cmd":  {"CMD", psArgsValue},
	"c": {"C", func(p procInfo, e *psEnv) string {
		return strconv.Itoa(min(int(e.cpuPercent(p)), 99))
	}},
	"%cpu": {"%CPU", func(p procInfo, e *psEnv) string { return fmt.Sprintf("%.1f", e.cpuPercent(p)) }},
	"%mem": {"%MEM", func(p procInfo, e *psEnv) string {
		if e.memTotal == 0 {
			return "0.0"
		}
		return fmt.Sprintf("%.1f", float64(p.rss*e.pageSize)/float64(e.memTotal)*100)
	}},
	"vsz":   {"VSZ", func(p procInfo, e *psEnv) string { return strconv.FormatUint(p.vsize/1024, 10) }},
	"rss":   {"RSS", func(p procInfo, e *psEnv) string { return strconv.FormatUint(p.rss*e.pageSize/1024, 10) }},
	"tty":   {"TTY", func(p procInfo, e *psEnv) string { return ttyName(p.ttyNr) }},
	"stat":  {"STAT", psStat},
	"s":     {"S", func(p procInfo, e *psEnv) string { return p.state }},
	"nice":  {"NI", func(p procInfo, e *psEnv) string { return strconv.Itoa(p.nice) }},
	"nlwp":  {"NLWP", func(p procInfo, e *psEnv) string { return strconv.Itoa(p.threads) }},
	"stime": {"STIME", psStartValue},
	"start": {"START", psStartValue},
	"time": {"TIME", func(p procInfo, e *psEnv) string {
		return clockTime((p.utime + p.stime) / userHZ)
	}},
	"etime": {"ELAPSED", func(p procInfo, e *psEnv) string {
		d := e.now.Sub(e.started(p))
		return elapsed(uint64(max(d, 0) / time.Second))
	}},
}

// Aliases procps accepts for the same columns.
var psAliases = map[string]string{
	"pcpu": "%cpu", "pmem": "%mem", "command": "args", "ucmd": "comm", "euser": "user",
	"uname": "user", "euid": "uid", "egid": "gid", "egroup": "group", "tt": "tty",
	"tname": "tty", "ni": "nice", "start_time": "stime", "vsize": "vsz", "rssize": "rss",
	"rsz": "rss", "state": "s", "pgrp": "pgid", "sess": "sid", "thcount": "nlwp", "cputime": "time",
}

// Column sets of the standard formats.
var (
	psFull = []string{"user=UID", "pid", "ppid", "c", "stime", "tty", "time", "cmd"} // -f, -ef
	psUser = []string{"user", "pid", "%cpu", "%mem", "vsz", "rss", "tty", "stat", "start", "time=TIME", "args"}
	psDflt = []string{"pid", "tty", "time", "cmd"}
)

// parsePsArgs turns ps arguments into columns. Selection options (-e, -A,
// a, x, ...) are accepted and change nothing, as under dockerd; format
// options pick the columns; anything else is refused.
func parsePsArgs(args string) ([]psColumn, error) {
	fields := strings.Fields(args)
	if len(fields) == 0 {
		fields = []string{"-ef"}
	}
	var format []string
	full, user := false, false
	var custom []string
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		dash := strings.HasPrefix(f, "-")
		letters := strings.TrimPrefix(f, "-")
		if strings.HasPrefix(f, "--") {
			return nil, wire.Errorf(wire.KindInvalid, "unsupported ps option %q", f)
		}
		for j := 0; j < len(letters); j++ {
			switch ch := letters[j]; {
			case ch == 'o' || ch == 'O':
				list := letters[j+1:]
				if list == "" {
					if i+1 >= len(fields) {
						return nil, wire.Errorf(wire.KindInvalid, "ps option %q needs a format list", f)
					}
					i++
					list = fields[i]
				}
				custom = append(custom, splitFormat(list)...)
				j = len(letters)
			case strings.IndexByte("eAdNaxTrgwH", ch) >= 0 && dash || strings.IndexByte("axgwTrH", ch) >= 0 && !dash:
				// selection and width: every container process is shown
			case ch == 'f' && dash:
				full = true
			case ch == 'u' && !dash:
				user = true
			default:
				return nil, wire.Errorf(wire.KindInvalid, "unsupported ps option %q in %q (supported: -e, -f, -ef, aux, -o LIST)", string(ch), args)
			}
		}
	}
	switch {
	case custom != nil:
		format = custom
	case user:
		format = psUser
	case full:
		format = psFull
	default:
		format = psDflt
	}
	cols := make([]psColumn, 0, len(format))
	for _, spec := range format {
		name, title, renamed := strings.Cut(spec, "=")
		key := strings.ToLower(name)
		if alias, ok := psAliases[key]; ok {
			key = alias
		}
		c, ok := psColumns[key]
		if !ok {
			return nil, wire.Errorf(wire.KindInvalid, "unknown ps format specifier %q", name)
		}
		if renamed {
			c.title = title
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// splitFormat splits "pid,comm user=NAME" lists; a header after "=" runs
// to the end of its word, as in procps.
func splitFormat(list string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, w)
	}
	return out
}

func psArgsValue(p procInfo, e *psEnv) string {
	if len(p.args) == 0 {
		return "[" + p.comm + "]"
	}
	return strings.Join(p.args, " ")
}

func psStartValue(p procInfo, e *psEnv) string {
	t := e.started(p).Local()
	if e.now.Sub(t) < 24*time.Hour {
		return t.Format("15:04")
	}
	return t.Format("Jan02")
}

func psStat(p procInfo, e *psEnv) string {
	s := p.state
	switch {
	case p.nice < 0:
		s += "<"
	case p.nice > 0:
		s += "N"
	}
	if p.pid == p.sid {
		s += "s"
	}
	if p.threads > 1 {
		s += "l"
	}
	if p.ttyNr != 0 && p.tpgid == p.pgrp {
		s += "+"
	}
	return s
}

// ttyName names a tty_nr as ps does for the terminals a container has.
func ttyName(nr uint64) string {
	if nr == 0 {
		return "?"
	}
	major := (nr >> 8) & 0xfff
	minor := (nr & 0xff) | ((nr >> 12) & 0xfff00)
	switch {
	case major >= 136 && major <= 143:
		return "pts/" + strconv.FormatUint((major-136)*256+minor, 10)
	case major == 4 && minor < 64:
		return "tty" + strconv.FormatUint(minor, 10)
	case major == 5 && minor == 1:
		return "console"
	}
	return "?"
}

// clockTime is ps's TIME, [DD-]HH:MM:SS.
func clockTime(sec uint64) string {
	d, h, m, s := sec/86400, sec/3600%24, sec/60%60, sec%60
	if d > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
}

// elapsed is ps's ELAPSED, [[DD-]HH:]MM:SS.
func elapsed(sec uint64) string {
	d, h, m, s := sec/86400, sec/3600%24, sec/60%60, sec%60
	switch {
	case d > 0:
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s)
	case h > 0:
		return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%02d:%02d", m, s)
}
