package main

// make install and make uninstall, proven without systemd as PID 1: the
// files land under DESTDIR where the units say, systemd-analyze verify
// accepts the units, the daemon started exactly as the unit's ExecStart
// says (paths moved into the temp dir) serves docker run through the
// arca context, both on a socket of its own (with sd_notify READY=1 only
// once it serves) and on one handed over by socket activation
// (systemd-socket-activate, as arca.socket would), and uninstall leaves
// nothing but the state directory.

import (
	"context"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/prereq"
	"github.com/arcavm/arca/internal/testenv"
)

// installEnv is the environment for make and the docker CLI: no DOCKER_*
// from outside (DOCKER_HOST would beat the context), a private config.
func installEnv(dockerConfig string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_") || strings.HasPrefix(kv, "MAKE") || strings.HasPrefix(kv, "SUDO_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "DOCKER_CONFIG="+dockerConfig, "DOCKER_CLI_HINTS=false")
}

func runIn(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustRun(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := runIn(t, dir, env, timeout, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// unitValue returns the value of key= in a unit file ("" if absent).
func unitValue(unit, key string) string {
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	return ""
}

func TestMakeInstall(t *testing.T) {
	prereq.Root(t, "the daemon's sandboxes")
	for _, tool := range []string{"make", "docker", "systemd-analyze", "systemd-socket-activate"} {
		testenv.RequireTool(t, tool)
	}
	img := testenv.SharedBusybox(t).Ref
	src := testenv.ModuleRoot(t)
	// Short: the socket's path must fit in 108 bytes.
	tmp, err := os.MkdirTemp("", "arca-inst-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	dest := filepath.Join(tmp, "dest")
	socket := filepath.Join(tmp, "run", "arca.sock")
	cfg := filepath.Join(tmp, "docker")
	for _, d := range []string{filepath.Dir(socket), cfg} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	env := installEnv(cfg)
	vars := []string{"DESTDIR=" + dest, "PREFIX=/usr/local", "SOCKET=" + socket}
	mustRun(t, src, env, 10*time.Minute, "make", append([]string{"--no-print-directory", "install"}, vars...)...)

	// The files, where the units say.
	wantMode := map[string]fs.FileMode{
		"usr/local/bin/arca":              0o755,
		"usr/local/bin/arca-agent":        0o755,
		"etc/systemd/system/arca.service": 0o644,
		"etc/systemd/system/arca.socket":  0o644,
		"var/lib/arca":                    0o700 | fs.ModeDir,
	}
	for rel, mode := range wantMode {
		st, err := os.Stat(filepath.Join(dest, rel))
		if err != nil {
			t.Fatalf("after make install: %v", err)
		}
		if got := st.Mode() & (fs.ModePerm | fs.ModeDir); got != mode {
			t.Errorf("%s: mode %v, want %v", rel, got, mode)
		}
	}
	service := readFile(t, filepath.Join(dest, "etc/systemd/system/arca.service"))
	sock := readFile(t, filepath.Join(dest, "etc/systemd/system/arca.socket"))
	for key, want := range map[string]string{"Type": "notify", "Restart": "on-failure", "Requires": "arca.socket", "WantedBy": "multi-user.target"} {
		if got := unitValue(service, key); got != want {
			t.Errorf("arca.service %s=%q, want %q", key, got, want)
		}
	}
	for key, want := range map[string]string{"ListenStream": socket, "SocketMode": "0660", "SocketGroup": "arca", "WantedBy": "sockets.target"} {
		if got := unitValue(sock, key); got != want {
			t.Errorf("arca.socket %s=%q, want %q", key, got, want)
		}
	}
	execStart := strings.Fields(unitValue(service, "ExecStart"))
	want := []string{"/usr/local/bin/arca", "daemon", "--socket", socket, "--root", "/var/lib/arca", "--driver", "auto"}
	if !slices.Equal(execStart, want) {
		t.Fatalf("ExecStart %q, want %q", execStart, want)
	}

	verifyUnits(t, env, dest, filepath.Join(tmp, "verify"))

	// The defaults, as a user gets them: staged, verified, unstaged.
	defaults := filepath.Join(tmp, "defaults")
	mustRun(t, src, env, 10*time.Minute, "make", "--no-print-directory", "install", "DESTDIR="+defaults, "CONTEXT=")
	dservice := readFile(t, filepath.Join(defaults, "etc/systemd/system/arca.service"))
	if got := unitValue(dservice, "ExecStart"); got != "/usr/local/bin/arca daemon --socket /var/run/arca.sock --root /var/lib/arca --driver auto" {
		t.Errorf("default ExecStart %q", got)
	}
	if got := unitValue(readFile(t, filepath.Join(defaults, "etc/systemd/system/arca.socket")), "ListenStream"); got != "/var/run/arca.sock" {
		t.Errorf("default ListenStream %q", got)
	}
	verifyUnits(t, env, defaults, filepath.Join(tmp, "verify-defaults"))
	mustRun(t, src, env, 5*time.Minute, "make", "--no-print-directory", "uninstall", "DESTDIR="+defaults, "CONTEXT=", "PURGE=1")
	if left, err := os.ReadDir(defaults); err != nil || len(left) > 0 {
		t.Errorf("make uninstall PURGE=1 of a staged install left %v in %s (%v)", left, defaults, err)
	}

	// The context, for this (private) docker config.
	host := strings.TrimSpace(mustRun(t, tmp, env, time.Minute, "docker", "context", "inspect", "arca", "--format", "{{.Endpoints.docker.Host}}"))
	if host != "unix://"+socket {
		t.Fatalf("context arca points at %q", host)
	}

	// The daemon as ExecStart says, its paths in the temp dir.
	args := rewriteExecStart(execStart, dest)
	t.Run("own socket", func(t *testing.T) {
		notify := listenNotify(t, filepath.Join(tmp, "notify.sock"))
		d := startInstalled(t, args, filepath.Join(tmp, "daemon.log"), "NOTIFY_SOCKET="+notify.LocalAddr().String())
		msg := readNotify(t, notify, d, 2*time.Minute)
		if !strings.Contains(msg, "READY=1") {
			t.Fatalf("first notification %q, want READY=1", msg)
		}
		// READY=1 means serving: no retry needed.
		if err := ping(socket); err != nil {
			t.Fatalf("READY=1 came, but /_ping: %v", err)
		}
		mustRun(t, tmp, env, 2*time.Minute, "docker", "--context", "arca", "pull", "-q", img)
		if out := mustRun(t, tmp, env, 2*time.Minute, "docker", "--context", "arca", "run", "--rm", img, "echo", "through the arca context"); out != "through the arca context\n" {
			t.Fatalf("docker run: %q", out)
		}
		stopInstalled(t, d)
		if msg := readNotify(t, notify, nil, 10*time.Second); !strings.Contains(msg, "STOPPING=1") {
			t.Fatalf("notification at stop %q, want STOPPING=1", msg)
		}
		if _, err := os.Stat(socket); !os.IsNotExist(err) {
			t.Fatalf("the daemon's own socket is left after it stopped: %v", err)
		}
	})
	t.Run("socket activation", func(t *testing.T) {
		// As arca.socket: systemd-socket-activate makes the socket and
		// starts the daemon at the first connection, handing it over
		// (LISTEN_FDS).
		d := startInstalled(t, append([]string{"systemd-socket-activate", "-l", socket}, args...), filepath.Join(tmp, "activated.log"))
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(socket); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("systemd-socket-activate made no socket within 30 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The image pulled by the first run is in the state.
		if out := mustRun(t, tmp, env, 3*time.Minute, "docker", "--context", "arca", "run", "--rm", img, "echo", "activated"); out != "activated\n" {
			t.Fatalf("docker run: %q", out)
		}
		stopInstalled(t, d)
		log := readFile(t, filepath.Join(tmp, "activated.log"))
		if !strings.Contains(log, "socket_activated=true") {
			t.Fatalf("the daemon did not take the inherited socket; log:\n%s", log)
		}
		// systemd's socket is systemd's (RemoveOnStop): the daemon left it.
		if _, err := os.Stat(socket); err != nil {
			t.Fatalf("the daemon removed systemd's socket: %v", err)
		}
		os.Remove(socket)
	})

	mustRun(t, src, env, 5*time.Minute, "make", append([]string{"--no-print-directory", "uninstall"}, vars...)...)
	var left []string
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if rel, _ := filepath.Rel(dest, p); rel != "." && !strings.HasPrefix(rel+"/", "var/lib/arca/") && !slices.Contains([]string{"var", "var/lib"}, rel) {
			left = append(left, rel)
		}
		return nil
	})
	if len(left) > 0 {
		t.Fatalf("make uninstall left %q", left)
	}
	if _, err := os.Stat(filepath.Join(dest, "var/lib/arca/db")); err != nil {
		t.Fatalf("make uninstall took the state: %v", err)
	}
	if out, err := runIn(t, tmp, env, time.Minute, "docker", "context", "inspect", "arca"); err == nil {
		t.Fatalf("context arca still there after uninstall: %s", out)
	}
	mustRun(t, src, env, 5*time.Minute, "make", append([]string{"--no-print-directory", "uninstall", "PURGE=1"}, vars...)...)
	if _, err := os.Stat(filepath.Join(dest, "var/lib/arca")); !os.IsNotExist(err) {
		t.Fatalf("make uninstall PURGE=1 left the state: %v", err)
	}
}

// verifyUnits runs systemd-analyze verify on copies of dest's units whose
// ExecStart names the binary where DESTDIR put it (verify checks that it
// is executable). verify warns of a bad setting and still exits 0: any
// output fails.
func verifyUnits(t *testing.T, env []string, dest, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	service := readFile(t, filepath.Join(dest, "etc/systemd/system/arca.service"))
	writeFile(t, filepath.Join(dir, "arca.service"), strings.ReplaceAll(service, "/usr/local/", dest+"/usr/local/"))
	writeFile(t, filepath.Join(dir, "arca.socket"), readFile(t, filepath.Join(dest, "etc/systemd/system/arca.socket")))
	out, err := runIn(t, dir, env, time.Minute, "systemd-analyze", "verify", filepath.Join(dir, "arca.service"), filepath.Join(dir, "arca.socket"))
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// rewriteExecStart moves the unit's paths into dest: the binary and the
// state (the socket is already in the temp dir).
func rewriteExecStart(args []string, dest string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if strings.HasPrefix(a, "/usr/local/") || a == "/var/lib/arca" {
			out[i] = dest + a
		}
	}
	return out
}

type installed struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

func startInstalled(t *testing.T, args []string, logPath string, env ...string) *installed {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &installed{cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() { cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			cmd.Process.Kill()
			<-d.exited
		}
	})
	return d
}

func stopInstalled(t *testing.T, d *installed) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("the daemon did not stop within 30 s of SIGTERM; log:\n%s", readFile(t, d.log))
	}
}

func listenNotify(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readNotify waits for one sd_notify datagram; d, if given, failing
// first fails the test with its log.
func readNotify(t *testing.T, c *net.UnixConn, d *installed, timeout time.Duration) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(timeout))
		b := make([]byte, 4096)
		n, err := c.Read(b)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(b[:n])
	}()
	var exited chan struct{}
	if d != nil {
		exited = d.exited
	}
	select {
	case m := <-got:
		return m
	case <-exited:
		t.Fatalf("the daemon exited before notifying; log:\n%s", readFile(t, d.log))
	}
	return ""
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
