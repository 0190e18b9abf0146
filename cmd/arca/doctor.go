package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/arcavm/arca/guest/vm/kit"
)

// errChecksFailed: arca doctor found a FAIL (it has printed it).
var errChecksFailed = errors.New("checks failed")

type level int

const (
	levelOK level = iota
	levelWarn
	levelFail
)

func (l level) String() string { return [...]string{"OK", "WARN", "FAIL"}[l] }

// finding is one line of arca doctor: what was checked, what was found,
// and, unless it is OK, what to do.
type finding struct {
	level level
	check string
	msg   string
	fix   string
}

func ok(check, format string, args ...any) finding {
	return finding{levelOK, check, fmt.Sprintf(format, args...), ""}
}

func warn(check, fix, format string, args ...any) finding {
	return finding{levelWarn, check, fmt.Sprintf(format, args...), fix}
}

func fail(check, fix, format string, args ...any) finding {
	return finding{levelFail, check, fmt.Sprintf(format, args...), fix}
}

// doctorEnv is what the checks look at; tests point it at files of their
// own.
type doctorEnv struct {
	root, socket, kit string
	agent             string // arca-agent's path
	devKVM, cpuinfo   string
	mountinfo         string
	docker            string // the docker CLI, looked up on PATH
}

func runDoctor(args []string) error {
	fs := newFlags("doctor")
	paths := defaultPaths()
	socket := fs.String("socket", socketFromEnv(), "the daemon's socket")
	root := fs.String("root", paths.root, "the daemon's state directory")
	kitDir := fs.String("kit", paths.kit, "the guest kit directory")
	full := fs.Bool("full", false, "also drive the daemon end to end (pull, run, exec, a network, volumes, a published port) and print a report to paste into an issue")
	image := fs.String("image", "busybox", "with --full: the image the containers run (it needs sh, ping and httpd)")
	if err := parse(fs, args); err != nil {
		return err
	}
	env := doctorEnv{
		root: *root, socket: *socket, kit: *kitDir,
		devKVM: "/dev/kvm", cpuinfo: "/proc/cpuinfo", mountinfo: "/proc/self/mountinfo",
		docker: "docker",
	}
	if exe, err := os.Executable(); err == nil {
		env.agent = filepath.Join(filepath.Dir(exe), "arca-agent")
	}
	if *full {
		// Ctrl-C ends the step under way; what was made is still removed.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if runFullCheck(ctx, os.Stdout, env, *image) {
			return errChecksFailed
		}
		return nil
	}
	fmt.Printf("arca %s (%s) on %s\n\n", version, gitCommit, platform())
	if printFindings(os.Stdout, doctor(env)) {
		return errChecksFailed
	}
	return nil
}

// doctor runs every check, in the order a reader would fix things.
func doctor(env doctorEnv) []finding {
	var out []finding
	out = append(out, checkAgent(env.agent))
	out = append(out, platformChecks(env)...)
	out = append(out, checkDisk(env.root))
	out = append(out, checkSocket(env.socket))
	out = append(out, checkDocker(env.docker, env.socket)...)
	return out
}

// printFindings writes one line per finding and its fix below it, and
// tells whether any failed.
func printFindings(w io.Writer, fs []finding) (failed bool) {
	for _, f := range fs {
		fmt.Fprintf(w, "%-5s %-8s %s\n", f.level, f.check, f.msg)
		if f.fix != "" {
			fmt.Fprintf(w, "%-14s → %s\n", "", f.fix)
		}
		failed = failed || f.level == levelFail
	}
	return failed
}

func checkAgent(path string) finding {
	if path == "" {
		return warn("agent", "pass --agent to arca daemon", "cannot tell where this binary is")
	}
	st, err := os.Stat(path)
	if err != nil {
		return fail("agent", "make build (or make install) puts arca-agent beside arca; or pass arca daemon --agent PATH",
			"no arca-agent beside this binary (%s)", path)
	}
	if st.Mode()&0o111 == 0 {
		return fail("agent", "chmod 755 "+path, "%s is not executable", path)
	}
	return ok("agent", "%s", path)
}

// kitFinding checks the guest kit the qemu and vz drivers boot.
func kitFinding(dir, how string) finding {
	k, err := kit.Load(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return warn("kit", how, "no guest kit at %s: only the sandbox driver runs here", dir)
		}
		return warn("kit", how, "guest kit at %s unusable: %v", dir, err)
	}
	return ok("kit", "%s, %s, at %s", k.Describe(), k.Arch, k.Dir)
}

// Disk thresholds under the root: images, layers and containers' writable
// layers live there.
const (
	diskWarn = 10 << 30
	diskFail = 2 << 30
)

