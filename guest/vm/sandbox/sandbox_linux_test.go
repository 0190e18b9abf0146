package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/internal/prereq"
)

// agentBin is the agent built once for all tests; "" when not root.
var agentBin string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(bootAndHang())
	}
	os.Exit(func() int {
		if os.Geteuid() != 0 {
			return m.Run() // the tests skip themselves
		}
		dir, err := os.MkdirTemp("", "arca-agent-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		agentBin = filepath.Join(dir, "arca-agent")
		build := exec.Command("go", "build", "-trimpath", "-o", agentBin, "github.com/arcavm/arca/cmd/arca-agent")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build agent: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}())
}

// helperEnv makes the test binary a stand-in daemon that boots a machine
// and hangs until killed; the value is "agent:layer:state".
const helperEnv = "ARCA_SANDBOX_TEST_DAEMON"

func bootAndHang() int {
	parts := strings.Split(os.Getenv(helperEnv), ":")
	// Boot from a goroutine that ends locked to its thread, so that thread
	// dies: the machine must survive that, and die only with the process.
	// (The main thread is never terminated, so keep the goroutine off it.)
	runtime.LockOSThread()
	var m vm.Machine
	var err error
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		m, err = New(parts[0]).Boot(context.Background(), vm.MachineSpec{ID: "orphan", Layers: []string{parts[1]}, StateDir: parts[2]})
		close(done)
	}()
	<-done
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	pid := m.(*machine).cmd.Process.Pid
	ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	fmt.Println(pid, ns)
	select {}
}

// A daemon that dies takes its machines with it.
func TestDaemonDeathKillsMachine(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	daemon := exec.Command(os.Args[0], "-test.run=^$")
	daemon.Env = append(os.Environ(), helperEnv+"="+agentBin+":"+newImage(t)+":"+filepath.Join(dir, "state"))
	out, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer daemon.Process.Kill()
	var pid int
	var ns string
	if _, err := fmt.Fscan(out, &pid, &ns); err != nil {
		t.Fatalf("stand-in daemon: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if len(inPidNS(t, ns)) == 0 {
		t.Fatal("machine died with a thread of its daemon")
	}
	daemon.Process.Kill()
	daemon.Wait()
	for deadline := time.Now().Add(10 * time.Second); len(inPidNS(t, ns)) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("machine outlived its daemon: %v", inPidNS(t, ns))
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		prereq.Missing(t, "sandbox tests need root (namespaces, mounts)")
	}
	if !staticBusybox() {
		prereq.Missing(t, "sandbox tests need a static /bin/busybox for the test image (Debian: busybox-static)")
	}
}

// staticBusybox says whether /bin/busybox runs without a loader or libraries.
func staticBusybox() bool {
	f, err := elf.Open("/bin/busybox")
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Section(".interp") == nil
}

