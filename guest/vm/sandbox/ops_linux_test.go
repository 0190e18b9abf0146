package sandbox

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

var binPath = []string{"PATH=/bin"}

func TestTop(t *testing.T) {
	b := bootFresh(t)
	main, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "main", Main: true, Env: binPath, Args: []string{"sleep", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	tty, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "tty", Env: binPath, Tty: true, User: "app", Args: []string{"sleep", "99"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	// The exec's sleep is forked by then, but its argv may lag a moment.
	time.Sleep(100 * time.Millisecond)

	tests := []struct {
		args   string
		titles string
		check  func(rows [][]string) bool
	}{
		{"", "UID PID PPID C STIME TTY TIME CMD", func(rows [][]string) bool {
			// C: the main process spent its stage's start-up time.
			return hasRow(rows, "root", strconv.Itoa(main.Pid), "1", "", "", "?", "00:00:00", "sleep 100") &&
				hasRow(rows, "app", strconv.Itoa(tty.Pid), "", "0", "", "pts/0", "00:00:00", "sleep 99")
		}},
		{"-ef", "UID PID PPID C STIME TTY TIME CMD", func(rows [][]string) bool { return len(rows) == 2 }},
		{"aux", "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND", func(rows [][]string) bool {
			return hasRow(rows, "root", strconv.Itoa(main.Pid), "", "", "", "", "?", sessionLeaderStat(), "", "", "sleep 100")
		}},
		{"-o pid,comm", "PID COMMAND", func(rows [][]string) bool {
			return hasRow(rows, strconv.Itoa(main.Pid), "sleep") && hasRow(rows, strconv.Itoa(tty.Pid), "sleep")
		}},
		{"-eo pid,user=WHO,args", "PID WHO COMMAND", func(rows [][]string) bool {
			return hasRow(rows, strconv.Itoa(tty.Pid), "app", "sleep 99")
		}},
	}
	for _, tt := range tests {
		top, err := b.c.Top(ctxT(t), tt.args)
		if err != nil {
			t.Errorf("top %q: %v", tt.args, err)
			continue
		}
		if got := strings.Join(top.Titles, " "); got != tt.titles {
			t.Errorf("top %q titles %q, want %q", tt.args, got, tt.titles)
		}
		if !tt.check(top.Processes) {
			t.Errorf("top %q rows:\n%q", tt.args, top.Processes)
		}
		for _, row := range top.Processes {
			if strings.Contains(strings.Join(row, " "), "arca-agent") {
				t.Errorf("top %q lists the agent: %q", tt.args, row)
			}
		}
	}
	for _, bad := range []string{"-o pid,bogus", "-Z", "--forest", "-o"} {
		if _, err := b.c.Top(ctxT(t), bad); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("top %q: %v, want invalid", bad, err)
		}
	}
}

// hasRow says whether a row matches want, "" matching anything.
// sessionLeaderStat is ps's STAT of a sleeping session leader started by
// this test: with N or < when the test itself runs at another priority
// (nice go test), which the machine's processes inherit. The raw
// getpriority is 20 - nice.
func sessionLeaderStat() string {
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	switch {
	case err == nil && prio < 20:
		return "SNs"
	case err == nil && prio > 20:
		return "S<s"
	}
	return "Ss"
}

func hasRow(rows [][]string, want ...string) bool {
	for _, row := range rows {
		if len(row) != len(want) {
			continue
		}
		ok := true
		for i, w := range want {
			if w != "" && row[i] != w {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestStats(t *testing.T) {
	b := bootLimited(t, 256<<20, 0)
	main, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "main", Main: true, Env: binPath, Args: []string{"sh", "-c", "while :; do :; done"}})
	if err != nil {
		t.Fatal(err)
	}
	b.main = true
	defer main.Close()
	s1, err := b.c.Stats(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if r := b.sh(t, "head -c 50000000 /dev/zero > /dev/shm/fill"); r.status.Code != 0 {
		t.Fatalf("%+v", r)
	}
	s2, err := b.c.Stats(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", s2)
	switch {
	case s2.CPUTotal <= s1.CPUTotal+100e6:
		t.Errorf("cpu %d -> %d in 500 ms of a busy loop", s1.CPUTotal, s2.CPUTotal)
	case s2.SystemCPU <= s1.SystemCPU || s2.OnlineCPUs == 0:
		t.Errorf("system cpu %d -> %d, %d cpus", s1.SystemCPU, s2.SystemCPU, s2.OnlineCPUs)
	case s2.MemoryUsage < s1.MemoryUsage+40e6:
		t.Errorf("memory %d -> %d after filling 50 MB of shm", s1.MemoryUsage, s2.MemoryUsage)
	case s2.MemoryLimit != 256<<20:
		t.Errorf("memory limit %d", s2.MemoryLimit)
	case len(s2.MemoryStats) == 0:
		t.Errorf("no memory.stat")
	case s2.PidsCurrent < 1 || s2.PidsCurrent > 10:
		t.Errorf("pids %d", s2.PidsCurrent)
	case !s2.Read.After(s1.Read):
		t.Errorf("read times %v, %v", s1.Read, s2.Read)
	}
	if _, ok := s2.Networks["lo"]; ok {
		t.Errorf("loopback in networks: %v", s2.Networks)
	}
}

func TestExecPidAndRunCapture(t *testing.T) {
	b := bootFresh(t)
	b.ensureMain(t)
	p, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "pid", Env: binPath, Args: []string{"sh", "-c", "echo $$"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(p.Stdout)
	io.Copy(io.Discard, p.Stderr)
	p.Wait()
	// Pid is the agent's view (as dockerd reports the host's); inside,
	// the exec is some process of the container's pid namespace, not
	// its PID 1.
	if in, _ := strconv.Atoi(strings.TrimSpace(string(out))); p.Pid <= 0 || in <= 1 {
		t.Fatalf("Pid %d, the process says %q", p.Pid, out)
	}

	tests := []struct {
		script  string
		timeout time.Duration
		code    int
		out     string
		err     error
	}{
		{"echo hi; sleep 0.1; echo err >&2; exit 3", 5 * time.Second, 3, "hi\nerr\n", nil},
		{"head -c 10000 /dev/zero | tr '\\0' x", 5 * time.Second, 0, strings.Repeat("x", 4096), nil},
		{"echo started; sleep 10", 300 * time.Millisecond, -1, "started\n", context.DeadlineExceeded},
	}
	for i, tt := range tests {
		start := time.Now()
		code, out, err := b.c.RunCapture(ctxT(t), wire.ProcessSpec{ID: "hc" + strconv.Itoa(i), Env: binPath, Args: []string{"sh", "-c", tt.script}}, tt.timeout)
		if code != tt.code || out != tt.out || !errors.Is(err, tt.err) && !(err == nil && tt.err == nil) {
			t.Errorf("%q: %d %q %v", tt.script, code, out, err)
		}
		if time.Since(start) > tt.timeout+3*time.Second {
			t.Errorf("%q took %v", tt.script, time.Since(start))
		}
	}
}

type entry struct {
	name, link, body string
	typ              byte
	mode             int64
	uid, gid         int
}

func makeTar(t *testing.T, entries []entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Size: int64(len(e.body)), ModTime: time.Unix(1_600_000_000, 0)}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return &buf
}

func readTar(t *testing.T, r io.Reader) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		body, _ := io.ReadAll(tr)
		out = append(out, entry{name: hdr.Name, link: hdr.Linkname, body: string(body), typ: hdr.Typeflag, mode: hdr.Mode, uid: hdr.Uid, gid: hdr.Gid})
	}
}

func names(es []entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.name)
	}
	return out
}

// Archive ops need no process in the container: a stopped container is
// served by a machine that only ran Setup.
func TestArchive(t *testing.T) {
	b := bootFresh(t)
	c := b.c

	t.Run("stat", func(t *testing.T) {
		tests := []struct {
			path string
			want wire.PathStat
		}{
			{"/etc/passwd", wire.PathStat{Name: "passwd", Size: int64(len(testPasswd)), Mode: 0o644}},
			{"etc/passwd", wire.PathStat{Name: "passwd", Size: int64(len(testPasswd)), Mode: 0o644}},
			{"/bin/sh", wire.PathStat{Name: "sh", Size: 7, Mode: os.ModeSymlink | 0o777, LinkTarget: "/bin/busybox"}},
			{"/tmp", wire.PathStat{Name: "tmp", Mode: os.ModeDir | 0o777}},
			{"/tmp/", wire.PathStat{Name: "tmp", Mode: os.ModeDir | 0o777}},
			{"/tmp/.", wire.PathStat{Name: ".", Mode: os.ModeDir | 0o777}},
			{"/", wire.PathStat{Name: "/", Mode: os.ModeDir | 0o755}},
		}
		for _, tt := range tests {
			got, err := c.ArchiveStat(ctxT(t), tt.path)
			if err != nil {
				t.Errorf("%s: %v", tt.path, err)
				continue
			}
			if got.Mode.IsDir() {
				tt.want.Size = got.Size
			}
			if got.Mtime.IsZero() {
				t.Errorf("%s: no mtime", tt.path)
			}
			got.Mtime = time.Time{}
			if got != tt.want {
				t.Errorf("%s: %+v, want %+v", tt.path, got, tt.want)
			}
		}
		for _, p := range []string{"/nope", "/etc/nope/x"} {
			if _, err := c.ArchiveStat(ctxT(t), p); !errors.Is(err, wire.ErrNotFound) {
				t.Errorf("%s: %v, want not found", p, err)
			}
		}
	})

	t.Run("put and get", func(t *testing.T) {
		in := makeTar(t, []entry{
			{name: "d/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000},
			{name: "d/f", typ: tar.TypeReg, mode: 0o4755, body: "hello", uid: 1000, gid: 65534},
			{name: "d/h", typ: tar.TypeLink, link: "d/f"},
			{name: "d/l", typ: tar.TypeSymlink, link: "/etc/passwd", mode: 0o777},
			{name: "d/p", typ: tar.TypeFifo, mode: 0o600},
			{name: "d/sub/deep/g", typ: tar.TypeReg, mode: 0o600, body: "deep"},
		})
		if err := c.ArchivePut(ctxT(t), "/tmp", in, wire.ArchivePutOptions{}); err != nil {
			t.Fatal(err)
		}
		r := b.sh(t, "cd /tmp/d && stat -c '%n %a %u %g %F %h' . f h l p && cat h sub/deep/g && readlink l")
		want := ". 750 1000 1000 directory 3\nf 4755 1000 65534 regular file 2\nh 4755 1000 65534 regular file 2\n" +
			"l 777 0 0 symbolic link 1\np 600 0 0 fifo 1\nhellodeep/etc/passwd\n"
		if r.stdout != want {
			t.Fatalf("in the container:\n%s%s\nwant\n%s", r.stdout, r.stderr, want)
		}

		rc, st, err := c.ArchiveGet(ctxT(t), "/tmp/d")
		if err != nil {
			t.Fatal(err)
		}
		got := readTar(t, rc)
		rc.Close()
		if st.Name != "d" || !st.Mode.IsDir() {
			t.Errorf("stat %+v", st)
		}
		wantNames := []string{"d/", "d/f", "d/h", "d/l", "d/p", "d/sub/", "d/sub/deep/", "d/sub/deep/g"}
		if !slices.Equal(names(got), wantNames) {
			t.Fatalf("entries %q, want %q", names(got), wantNames)
		}
		checks := []entry{
			{name: "d/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000},
			{name: "d/f", typ: tar.TypeReg, mode: 0o4755, body: "hello", uid: 1000, gid: 65534},
			{name: "d/h", typ: tar.TypeLink, link: "d/f", mode: 0o4755, uid: 1000, gid: 65534},
			{name: "d/l", typ: tar.TypeSymlink, link: "/etc/passwd", mode: 0o777},
			{name: "d/p", typ: tar.TypeFifo, mode: 0o600},
		}
		for i, w := range checks {
			if got[i] != w {
				t.Errorf("entry %d: %+v, want %+v", i, got[i], w)
			}
		}

		// Contents only.
		rc, st, err = c.ArchiveGet(ctxT(t), "/tmp/d/.")
		if err != nil {
			t.Fatal(err)
		}
		got = readTar(t, rc)
		if st.Name != "." || got[0].name != "./" || got[1].name != "./f" {
			t.Errorf("d/.: %+v %q", st, names(got))
		}
		// One file, named after its base; a symlink as itself.
		for _, tt := range []struct{ path, name, link, body string }{
			{"/etc/hostname", "hostname", "", "sandbox-test\n"},
			{"/bin/sh", "sh", "busybox", ""},
			{"/tmp/d/l", "l", "/etc/passwd", ""},
		} {
			rc, _, err := c.ArchiveGet(ctxT(t), tt.path)
			if err != nil {
				t.Fatal(err)
			}
			got := readTar(t, rc)
			if len(got) != 1 || got[0].name != tt.name || got[0].link != tt.link || got[0].body != tt.body {
				t.Errorf("%s: %+v", tt.path, got)
			}
		}
		if _, _, err := c.ArchiveGet(ctxT(t), "/nope"); !errors.Is(err, wire.ErrNotFound) {
			t.Errorf("get missing: %v", err)
		}
		// Round trip into another directory.
		rc, _, err = c.ArchiveGet(ctxT(t), "/tmp/d")
		if err != nil {
			t.Fatal(err)
		}
		if r := b.sh(t, "mkdir /copy"); r.status.Code != 0 {
			t.Fatal(r)
		}
		if err := c.ArchivePut(ctxT(t), "/copy", rc, wire.ArchivePutOptions{}); err != nil {
			t.Fatal(err)
		}
		if r := b.sh(t, "cd /copy/d && stat -c '%n %a %u %g %h' f h && cat sub/deep/g"); r.stdout != "f 4755 1000 65534 2\nh 4755 1000 65534 2\ndeep" {
			t.Errorf("copy: %q %q", r.stdout, r.stderr)
		}
	})

	t.Run("copy uid gid", func(t *testing.T) {
		in := makeTar(t, []entry{{name: "owned", typ: tar.TypeReg, mode: 0o640, body: "x", uid: 42, gid: 42}})
		if err := c.ArchivePut(ctxT(t), "/tmp", in, wire.ArchivePutOptions{CopyUIDGID: true, User: "app"}); err != nil {
			t.Fatal(err)
		}
		in = makeTar(t, []entry{{name: "kept", typ: tar.TypeReg, mode: 0o640, body: "x", uid: 42, gid: 43}})
		if err := c.ArchivePut(ctxT(t), "/tmp", in, wire.ArchivePutOptions{}); err != nil {
			t.Fatal(err)
		}
		if r := b.sh(t, "stat -c '%n %u %g %a' /tmp/owned /tmp/kept"); r.stdout != "/tmp/owned 1000 1000 640\n/tmp/kept 42 43 640\n" {
			t.Errorf("%q", r.stdout)
		}
	})

	t.Run("overwrite rules", func(t *testing.T) {
		b.sh(t, "mkdir -p /ow/dir && echo old > /ow/file")
		fileOverDir := makeTar(t, []entry{{name: "dir", typ: tar.TypeReg, mode: 0o644, body: "new"}})
		if err := c.ArchivePut(ctxT(t), "/ow", fileOverDir, wire.ArchivePutOptions{NoOverwriteDirNonDir: true}); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("file over dir with NoOverwriteDirNonDir: %v", err)
		}
		dirOverFile := makeTar(t, []entry{{name: "file/", typ: tar.TypeDir, mode: 0o755}})
		if err := c.ArchivePut(ctxT(t), "/ow", dirOverFile, wire.ArchivePutOptions{NoOverwriteDirNonDir: true}); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("dir over file with NoOverwriteDirNonDir: %v", err)
		}
		fileOverDir = makeTar(t, []entry{{name: "dir", typ: tar.TypeReg, mode: 0o644, body: "new"}, {name: "file", typ: tar.TypeReg, mode: 0o644, body: "new"}})
		if err := c.ArchivePut(ctxT(t), "/ow", fileOverDir, wire.ArchivePutOptions{}); err != nil {
			t.Fatal(err)
		}
		if r := b.sh(t, "cat /ow/dir /ow/file"); r.stdout != "newnew" {
			t.Errorf("%q %q", r.stdout, r.stderr)
		}
		if err := c.ArchivePut(ctxT(t), "/nope", makeTar(t, nil), wire.ArchivePutOptions{}); !errors.Is(err, wire.ErrNotFound) {
			t.Errorf("put into missing dir: %v", err)
		}
		if err := c.ArchivePut(ctxT(t), "/etc/passwd", makeTar(t, nil), wire.ArchivePutOptions{}); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("put into a file: %v", err)
		}
	})

	t.Run("hostile archives", func(t *testing.T) {
		host := t.TempDir() // a directory of the host, to be left alone
		secret := filepath.Join(host, "secret")
		os.WriteFile(secret, []byte("host secret"), 0o600)
		os.Symlink(host, filepath.Join(b.upper, "hostlink")) // as if the image had it
		// The same path inside the container, where symlinks to it lead.
		if r := b.sh(t, "mkdir -p "+host); r.status.Code != 0 {
			t.Fatal(r)
		}

		tests := []struct {
			name    string
			dir     string
			entries []entry
			invalid bool
		}{
			{"dotdot", "/tmp", []entry{{name: "../../../../../../.." + host + "/dotdot", typ: tar.TypeReg, body: "x"}}, true},
			{"absolute symlink parent", "/tmp", []entry{
				{name: "evil", typ: tar.TypeSymlink, link: host},
				{name: "evil/pwned", typ: tar.TypeReg, body: "x", mode: 0o644},
			}, false},
			{"relative symlink parent", "/tmp", []entry{
				{name: "up", typ: tar.TypeSymlink, link: "../../../../../../../../../.." + host},
				{name: "up/pwned2", typ: tar.TypeReg, body: "x", mode: 0o644},
			}, false},
			{"symlinked destination", "/hostlink", []entry{{name: "pwned3", typ: tar.TypeReg, body: "x"}}, false},
			{"hardlink out", "/tmp", []entry{{name: "hl", typ: tar.TypeLink, link: "../../../../../../.." + secret}}, true},
			{"hardlink through symlink", "/tmp", []entry{
				{name: "evil2", typ: tar.TypeSymlink, link: host},
				{name: "hl2", typ: tar.TypeLink, link: "evil2/secret"},
			}, false},
			{"symlink then overwrite", "/tmp", []entry{
				{name: "passwdlink", typ: tar.TypeSymlink, link: secret},
				{name: "passwdlink", typ: tar.TypeReg, body: "overwritten", mode: 0o644},
			}, false},
		}
		for _, tt := range tests {
			err := c.ArchivePut(ctxT(t), tt.dir, makeTar(t, tt.entries), wire.ArchivePutOptions{})
			if tt.invalid && !errors.Is(err, wire.ErrInvalid) {
				t.Errorf("%s: %v, want invalid", tt.name, err)
			}
			t.Logf("%s: %v", tt.name, err)
		}
		ents, _ := os.ReadDir(host)
		if len(ents) != 1 {
			t.Errorf("host dir touched: %v", ents)
		}
		if data, _ := os.ReadFile(secret); string(data) != "host secret" {
			t.Errorf("host secret now %q", data)
		}
		var st syscall_Stat
		if statNlink(secret, &st) != 1 {
			t.Errorf("host secret got a hard link")
		}
		// What was written through symlinks landed inside the container.
		if r := b.sh(t, "cat "+host+"/pwned "+host+"/pwned2 "+host+"/pwned3"); r.stdout != "xxx" {
			t.Errorf("inside the container: %q %q", r.stdout, r.stderr)
		}
		// Reading through a symlink to the host finds the container's view.
		if _, _, err := c.ArchiveGet(ctxT(t), "/hostlink/secret"); !errors.Is(err, wire.ErrNotFound) {
			t.Errorf("get through a symlink to the host: %v", err)
		}
		if _, err := c.ArchiveStat(ctxT(t), "/tmp/evil/secret"); !errors.Is(err, wire.ErrNotFound) {
			t.Errorf("stat through a symlink to the host: %v", err)
		}
	})
}

type syscall_Stat = syscall.Stat_t

func statNlink(p string, st *syscall.Stat_t) uint64 {
	if err := syscall.Stat(p, st); err != nil {
		return 0
	}
	return st.Nlink
}