func checkDisk(root string) finding {
	dir := root
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	free, err := freeBytes(dir)
	if err != nil {
		return warn("disk", "", "cannot tell the free space under %s: %v", root, err)
	}
	return diskFinding(root, dir, free)
}

func diskFinding(root, measured string, free uint64) finding {
	where := root
	if measured != root {
		where = fmt.Sprintf("%s (not made yet; measured at %s)", root, measured)
	}
	switch {
	case free < diskFail:
		return fail("disk", "free space there, or point the daemon elsewhere with --root", "%s free under %s", gib(free), where)
	case free < diskWarn:
		return warn("disk", "pulls and builds need room: docker system prune, or free space there", "only %s free under %s", gib(free), where)
	}
	return ok("disk", "%s free under %s", gib(free), where)
}

func gib(n uint64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }

// checkSocket looks at the daemon's socket: there, a socket, whose, with
// which mode, and whether a daemon answers on it for this user.
func checkSocket(path string) finding {
	st, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return warn("socket", "systemctl start arca (after make install), or make run",
				"no socket at %s: the daemon is not running", path)
		}
		return warn("socket", "", "%s: %v", path, err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fail("socket", "remove it; the daemon makes its socket there", "%s is not a socket", path)
	}
	owner := ownerOf(st)
	mode := st.Mode().Perm()
	desc := fmt.Sprintf("%s (%s, mode %04o)", path, owner, mode)
	pingErr := ping(path)
	switch {
	case pingErr == nil && mode&0o002 != 0:
		return warn("socket", "chmod o-w "+path+" (the socket unit sets SocketMode=0660)",
			"a daemon answers on %s, and anyone on this machine may drive it (root-equivalent)", desc)
	case pingErr == nil:
		return ok("socket", "a daemon answers on %s", desc)
	case errors.Is(pingErr, syscall.EACCES) || errors.Is(pingErr, syscall.EPERM):
		return warn("socket", fmt.Sprintf("add yourself to the socket's group (usermod -aG %s $USER, then log in again), or use sudo", groupOf(st)),
			"you may not connect to %s", desc)
	case errors.Is(pingErr, syscall.ECONNREFUSED):
		return warn("socket", "start the daemon (systemctl start arca, or make run): it replaces a stale socket",
			"nothing answers on %s: a socket left by a daemon that is gone", desc)
	}
	return warn("socket", "see the daemon's log (journalctl -u arca)", "%s: %v", desc, pingErr)
}

// ping asks GET /_ping on a unix socket.
func ping(path string) error {
	c := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}
	resp, err := c.Get("http://arca/_ping")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /_ping: %s", resp.Status)
	}
	return nil
}

func ownerOf(st os.FileInfo) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "owner unknown"
	}
	return nameOfUser(sys.Uid) + ":" + groupOf(st)
}

func groupOf(st os.FileInfo) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "?"
	}
	gid := strconv.FormatUint(uint64(sys.Gid), 10)
	if g, err := user.LookupGroupId(gid); err == nil {
		return g.Name
	}
	return gid
}

func nameOfUser(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}

// checkDocker looks for the docker CLI, its arca context and the buildx
// and compose plugins.
func checkDocker(docker, socket string) []finding {
	path, err := exec.LookPath(docker)
	if err != nil {
		return []finding{warn("docker", "install the docker CLI (the client alone is enough)", "no docker CLI on PATH")}
	}
	var out []finding
	want := "unix://" + socket
	host, err := dockerOutput(path, "context", "inspect", "arca", "--format", "{{.Endpoints.docker.Host}}")
	switch {
	case err != nil:
		out = append(out, warn("context", "docker context create arca --docker host="+want+" (make install does it)", "no docker context named arca"))
	case host != want:
		out = append(out, warn("context", "docker context update arca --docker host="+want, "docker context arca points at %s, not %s", host, want))
	default:
		current, _ := dockerOutput(path, "context", "show")
		if current == "arca" {
			out = append(out, ok("context", "arca → %s, in use", host))
		} else {
			out = append(out, ok("context", "arca → %s (now on %q: docker context use arca switches)", host, current))
		}
	}
	if v, err := dockerOutput(path, "buildx", "version"); err == nil {
		out = append(out, ok("buildx", "%s", v))
	} else {
		out = append(out, warn("buildx", "make buildx installs the plugin", "no buildx plugin: docker build falls back to the classic builder"))
	}
	if v, err := dockerOutput(path, "compose", "version"); err == nil {
		out = append(out, ok("compose", "%s", v))
	} else {
		out = append(out, warn("compose", "make compose installs the plugin", "no compose plugin: docker compose is unavailable"))
	}
	return out
}

// dockerOutput runs the docker CLI (none of these calls reaches a
// daemon) and returns its first line.
func dockerOutput(docker string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, docker, args...).Output()
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return first, nil
}