const testPasswd = `root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const testGroup = `root:x:0:
wheel:x:10:app
app:x:1000:
nogroup:x:65534:
`

// newImage builds a one-layer image: busybox with every applet linked,
// passwd and group.
func newImage(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layer")
	for _, d := range []string{"bin", "etc", "root", "home/app"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			os.Symlink("busybox", filepath.Join(dir, "bin", applet))
		}
	}
	files := map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup, "etc/hostname": "image\n"}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Not executable, for the permission error.
	if err := os.WriteFile(filepath.Join(dir, "bin/data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

type box struct {
	m      vm.Machine
	c      *wire.Client
	layer  string
	upper  string
	nextID int
	main   bool // a main process was started
}

// ensureMain starts a main process that sleeps unless one was started:
// execs join the main process's namespaces, as docker exec does.
func (b *box) ensureMain(t *testing.T) {
	t.Helper()
	if b.main {
		return
	}
	p, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "main", Main: true, Env: []string{"PATH=/bin"}, Args: []string{"sleep", "100000"}})
	if err != nil {
		t.Fatalf("start main: %v", err)
	}
	p.Close()
	b.main = true
}

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// boot boots a sandbox over layer and sets it up; upper may be shared
// between boots.
func boot(t *testing.T, layer, upper, work string) *box {
	t.Helper()
	return bootSpec(t, vm.MachineSpec{ID: "test", Layers: []string{layer}, UpperDir: upper, WorkDir: work})
}

// bootSpec boots spec (StateDir made up) and sets it up.
func bootSpec(t *testing.T, spec vm.MachineSpec) *box {
	t.Helper()
	spec.StateDir = filepath.Join(t.TempDir(), "state")
	layer, upper := spec.RootDir, spec.UpperDir
	if len(spec.Layers) > 0 {
		layer = spec.Layers[0]
	}
	m, err := New(agentBin).Boot(ctxT(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Kill() })
	c, err := wire.NewClient(m.Conn())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("ping: %v (%v)", err, m.Err())
	}
	if _, err := c.Start(ctxT(t), wire.ProcessSpec{ID: "early", Args: []string{"true"}}); !errors.Is(err, wire.ErrConflict) {
		t.Fatalf("start before setup: %v", err)
	}
	setup := wire.SetupRequest{
		Rootfs:     m.Rootfs(),
		Hostname:   "sandbox-test",
		Hosts:      []byte("127.0.0.1\tlocalhost\n10.0.0.2\tsandbox-test\n"),
		ResolvConf: []byte("nameserver 192.0.2.53\n"),
	}
	if err := c.Setup(ctxT(t), setup); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if err := c.Setup(ctxT(t), setup); !errors.Is(err, wire.ErrConflict) {
		t.Fatalf("second setup: %v", err)
	}
	return &box{m: m, c: c, layer: layer, upper: upper}
}

func bootFresh(t *testing.T) *box {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	os.Mkdir(upper, 0o755)
	os.Mkdir(work, 0o755)
	return boot(t, newImage(t), upper, work)
}

type result struct {
	stdout, stderr string
	status         wire.ExitStatus
}

func (b *box) id() string {
	b.nextID++
	return fmt.Sprintf("p%d", b.nextID)
}

// run starts spec, feeds stdin, reads all output and waits.
func (b *box) run(t *testing.T, spec wire.ProcessSpec, stdin string) result {
	t.Helper()
	if spec.ID == "" {
		spec.ID = b.id()
	}
	if spec.Main {
		b.main = true
	} else {
		b.ensureMain(t)
	}
	p, err := b.c.Start(ctxT(t), spec)
	if err != nil {
		t.Fatalf("start %q: %v", spec.Args, err)
	}
	if p.Stdin != nil {
		go func() {
			io.WriteString(p.Stdin, stdin)
			p.Stdin.Close()
		}()
	}
	var out, errOut bytes.Buffer
	var wg sync.WaitGroup
	for _, x := range []struct {
		r io.Reader
		w *bytes.Buffer
	}{{p.Stdout, &out}, {p.Stderr, &errOut}} {
		if x.r != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(x.w, x.r)
			}()
		}
	}
	wg.Wait()
	st, err := p.Wait()
	if err != nil {
		t.Fatalf("wait %q: %v", spec.Args, err)
	}
	return result{out.String(), errOut.String(), st}
}

func (b *box) sh(t *testing.T, script string) result {
	t.Helper()
	return b.run(t, wire.ProcessSpec{Args: []string{"sh", "-c", script}, Env: []string{"PATH=/bin"}}, "")
}

func TestSandbox(t *testing.T) {
	b := bootFresh(t)
	path := []string{"PATH=/bin"}
	b.ensureMain(t)

	t.Run("echo", func(t *testing.T) {
		r := b.run(t, wire.ProcessSpec{Args: []string{"echo", "hello"}, Env: path}, "")
		if r.stdout != "hello\n" || r.stderr != "" || r.status != (wire.ExitStatus{}) {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("exit code", func(t *testing.T) {
		if r := b.sh(t, "exit 3"); r.status.Code != 3 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("default PATH", func(t *testing.T) {
		if r := b.run(t, wire.ProcessSpec{Args: []string{"echo", "x"}}, ""); r.stdout != "x\n" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		in := "line one\nline two\x00\xff"
		r := b.run(t, wire.ProcessSpec{Args: []string{"cat"}, Env: path, Stdin: true}, in)
		if r.stdout != in || r.status.Code != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("no stdin reads eof", func(t *testing.T) {
		if r := b.run(t, wire.ProcessSpec{Args: []string{"cat"}, Env: path}, ""); r.stdout != "" || r.status.Code != 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("stderr apart", func(t *testing.T) {
		r := b.sh(t, "echo out; echo err >&2; echo out2")
		if r.stdout != "out\nout2\n" || r.stderr != "err\n" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("env exactly", func(t *testing.T) {
		r := b.run(t, wire.ProcessSpec{Args: []string{"env"}, Env: []string{"PATH=/bin", "A=1=2"}}, "")
		got := strings.Fields(r.stdout)
		want := []string{"PATH=/bin", "A=1=2", "HOME=/root"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("env %q, want %q", got, want)
		}
	})
	t.Run("tty", func(t *testing.T) {
		r := b.run(t, wire.ProcessSpec{
			Args: []string{"sh", "-c", "tty; echo $TERM; stty size; echo err >&2"}, Env: path,
			Tty: true, ConsoleSize: wire.WindowSize{Height: 30, Width: 100},
		}, "")
		want := "/dev/pts/0\r\nxterm\r\n30 100\r\nerr\r\n"
		if r.stdout != want || r.status.Code != 0 {
			t.Fatalf("got %q, want %q (%+v)", r.stdout, want, r.status)
		}
	})
	t.Run("tty resize", func(t *testing.T) {
		p, err := b.c.Start(ctxT(t), wire.ProcessSpec{
			ID: "resize", Args: []string{"sh", "-c", "read x; stty size"}, Env: path, Tty: true, Stdin: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.c.Resize(ctxT(t), "resize", 40, 120); err != nil {
			t.Fatal(err)
		}
		io.WriteString(p.Stdin, "go\n")
		out, _ := io.ReadAll(p.Stdout)
		if st, err := p.Wait(); err != nil || st.Code != 0 {
			t.Fatalf("%+v %v", st, err)
		}
		if !strings.Contains(string(out), "40 120") {
			t.Fatalf("output %q", out)
		}
	})
	t.Run("users", func(t *testing.T) {
		tests := []struct{ user, want string }{
			{"", "uid=0(root) gid=0(root) groups=0(root)"},
			{"app", "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app)"},
			{"1000:65534", "uid=1000(app) gid=65534(nogroup) groups=65534(nogroup)"},
			{"nobody", "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"},
			{"4242:4343", "uid=4242 gid=4343 groups=4343"},
		}
		for _, tt := range tests {
			r := b.run(t, wire.ProcessSpec{Args: []string{"id"}, Env: path, User: tt.user}, "")
			if strings.TrimSpace(r.stdout) != tt.want {
				t.Errorf("user %q: id says %q, want %q", tt.user, r.stdout, tt.want)
			}
		}
		r := b.run(t, wire.ProcessSpec{Args: []string{"sh", "-c", "echo $HOME"}, Env: path, User: "app"}, "")
		if r.stdout != "/home/app\n" {
			t.Errorf("HOME %q", r.stdout)
		}
	})
	t.Run("cwd created", func(t *testing.T) {
		r := b.run(t, wire.ProcessSpec{Args: []string{"pwd"}, Env: path, Cwd: "/work/a/b"}, "")
		if r.stdout != "/work/a/b\n" {
			t.Fatalf("%+v", r)
		}
		if _, err := os.Stat(filepath.Join(b.upper, "work/a/b")); err != nil {
			t.Fatalf("cwd not in the writable layer: %v", err)
		}
	})
	t.Run("start errors", func(t *testing.T) {
		tests := []struct {
			args []string
			user string
			is   error
			msg  string
		}{
			{[]string{"nope"}, "", wire.ErrNotFound, `exec: "nope": executable file not found in $PATH`},
			{[]string{"/nope"}, "", wire.ErrNotFound, "no such file or directory"},
			{[]string{"/bin/data"}, "", wire.ErrPermission, "permission denied"},
			{[]string{"/etc"}, "", wire.ErrPermission, "permission denied"},
			{[]string{"id"}, "ghost", wire.ErrInvalid, "unable to find user ghost"},
		}
		for _, tt := range tests {
			_, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: b.id(), Args: tt.args, Env: path, User: tt.user, Stdin: true})
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%q: got %v, want %v with %q", tt.args, err, tt.is, tt.msg)
			}
		}
	})
	t.Run("10MB intact", func(t *testing.T) {
		r := b.sh(t, "head -c 10000000 /dev/urandom >/tmp/big && sha256sum /tmp/big >&2 && cat /tmp/big && rm /tmp/big")
		if len(r.stdout) != 10000000 {
			t.Fatalf("%d bytes, stderr %q", len(r.stdout), r.stderr)
		}
		sum := sha256.Sum256([]byte(r.stdout))
		if want := strings.Fields(r.stderr); len(want) == 0 || want[0] != hex.EncodeToString(sum[:]) {
			t.Fatalf("sha256 %x, inside %q", sum, r.stderr)
		}
	})
	t.Run("backpressure", func(t *testing.T) {
		p, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: b.id(), Args: []string{"sh", "-c", "head -c 4000000 /dev/zero; echo done >&2"}, Env: path})
		if err != nil {
			t.Fatal(err)
		}
		stderr := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(p.Stderr)
			stderr <- string(b)
		}()
		select {
		case s := <-stderr:
			t.Fatalf("finished (%q) although nobody read its output", s)
		case <-time.After(500 * time.Millisecond):
		}
		n, _ := io.Copy(io.Discard, p.Stdout)
		if s := <-stderr; n != 4000000 || s != "done\n" {
			t.Fatalf("read %d, stderr %q", n, s)
		}
		p.Wait()
	})
	t.Run("signal", func(t *testing.T) {
		p, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "sleeper", Args: []string{"sleep", "100"}, Env: path})
		if err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, p.Stdout)
		go io.Copy(io.Discard, p.Stderr)
		if err := b.c.Signal(ctxT(t), "sleeper", syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		st, err := p.Wait()
		if err != nil || st != (wire.ExitStatus{Code: 143, Signal: 15}) {
			t.Fatalf("%+v %v", st, err)
		}
		if err := b.c.Signal(ctxT(t), "sleeper", syscall.SIGTERM); !errors.Is(err, wire.ErrNotFound) {
			t.Fatalf("signal after exit: %v", err)
		}
	})
	t.Run("exec with background child ends", func(t *testing.T) {
		start := time.Now()
		r := b.sh(t, "sleep 100 & echo started")
		if r.stdout != "started\n" || r.status.Code != 0 || time.Since(start) > 10*time.Second {
			t.Fatalf("%+v after %v", r, time.Since(start))
		}
	})
	t.Run("agent out of sight", func(t *testing.T) {
		// The container's own pid namespace: its main process is PID 1,
		// and the agent, with all it holds of the host, is not there.
		r := b.sh(t, `for f in /proc/[0-9]*/stat; do cut -d' ' -f1,2 $f; done; ls /proc/1/fd | wc -l`)
		if strings.Contains(r.stdout, "arca-agent") || !strings.Contains(r.stdout, "1 (sleep)") {
			t.Fatalf("processes:\n%s", r.stdout)
		}
	})
	t.Run("container files", func(t *testing.T) {
		r := b.sh(t, "hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf")
		want := "sandbox-test\nsandbox-test\n127.0.0.1\tlocalhost\n10.0.0.2\tsandbox-test\nnameserver 192.0.2.53\n"
		if r.stdout != want {
			t.Fatalf("got %q, want %q", r.stdout, want)
		}
		// The image's file is untouched, and nothing went to the upper layer.
		if b, _ := os.ReadFile(filepath.Join(b.layer, "etc/hostname")); string(b) != "image\n" {
			t.Fatalf("image hostname now %q", b)
		}
		if _, err := os.Stat(filepath.Join(b.upper, "etc/hostname")); err == nil {
			t.Fatal("hostname written to the upper layer")
		}
	})
	t.Run("isolation", func(t *testing.T) {
		r := b.sh(t, `echo pid $$; ls /; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; `+
			`echo 1 > /proc/sys/kernel/domainname && echo proc-sys-writable; ls /dev | tr '\n' ' '`)
		lines := r.stdout
		if !strings.Contains(lines, "\nlo\n") || strings.Contains(lines, "eth") {
			t.Errorf("network devices: %q", lines)
		}
		if strings.Contains(lines, "proc-sys-writable") {
			t.Error("/proc/sys is writable")
		}
		for _, want := range []string{"null", "zero", "urandom", "pts", "shm", "ptmx", "fd"} {
			if !strings.Contains(lines, want) {
				t.Errorf("/dev lacks %s: %q", want, lines)
			}
		}
		if strings.Contains(lines, "home\n") == false || strings.Contains(lines, "agent") {
			t.Errorf("root listing: %q", lines)
		}
	})
	t.Run("privileges", func(t *testing.T) {
		r := b.sh(t, `grep CapBnd /proc/self/status; mkdir -p /mnt; mount -t tmpfs none /mnt && echo mounted; `+
			`mknod /tmp/null c 1 3 && head -c 1 /tmp/null && echo device-opened; mknod /dev/null2 c 1 3 && head -c 1 /dev/null2 && echo dev-opened; `+
			`echo ok > /dev/null && echo null-works`)
		// Docker's default bounding set.
		if !strings.Contains(r.stdout, "CapBnd:\t00000000a80425fb\n") {
			t.Errorf("bounding set: %q", r.stdout)
		}
		for _, bad := range []string{"mounted", "device-opened", "dev-opened"} {
			if strings.Contains(r.stdout, bad) {
				t.Errorf("%s: %q", bad, r.stdout)
			}
		}
		if !strings.Contains(r.stdout, "null-works") {
			t.Errorf("/dev/null: %q %q", r.stdout, r.stderr)
		}
		r = b.run(t, wire.ProcessSpec{Args: []string{"sh", "-c", "mount -t tmpfs none /mnt && echo mounted && umount /mnt"},
			Env: path, Capabilities: []string{"ALL"}}, "")
		if r.stdout != "mounted\n" {
			t.Errorf("privileged: %+v", r)
		}
		r = b.run(t, wire.ProcessSpec{Args: []string{"grep", "Cap[EB]", "/proc/self/status"}, Env: path, Capabilities: []string{"CAP_KILL", "net_admin"}, User: "app"}, "")
		if r.stdout != "CapEff:\t0000000000000000\nCapBnd:\t0000000000001020\n" {
			t.Errorf("user with caps: %q", r.stdout)
		}
		_, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: b.id(), Args: []string{"true"}, Env: path, Capabilities: []string{"CAP_FLY"}})
		if !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("unknown capability: %v", err)
		}
	})
	t.Run("writes go to upper", func(t *testing.T) {
		if r := b.sh(t, "echo data > /newfile && echo more >> /etc/passwd"); r.status.Code != 0 {
			t.Fatalf("%+v", r)
		}
		if got, _ := os.ReadFile(filepath.Join(b.upper, "newfile")); string(got) != "data\n" {
			t.Fatalf("upper newfile %q", got)
		}
		if got, _ := os.ReadFile(filepath.Join(b.layer, "etc/passwd")); string(got) != testPasswd {
			t.Fatalf("lower layer changed: %q", got)
		}
	})
	t.Run("main exit kills the rest", func(t *testing.T) {
		b := bootFresh(t)
		main, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "main", Main: true, Args: []string{"sh", "-c", "read x; sleep 100 & echo up"}, Env: path, Stdin: true})
		if err != nil {
			t.Fatal(err)
		}
		bg, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "bg", Args: []string{"sleep", "100"}, Env: path})
		if err != nil {
			t.Fatal(err)
		}
		bg.Close()
		start := time.Now()
		io.WriteString(main.Stdin, "go\n")
		main.Stdin.Close()
		out, _ := io.ReadAll(main.Stdout)
		st, err := main.Wait()
		r := result{stdout: string(out), status: st}
		if err != nil {
			t.Fatal(err)
		}
		if r.stdout != "up\n" || r.status.Code != 0 {
			t.Fatalf("%+v", r)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("main took %v: its background child held the output", d)
		}
		if st, err := bg.Wait(); err != nil || st.Code != 137 {
			t.Fatalf("exec after main exit: %+v %v", st, err)
		}
		_, err = b.c.Start(ctxT(t), wire.ProcessSpec{ID: "late", Args: []string{"true"}, Env: path})
		if !errors.Is(err, wire.ErrConflict) {
			t.Fatalf("start after main exit: %v", err)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		if err := b.c.Shutdown(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-b.m.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("machine still running after Shutdown")
		}
		if err := b.m.Err(); err != nil {
			t.Fatalf("clean shutdown reported %v", err)
		}
	})
}

// A killed machine leaves no process, mount or descriptor behind.
func TestKillLeavesNothing(t *testing.T) {
	needRoot(t)
	// Every path of this test lies under its temp root.
	testRoot := filepath.Dir(t.TempDir())
	mountsBefore := mountinfo(t, testRoot)
	fdsBefore := openFDs(t)
	b := bootFresh(t)
	m := b.m.(*machine)
	agentPid := m.cmd.Process.Pid
	pidns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", agentPid))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		p, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: id, Main: id == "a", Args: []string{"sh", "-c", "sleep 1000 & sleep 1000"}, Env: []string{"PATH=/bin"}})
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	// The shells fork their sleeps in their own time.
	// The agent and b's stage; in the container's own pid namespace a's
	// shell and sleep, b's shell and sleep.
	var ctrns string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		kids := descendants(t, agentPid)
		if len(kids) > 0 && ctrns == "" {
			// The main process, the agent's first child.
			ctrns, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", kids[0]))
		}
		if len(inPidNS(t, pidns)) == 2 && ctrns != "" && len(inPidNS(t, ctrns)) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes in the sandbox, %d in the container, want 2 and 4", len(inPidNS(t, pidns)), len(inPidNS(t, ctrns)))
		}
	}
	if got := mountinfo(t, testRoot); !sameLines(got, mountsBefore) {
		t.Fatalf("host mounts changed while running:\n%s", diffLines(got, mountsBefore))
	}
	// The agent pivoted into its own tree: it sees only its tmpfs, its
	// procfs, its device nodes, its cgroups and the container.
	agentMounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", agentPid))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent mounts:\n%s", agentMounts)
	for _, line := range strings.Split(strings.TrimSpace(string(agentMounts)), "\n") {
		mp := strings.Fields(line)[4]
		if mp != "/" && mp != "/proc" && mp != "/dev" && mp != "/cgroup" && !strings.HasPrefix(mp, "/cgroup-v1/") && !strings.HasPrefix(mp, "/rootfs") {
			t.Errorf("agent sees a mount it should not: %s", line)
		}
	}
	if err := b.m.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := b.m.Kill(); err != nil {
		t.Fatalf("second Kill: %v", err)
	}
	select {
	case <-b.m.Done():
	default:
		t.Fatal("Done still open after Kill")
	}
	if b.m.Err() == nil {
		t.Fatal("killed machine reports a clean exit")
	}
	b.c.Close()
	// The agent's own pid is in its namespace, so this covers it too
	// (a bare kill(pid, 0) could meet a new process that reused the pid).
	if left := append(inPidNS(t, pidns), inPidNS(t, ctrns)...); len(left) > 0 {
		t.Fatalf("processes left in the sandbox: %v", left)
	}
	if got := mountinfo(t, testRoot); !sameLines(got, mountsBefore) {
		t.Fatalf("host mounts changed:\n%s", diffLines(got, mountsBefore))
	}
	if got := openFDs(t); got > fdsBefore {
		t.Fatalf("%d descriptors open, %d before", got, fdsBefore)
	}
	// The writable layer is free for the next boot.
	if err := os.RemoveAll(b.upper); err != nil {
		t.Fatal(err)
	}
}

// A host that goes away takes the machine with it.
func TestHostGoneStopsMachine(t *testing.T) {
	b := bootFresh(t)
	if _, err := b.c.Start(ctxT(t), wire.ProcessSpec{ID: "m", Main: true, Args: []string{"sleep", "1000"}}); err != nil {
		t.Fatal(err)
	}
	b.c.Close()
	select {
	case <-b.m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("machine still running after its host left")
	}
}

// A second boot over the same writable layer sees the first one's changes.
func TestRestartKeepsWritableLayer(t *testing.T) {
	b := bootFresh(t)
	if r := b.sh(t, "echo kept > /root/state"); r.status.Code != 0 {
		t.Fatalf("%+v", r)
	}
	if err := b.c.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b.m.Kill()
	b2 := boot(t, b.layer, b.upper, filepath.Join(filepath.Dir(b.upper), "work"))
	if r := b2.sh(t, "cat /root/state"); r.stdout != "kept\n" {
		t.Fatalf("%+v", r)
	}
}

// mountinfo lists the host's mounts that involve paths under root: other
// tests on the host may mount things meanwhile.
// A root directory the host assembled is the rootfs as it is: what the
// container writes lands in it, as a build step's snapshot needs.
func TestRootDir(t *testing.T) {
	needRoot(t)
	dir := newImage(t)
	b := bootSpec(t, vm.MachineSpec{ID: "rootdir", RootDir: dir})
	if r := b.sh(t, "echo built > /root/out && rm /bin/data && cat /root/out"); r.status.Code != 0 || r.stdout != "built\n" {
		t.Fatalf("run in root dir: %+v", r)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "root/out")); err != nil || string(got) != "built\n" {
		t.Fatalf("host sees %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin/data")); !os.IsNotExist(err) {
		t.Fatalf("removed file still on the host: %v", err)
	}
}

// Layers stack top over base, and a chain too long for one page of mount
// options still mounts.
func TestLayerOrder(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	base := newImage(t)
	layers := []string{base}
	for i := range 60 {
		l := filepath.Join(dir, "layers", fmt.Sprintf("%02d-%s", i, strings.Repeat("x", 64)))
		if err := os.MkdirAll(filepath.Join(l, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l, "etc/which"), []byte(fmt.Sprintf("layer %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	os.Mkdir(upper, 0o755)
	os.Mkdir(work, 0o755)
	spec := vm.MachineSpec{ID: "layers", StateDir: filepath.Join(dir, "state"), Layers: layers, UpperDir: upper, WorkDir: work}
	m, err := New(agentBin).Boot(ctxT(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	if got := m.Rootfs().Lower; got[0] != layers[60] || got[60] != base {
		t.Fatalf("lower dirs not top first: %q", got)
	}
	c, err := wire.NewClient(m.Conn())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Setup(ctxT(t), wire.SetupRequest{Rootfs: m.Rootfs(), Hostname: "layers"}); err != nil {
		t.Fatal(err)
	}
	b := &box{m: m, c: c}
	if r := b.sh(t, "cat /etc/which"); r.stdout != "layer 59\n" {
		t.Fatalf("%+v", r)
	}
}

func mountinfo(t *testing.T, root string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), root) {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

func sameLines(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func diffLines(got, before []string) string {
	return "before:\n" + strings.Join(before, "\n") + "\nnow:\n" + strings.Join(got, "\n")
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// inPidNS lists the pids of processes in the pid namespace ns.
// descendants lists pid's children, oldest first, and their descendants.
func descendants(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	parent := map[int]int{}
	var all []int
	for _, e := range ents {
		var p int
		if _, err := fmt.Sscanf(e.Name(), "%d", &p); err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// The fields after the command's closing parenthesis: state, ppid.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 {
			parent[p], _ = strconv.Atoi(fields[1])
			all = append(all, p)
		}
	}
	var out []int
	for _, p := range all {
		for q := parent[p]; q != 0; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	sort.Ints(out)
	return out
}

func inPidNS(t *testing.T, ns string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && l == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}
