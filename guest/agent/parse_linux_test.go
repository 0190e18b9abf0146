package agent

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/arcavm/arca/guest/wire"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		err  bool
	}{
		{"cpu  10 20 30 40 50 60 70 80 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n", 280 * 1e7, false},
		{"intr 1 2\ncpu 1 1 1 1 1 1 1\n", 7 * 1e7, false},
		{"cpu 1 2 3\n", 0, true},
		{"ctxt 5\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseProcStat([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("%q: %d %v, want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseNetDev(t *testing.T) {
	in := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0: 1500 10 1 2 0 0 0 0 3000 20 3 4 0 0 0 0
wg0:5 1 0 0 0 0 0 0 6 1 0 0 0 0 0 0
`
	got := parseNetDev([]byte(in))
	want := map[string]wire.NetworkStats{
		"eth0": {RxBytes: 1500, RxPackets: 10, RxErrors: 1, RxDropped: 2, TxBytes: 3000, TxPackets: 20, TxErrors: 3, TxDropped: 4},
		"wg0":  {RxBytes: 5, RxPackets: 1, TxBytes: 6, TxPackets: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
}

func TestFlatKeyed(t *testing.T) {
	got := flatKeyed([]byte("anon 4096\nfile 8192\ninactive_file 100\nbad x\nlow max\n\n"))
	want := map[string]uint64{"anon": 4096, "file": 8192, "inactive_file": 100}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	if v, ok := flatKeyedOK([]byte("populated 1\nfrozen 1\n"), "frozen"); !ok || v != 1 {
		t.Fatal("frozen")
	}
	if kb := flatKeyedKB([]byte("MemTotal:  1000 kB\nHugePages_Total: 0\n")); kb["MemTotal:"] != 1024000 || kb["HugePages_Total:"] != 0 {
		t.Fatalf("meminfo %v", kb)
	}
}

func TestParseIOStat(t *testing.T) {
	tests := []struct {
		name string
		got  []wire.BlkioEntry
		want []wire.BlkioEntry
	}{
		{"v2", parseIOStat([]byte("8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=5 wbytes=0\n")),
			[]wire.BlkioEntry{{Major: 8, Minor: 0, Op: "read", Value: 100}, {Major: 8, Minor: 0, Op: "write", Value: 200}, {Major: 253, Minor: 1, Op: "read", Value: 5}, {Major: 253, Minor: 1, Op: "write", Value: 0}}},
		{"v1", parseBlkioV1([]byte("8:0 Read 100\n8:0 Write 200\n8:0 Sync 1\n8:0 Total 300\nTotal 300\n")),
			[]wire.BlkioEntry{{Major: 8, Minor: 0, Op: "read", Value: 100}, {Major: 8, Minor: 0, Op: "write", Value: 200}}},
		{"empty", parseIOStat(nil), nil},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %+v", tt.name, tt.got)
		}
	}
}

func TestV1Path(t *testing.T) {
	in := []byte("9:name=systemd:/\n4:memory:/arca/x\n2:cpu,cpuacct:/arca/y\n0::/\n")
	tests := []struct {
		ctrl, hier, path string
		ok               bool
	}{
		{"memory", "memory", "/arca/x", true},
		{"cpuacct", "cpu,cpuacct", "/arca/y", true},
		{"pids", "", "", false},
	}
	for _, tt := range tests {
		h, p, ok := v1Path(in, tt.ctrl)
		if h != tt.hier || p != tt.path || ok != tt.ok {
			t.Errorf("%s: %q %q %v", tt.ctrl, h, p, ok)
		}
	}
}

func TestParsePsArgs(t *testing.T) {
	tests := []struct {
		args   string
		titles string
		err    bool
	}{
		{"", "UID PID PPID C STIME TTY TIME CMD", false},
		{"-ef", "UID PID PPID C STIME TTY TIME CMD", false},
		{"-e -f", "UID PID PPID C STIME TTY TIME CMD", false},
		{"-f", "UID PID PPID C STIME TTY TIME CMD", false},
		{"aux", "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND", false},
		{"-A", "PID TTY TIME CMD", false},
		{"-o pid,comm", "PID COMMAND", false},
		{"-eo pid,ppid,user,args", "PID PPID USER COMMAND", false},
		{"-o pid -o comm", "PID COMMAND", false},
		{"-opid,pcpu", "PID %CPU", false},
		{"-o pid,user=OWNER", "PID OWNER", false},
		{"o pid,etime,rss,vsz,stat,nlwp", "PID ELAPSED RSS VSZ STAT NLWP", false},
		{"-o pid,nope", "", true},
		{"-o", "", true},
		{"-Z", "", true},
		{"--forest", "", true},
		{"-ly", "", true},
	}
	for _, tt := range tests {
		cols, err := parsePsArgs(tt.args)
		if tt.err {
			if !errors.Is(err, wire.ErrInvalid) {
				t.Errorf("%q: %v, want invalid", tt.args, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		var titles []string
		for _, c := range cols {
			titles = append(titles, c.title)
		}
		if got := strings.Join(titles, " "); got != tt.titles {
			t.Errorf("%q: %q, want %q", tt.args, got, tt.titles)
		}
	}
}

func TestParseProcPidStat(t *testing.T) {
	in := "42 (we ird) name)) S 1 42 42 34816 42 4194560 100 0 0 0 150 50 0 0 20 0 3 0 1234 10485760 256 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0"
	p, err := parseProcPidStat([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := procInfo{pid: 42, ppid: 1, pgrp: 42, sid: 42, tpgid: 42, comm: "we ird) name)", state: "S",
		ttyNr: 34816, utime: 150, stime: 50, threads: 3, start: 1234, vsize: 10485760, rss: 256}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v", p)
	}
	if got := ttyName(p.ttyNr); got != "pts/0" {
		t.Errorf("tty %q", got)
	}
	if got := psStat(p, &psEnv{}); got != "Ssl+" {
		t.Errorf("stat %q", got)
	}
	if _, err := parseProcPidStat([]byte("42 no parens")); err == nil {
		t.Error("malformed stat accepted")
	}
}

func TestPsFormats(t *testing.T) {
	tests := []struct{ got, want string }{
		{clockTime(0), "00:00:00"},
		{clockTime(3723), "01:02:03"},
		{clockTime(90000), "1-01:00:00"},
		{elapsed(65), "01:05"},
		{elapsed(3700), "01:01:40"},
		{ttyName(0), "?"},
		{ttyName(136<<8 | 3), "pts/3"},
		{ttyName(4<<8 | 1), "tty1"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestParseArchivePath(t *testing.T) {
	tests := []struct {
		in   string
		want archiveTarget
	}{
		{"/etc/passwd", archiveTarget{clean: "/etc/passwd", name: "passwd"}},
		{"etc/passwd", archiveTarget{clean: "/etc/passwd", name: "passwd"}},
		{"/etc/", archiveTarget{clean: "/etc", follow: true, name: "etc"}},
		{"/etc/.", archiveTarget{clean: "/etc", follow: true, name: "."}},
		{"/", archiveTarget{clean: "/", follow: true, name: "."}},
		{".", archiveTarget{clean: "/", follow: true, name: "."}},
		{"/a/../../b", archiveTarget{clean: "/b", name: "b"}},
	}
	for _, tt := range tests {
		if got := parseArchivePath(tt.in); got != tt.want {
			t.Errorf("%q: %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestExtractInside(t *testing.T) {
	x := &extractor{dst: "/tmp"}
	tests := []struct {
		name, want string
		bad        bool
	}{
		{"a/b", "/tmp/a/b", false},
		{"./a", "/tmp/a", false},
		{"/etc/passwd", "/tmp/etc/passwd", false},
		{"a/../b", "/tmp/b", false},
		{"../x", "", true},
		{"a/../../x", "", true},
		{"..", "", true},
	}
	for _, tt := range tests {
		got, err := x.inside(tt.name)
		if tt.bad != (err != nil) || got != tt.want {
			t.Errorf("%q: %q %v", tt.name, got, err)
		}
	}
}

func TestContainerSubCgroup(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"4:memory:/x\n0::/ctr/init\n", "init", true},
		{"0::/ctr/buildkit/abc\n", "buildkit/abc", true},
		{"0::/ctr\n", "", false},
		{"0::/ctr/\n", "", false},
		{"0::/agent\n", "", false},
		{"0::/ctrx/init\n", "", false},
		{"0::/ctr/../agent\n", "", false},
		{"0::/ctr/a/../../agent\n", "", false},
		{"4:memory:/ctr/init\n", "", false},
	} {
		got, ok := containerSubCgroup([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %q %v, want %q %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
