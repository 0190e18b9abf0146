package qemu

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/vm/hostproc"
	"github.com/arcavm/arca/internal/prereq"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/wire"
)

// agentBin is the agent built once for all tests; "" when not root.
var agentBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if os.Geteuid() != 0 {
			return m.Run() // the VM tests skip themselves
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

func TestPortNameMatchesAgent(t *testing.T) {
	if agentPortName != wire.VMPortName {
		t.Fatalf("driver serves port %q, agent looks for %q", agentPortName, wire.VMPortName)
	}
	if resetParam != wire.VMPowerOffParam+"=reset" {
		t.Fatalf("driver asks for %q, agent looks for %s=reset", resetParam, wire.VMPowerOffParam)
	}
	if templateParam != wire.VMTemplateParam {
		t.Fatalf("driver boots templates with %q, agent looks for %q", templateParam, wire.VMTemplateParam)
	}
}

// kitOrSkip loads the kit in $env, or def, and checks for the tools its
// test needs (check says what is missing, or ""). Without
// them the test skips, except in CI (CI=true), where make test builds the
// kits first and anything missing is a failure.
func kitOrSkip(t *testing.T, env, def, target string, check func(k *Kit) string) *Kit {
	t.Helper()
	if os.Geteuid() != 0 {
		prereq.Missing(t, "qemu tests need root")
	}
	dir := os.Getenv(env)
	if dir == "" {
		dir = def
	}
	missing := func(why string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("qemu tests: %s (make test runs %s first)", why, target)
		}
		t.Skipf("qemu tests: %s; run %s", why, target)
	}
	k, err := LoadKit(dir)
	if err != nil {
		missing(err.Error())
	}
	if why := check(k); why != "" {
		missing(why)
	}
	return k
}

// testKit is the kit the VM tests boot: $ARCA_QEMU_KIT or the default.
func testKit(t *testing.T) string {
	t.Helper()
	kitOrSkip(t, "ARCA_QEMU_KIT", DefaultKit, "make kit", func(*Kit) string {
		if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
			return "no qemu-system-x86_64"
		}
		if f, err := elf.Open("/bin/busybox"); err != nil || f.Section(".interp") != nil {
			return "no static /bin/busybox (Debian: busybox-static)"
		}
		return ""
	})
	if kit := os.Getenv("ARCA_QEMU_KIT"); kit != "" {
		return kit
	}
	return DefaultKit
}

// newImage makes a two-layer busybox image: the base has busybox and a
// file the top layer deletes (a whiteout the flattening must apply).
func newImage(t *testing.T) []string {
	t.Helper()
	root := t.TempDir()
	base, top := filepath.Join(root, "base"), filepath.Join(root, "top")
	for _, d := range []string{"bin", "etc", "tmp", "root"} {
		os.MkdirAll(filepath.Join(base, d), 0o755)
	}
	os.Chmod(filepath.Join(base, "tmp"), 0o1777)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "bin/busybox"), bb, 0o755)
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			os.Symlink("busybox", filepath.Join(base, "bin", applet))
		}
	}
	os.WriteFile(filepath.Join(base, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(base, "etc/group"), []byte("root:x:0:\n"), 0o644)
	os.WriteFile(filepath.Join(base, "etc/gone"), []byte("deleted above\n"), 0o644)
	os.MkdirAll(filepath.Join(top, "etc"), 0o755)
	os.WriteFile(filepath.Join(top, "etc/motd"), []byte("top layer\n"), 0o644)
	if err := exec.Command("mknod", filepath.Join(top, "etc/gone"), "c", "0", "0").Run(); err != nil {
		t.Fatalf("whiteout: %v", err)
	}
	return []string{base, top}
}

func newDriver(t *testing.T, kit, root string) *Driver {
	t.Helper()
	d, err := New(context.Background(), Config{Kit: kit, Agent: agentBin, Root: root, Accel: AccelTCG, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testLogger writes the driver's log, debug too, to the test's.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testLog writes the driver's log to the test's.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// session boots a machine and sets its container up.
func session(t *testing.T, d *Driver, spec vm.MachineSpec) (vm.Machine, *wire.Client, time.Duration) {
	t.Helper()
	start := time.Now()
	m, err := d.Boot(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Kill() })
	c, err := wire.NewClient(m.Conn())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v; console:\n%s", err, hostproc.Tail(filepath.Join(spec.StateDir, consoleLog), 4000))
	}
	ready := time.Since(start)
	if err := c.Setup(ctx, wire.SetupRequest{Rootfs: m.Rootfs(), Hostname: spec.Hostname}); err != nil {
		t.Fatalf("setup: %v; console:\n%s", err, hostproc.Tail(filepath.Join(spec.StateDir, consoleLog), 4000))
	}
	// The processes the tests run are execs: they join the main
	// process's namespaces, as docker exec does.
	p, err := c.Start(ctx, wire.ProcessSpec{ID: "main", Main: true, Args: []string{"sleep", "100000"}})
	if err != nil {
		t.Fatalf("start main: %v; console:\n%s", err, hostproc.Tail(filepath.Join(spec.StateDir, consoleLog), 4000))
	}
	p.Close()
	return m, c, ready
}

type result struct {
	out, err string
	code     int
}

func run(t *testing.T, c *wire.Client, id string, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := c.Start(ctx, wire.ProcessSpec{ID: id, Args: args, Stdin: stdin != nil,
		Env: []string{"PATH=/bin"}, Capabilities: wire.DefaultCapabilities})
	if err != nil {
		t.Fatalf("start %q: %v", args, err)
	}
	if stdin != nil {
		go func() { io.Copy(p.Stdin, stdin); p.Stdin.Close() }()
	}
	var out, errb bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(&out, p.Stdout) }()
	go func() { defer wg.Done(); io.Copy(&errb, p.Stderr) }()
	wg.Wait()
	st, err := p.Wait()
	if err != nil {
		t.Fatalf("wait %q: %v", args, err)
	}
	return result{out.String(), errb.String(), st.Code}
}

