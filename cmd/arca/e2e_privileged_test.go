package main

import (
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// TestPrivilegedCgroup: what a nested runtime needs of a privileged
// container (sandbox; the qemu test runs the same in a VM).
func TestPrivilegedCgroup(t *testing.T) {
	d := testenv.SharedDaemon(t)
	checkPrivilegedCgroup(t, d, pulled(t, d))
}

// checkPrivilegedCgroup: a privileged container gets, as dockerd gives it
// on cgroup v2, a cgroup namespace rooted at its own cgroup with cgroup2
// mounted writable at /sys/fs/cgroup and a writable /sys, and its execs
// join that namespace, also once the container moved itself to a child
// cgroup and handed controllers down (as buildkitd does), when they join
// its main process's cgroup as runc exec does. Nothing of it is given to
// a container short of --privileged.
func checkPrivilegedCgroup(t *testing.T, d *testenv.Daemon, img string) {
	t.Helper()
	const view = `grep '^0::' /proc/self/cgroup; awk '$2=="/sys/fs/cgroup"{print $3}' /proc/mounts; awk '$2=="/sys"{split($4,o,","); print o[1]}' /proc/mounts`
	if out := d.Docker(t, "run", "--rm", "--cap-add", "ALL", img, "sh", "-c", view).Must(t).Stdout; strings.Contains(out, "cgroup2") || !strings.HasSuffix(out, "ro\n") {
		t.Errorf("a container with every capability short of --privileged: %q, want no cgroup mount and a read-only /sys", out)
	}
	if out := d.Docker(t, "run", "--rm", "--privileged", img, "sh", "-c", view).Must(t).Stdout; out != "0::/\ncgroup2\nrw\n" {
		t.Errorf("privileged: %q, want its own cgroup root, cgroup2 at /sys/fs/cgroup, /sys writable", out)
	}
	name := testenv.Name(t, "priv")
	d.Docker(t, "run", "-d", "--name", name, "--privileged", img, "sh", "-c",
		`cd /sys/fs/cgroup && mkdir init && echo 0 > init/cgroup.procs && `+
			`for c in $(cat cgroup.controllers); do echo +$c > cgroup.subtree_control; done; `+
			`echo "$(cat cgroup.subtree_control)" > /tmp/enabled; echo ready; exec sleep 60`).Must(t)
	defer d.Docker(t, "rm", "-f", name)
	// No exec before it is done: the exec's own process in the container's
	// cgroup would keep the controllers from being handed down.
	for i := 0; !strings.Contains(d.Docker(t, "logs", name).Stdout, "ready"); i++ {
		if i == 100 {
			t.Fatalf("the privileged container did not set its cgroups up: %q", d.Docker(t, "logs", name).Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out := d.Docker(t, "exec", name, "sh", "-c", `cat /tmp/enabled; grep '^0::' /proc/self/cgroup`).Must(t).Stdout
	enabled, cgroup, _ := strings.Cut(out, "\n")
	want := "0::/\n"
	if enabled != "" {
		want = "0::/init\n" // the container's cgroup is a parent now
	}
	t.Logf("controllers handed down by the privileged container: %q; its exec's cgroup: %q", enabled, cgroup)
	if cgroup != want {
		t.Errorf("exec after the container handed down %q: %q, want %q", enabled, cgroup, want)
	}
}
