package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// escapeScript tries, from inside a container, every way out that the
// sandbox once left open: through each process's descriptors, cwd and root
// (the agent's were the host's), to read a host file by its absolute path
// and to create a file in whatever directory they lead to. $M is the host
// file, $T the name of the file to create.
const escapeScript = `
up=$(printf '../%.0s' $(seq 1 40))
for f in /proc/[0-9]*/fd/* /proc/[0-9]*/cwd /proc/[0-9]*/root /proc/[0-9]*/task/*/root; do
	cat "$f/$up$M" 2>/dev/null && echo "READ via $f"
	cat "$f$M" 2>/dev/null && echo "READ via $f"
	if [ -d "$f" ]; then
		: > "$f/$T" 2>/dev/null && echo "WROTE via $f"
		: > "$f/$up/dev/$T" 2>/dev/null && echo "WROTE dev via $f"
	fi
done
ls -l /proc/1/fd 2>&1
echo done`

// No host file, directory or device is reachable from a container,
// whatever capabilities short of --privileged it holds, and nothing it
// writes reaches the image's layers.
func TestNoWayOut(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	token := make([]byte, 8)
	rand.Read(token)
	secret := "host-secret-" + hex.EncodeToString(token)
	marker := filepath.Join(t.TempDir(), "marker")
	if err := os.WriteFile(marker, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, caps := range [][]string{nil, {"--cap-add", "SYS_PTRACE"}, {"--cap-add", "ALL"}} {
		name := "arca-escape-" + hex.EncodeToString(token) + strings.ReplaceAll(strings.Join(caps, ""), "--cap-add", "-")
		args := append([]string{"run", "--rm", "-e", "M=" + marker, "-e", "T=" + name}, caps...)
		args = append(args, img, "sh", "-c", escapeScript)
		r := d.Docker(t, args...)
		t.Logf("%v:\n%s%s", caps, r.Stdout, r.Stderr)
		if !strings.Contains(r.Stdout, "done\n") {
			t.Fatalf("%v: the script did not run: %q %q", caps, r.Stdout, r.Stderr)
		}
		if strings.Contains(r.Stdout, secret) || strings.Contains(r.Stdout, "READ via") {
			t.Errorf("%v: a container read the host's file", caps)
		}
		// It may write into its own tree; never anywhere on the host.
		found, _ := exec.Command("find", d.Root(), "/dev", "/tmp", "-xdev", "-name", name).Output()
		if len(found) > 0 {
			t.Errorf("%v: a container wrote on the host: %s", caps, found)
		}
		// The image is as it was for the next container.
		r2 := d.Docker(t, "run", "--rm", img, "sh", "-c", "find / -xdev -name '"+name+"*'; echo clean").Must(t)
		if r2.Stdout != "clean\n" {
			t.Errorf("%v: the next container of the image sees %q", caps, r2.Stdout)
		}
	}
}

// The container's processes live in a pid namespace of their own, with
// the command as PID 1, and an exec joins it.
func TestOwnPidNamespace(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	id := strings.TrimSpace(d.Docker(t, "run", "-d", img, "sleep", "1000").Must(t).Stdout)
	defer d.Docker(t, "rm", "-f", id)
	r := d.Docker(t, "exec", id, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; ps -o pid,comm | grep -c arca-agent || true").Must(t)
	if !strings.HasPrefix(r.Stdout, "sleep 1000 \n0\n") {
		t.Fatalf("PID 1 and the agent seen from an exec: %q", r.Stdout)
	}
}

// Docker's default seccomp profile applies; the sandbox adds its boundary
// filter, which no capability lifts.
func TestSeccomp(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"default profile", []string{img, "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true || echo refused"}, "Seccomp:\t2\nrefused\n"},
		{"works otherwise", []string{img, "sh", "-c", "echo hi > /tmp/x && cat /tmp/x"}, "hi\n"},
		{"mount refused with SYS_ADMIN", []string{"--cap-add", "SYS_ADMIN", img, "sh", "-c", "mkdir -p /m; mount -t tmpfs none /m && echo mounted || echo refused"}, "refused\n"},
		{"unconfined lifts the profile", []string{"--security-opt", "seccomp=unconfined", img, "sh", "-c", "unshare -U true && echo unshared"}, "unshared\n"},
		{"host kernel log masked", []string{"--cap-add", "SYSLOG", img, "sh", "-c", "head -c 1 /proc/kmsg | wc -c"}, "0\n"},
		{"no-new-privileges", []string{"--security-opt", "no-new-privileges", img, "grep", "NoNewPrivs:", "/proc/self/status"}, "NoNewPrivs:\t1\n"},
		{"privileged is the exception", []string{"--privileged", img, "sh", "-c", "grep Seccomp: /proc/self/status; mkdir -p /m; mount -t tmpfs none /m && echo mounted"}, "Seccomp:\t0\nmounted\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := d.Docker(t, append([]string{"run", "--rm"}, c.args...)...)
			if r.Stdout != c.want {
				t.Fatalf("stdout %q, want %q; stderr %q", r.Stdout, c.want, r.Stderr)
			}
		})
	}
	r := d.Docker(t, "run", "--rm", "--security-opt", "seccomp=nonsense", img, "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "seccomp") {
		t.Fatalf("bad profile accepted: %q", r.Stderr)
	}
}