// A busybox container in a real VM under TCG: commands, exit codes, stdin,
// bulk output, the image's layers flattened with whiteouts, a writable disk
// that survives a restart; a second VM of the same image boots alongside
// (one image disk, built once), and a qemu killed with SIGKILL is seen at
// once. Nothing is left behind.
func TestVM(t *testing.T) {
	kit := testKit(t)
	root := t.TempDir()
	d := newDriver(t, kit, root)
	layers := newImage(t)
	spec := func(name string) vm.MachineSpec {
		return vm.MachineSpec{ID: name, StateDir: filepath.Join(root, "containers", name), Layers: layers, Hostname: name}
	}

	var pids []int
	var pidsMu sync.Mutex
	track := func(m vm.Machine) {
		pidsMu.Lock()
		pids = append(pids, m.(*machine).Pid())
		pidsMu.Unlock()
	}

	t.Run("parallel", func(t *testing.T) {
		t.Run("container", func(t *testing.T) {
			t.Parallel()
			m, c, ready := session(t, d, spec("one"))
			track(m)
			t.Logf("boot to agent: %s", ready)
			for _, tc := range []struct {
				name  string
				args  []string
				stdin string
				want  result
			}{
				{"echo", []string{"echo", "hello", "vm"}, "", result{out: "hello vm\n"}},
				{"exit code", []string{"sh", "-c", "echo oops >&2; exit 42"}, "", result{err: "oops\n", code: 42}},
				{"stdin", []string{"sh", "-c", "tr a-z A-Z"}, "shout\n", result{out: "SHOUT\n"}},
				{"hostname", []string{"hostname"}, "", result{out: "one\n"}},
				{"kernel", []string{"uname", "-r"}, "", result{out: d.Kit().Release + "\n"}},
				{"top layer", []string{"cat", "/etc/motd"}, "", result{out: "top layer\n"}},
				{"whiteout", []string{"sh", "-c", "test -e /etc/gone; echo $?"}, "", result{out: "1\n"}},
			} {
				var in io.Reader
				if tc.stdin != "" {
					in = strings.NewReader(tc.stdin)
				}
				if got := run(t, c, tc.name, in, tc.args...); got != tc.want {
					t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
				}
			}
			big := run(t, c, "big", nil, "sh", "-c", "head -c 10485760 /dev/zero | tr '\\0' x")
			if len(big.out) != 10<<20 || strings.Trim(big.out, "x") != "" || big.code != 0 {
				t.Errorf("10 MB output: got %d bytes, code %d, stderr %q", len(big.out), big.code, big.err)
			}
			if got := run(t, c, "write", nil, "sh", "-c", "echo kept > /root/note && sync"); got.code != 0 {
				t.Fatalf("write: %+v", got)
			}

			// A clean shutdown powers the guest off: Done, and no error.
			shutdownClean(t, c, m, 30*time.Second)
			m.Kill()

			// The writable disk survives the machine.
			m2, c2, ready := session(t, d, spec("one"))
			track(m2)
			t.Logf("boot to agent (restart): %s", ready)
			if got := run(t, c2, "read", nil, "cat", "/root/note"); got.out != "kept\n" {
				t.Errorf("after restart: %+v, want the note kept", got)
			}
			m2.Kill()
		})
		t.Run("killed", func(t *testing.T) {
			t.Parallel()
			m, c, ready := session(t, d, spec("two"))
			track(m)
			t.Logf("boot to agent: %s", ready)
			if got := run(t, c, "echo", nil, "cat", "/etc/motd"); got.out != "top layer\n" {
				t.Errorf("second machine of the image: %+v", got)
			}
			// kill -9 of qemu, as an OOM killer or an admin would.
			if err := m.(*machine).cmd.Process.Signal(os.Kill); err != nil {
				t.Fatal(err)
			}
			select {
			case <-m.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("a killed qemu was not noticed")
			}
			if err := m.Err(); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Errorf("Err = %v, want why qemu died", err)
			}
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Error("the agent session outlived its machine")
			}
			m.Kill()
		})
	})

	// One image disk for both machines; per-container disks in their dirs.
	images, _ := filepath.Glob(filepath.Join(root, "disks", "*.ext4"))
	if len(images) != 1 {
		t.Errorf("image disks: %q, want one", images)
	}
	for _, name := range []string{"one", "two"} {
		entries, _ := os.ReadDir(spec(name).StateDir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if strings.Join(names, " ") != "console.log disk.ext4" {
			t.Errorf("%s state dir holds %q, want only the console log and the disk", name, names)
		}
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("qemu %d still exists", pid)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), root) {
		t.Errorf("mounts left under %s:\n%s", root, mounts)
	}
}

// shutdownClean asks the agent to shut down and expects the guest to power
// off within limit, with no error.
func shutdownClean(t *testing.T, c *wire.Client, m vm.Machine, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-m.Done():
		if err := m.Err(); err != nil {
			t.Errorf("clean power-off: Err = %v", err)
		}
	case <-time.After(limit):
		t.Fatal("guest did not power off")
	}
}
