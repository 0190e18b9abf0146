package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/vm/qemu"
	"github.com/arcavm/arca/internal/testenv"
	"golang.org/x/sys/unix"
)

// qemuKit is the kit the qemu tests boot; they skip without one, except in
// CI, where make test builds it first.
func qemuKit(t *testing.T) *qemu.Kit {
	t.Helper()
	testenv.RequireRoot(t)
	dir := os.Getenv("ARCA_QEMU_KIT")
	if dir == "" {
		dir = qemu.DefaultKit
	}
	kit, err := qemu.LoadKit(dir)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("qemu kit: %v (make test builds it first)", err)
		}
		t.Skipf("qemu kit: %v", err)
	}
	return kit
}

// qemuPIDs lists the qemu processes whose command line points into root.
func qemuPIDs(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range ents {
		if strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "qemu-system") && strings.Contains(string(cmdline), root) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// TestQemuDriver: containers are VMs of the kit's kernel; run, logs and exit
// codes work as on any driver; a qemu killed under a running container ends
// it with State.Error, and nothing of the VM outlives it.
func TestQemuDriver(t *testing.T) {
	kit := qemuKit(t)
	d := testenv.StartDaemon(t, testenv.Options{Driver: "qemu", Args: []string{"--kit", kit.Dir},
		StartTimeout: 60 * time.Second})
	ref := testenv.SharedBusybox(t).Ref
	d.Docker(t, "pull", "-q", ref).Must(t)

	info := d.Docker(t, "info", "--format", "{{.Driver}} {{json .DriverStatus}}").Must(t).Stdout
	if !strings.Contains(info, "qemu") || !(strings.Contains(info, `"Acceleration","TCG"`) || strings.Contains(info, `"Acceleration","KVM"`)) {
		t.Errorf("docker info: %q, want the qemu driver and its acceleration", info)
	}
	// The VMs' NICs are on the daemon's user-space switch, as on a Mac.
	if !strings.Contains(info, `"Underlay","switch"`) {
		t.Errorf("docker info: %q, want the VMs on the user-space switch", info)
	}
	// Both name the kernel machines boot: the compiled one when make kit
	// made it, else Debian's.
	if !strings.Contains(info, `"Guest kernel","`+kit.Describe()+`"`) {
		t.Errorf("docker info: %q, want the guest kernel %q", info, kit.Describe())
	}
	if tree := runArca(t, "actors", "--socket", d.Socket()); !strings.Contains(tree, "(guest kernel "+kit.Describe()+")") {
		t.Errorf("arca actors does not name the guest kernel %q:\n%s", kit.Describe(), tree)
	}
	tcg := strings.Contains(info, `"Acceleration","TCG"`)
	if tcg && !strings.Contains(info, `"Boot","template restore"`) {
		t.Errorf("docker info: %q, want TCG's VMs restored from templates", info)
	}

	var host unix.Utsname
	unix.Uname(&host)
	hostRelease := unix.ByteSliceToString(host.Release[:])
	start := time.Now()
	got := strings.TrimSpace(d.Docker(t, "run", "--rm", ref, "uname", "-r").Must(t).Stdout)
	t.Logf("docker run --rm uname -r: %s", time.Since(start))
	if got != kit.Release || got == hostRelease {
		t.Errorf("uname -r in a container: %q, want the guest kernel %q (host runs %q)", got, kit.Release, hostRelease)
	}

	// docker build's default path: each RUN in a VM of the kit's kernel,
	// writing its snapshot through the 9p root; a file a step removes is
	// gone from the image.
	bdir := t.TempDir()
	writeFiles(t, bdir, map[string]string{"Dockerfile": "FROM " + ref + "\nRUN uname -r > /kernel && rm /bin/true\nCMD [\"cat\", \"/kernel\"]\n"})
	start = time.Now()
	bid := strings.TrimSpace(d.DockerCmd(t, buildkitCmd, "build", "-q", bdir).Must(t).Stdout)
	t.Logf("docker build (BuildKit, one RUN): %s", time.Since(start))
	if got := strings.TrimSpace(d.Docker(t, "run", "--rm", bid).Must(t).Stdout); got != kit.Release {
		t.Errorf("a RUN's uname -r: %q, want the guest kernel %q (host runs %q)", got, kit.Release, hostRelease)
	}
	if r := d.Docker(t, "run", "--rm", bid, "ls", "/bin/true"); r.Code == 0 {
		t.Errorf("a file the RUN removed is in the image: %s", r.Stdout)
	}
	d.Docker(t, "rmi", bid).Must(t)

	name := testenv.Name(t, "codes")
	r := d.Docker(t, "run", "--name", name, ref, "sh", "-c", "echo out; echo err >&2; exit 3")
	if r.Code != 3 || !strings.Contains(r.Stdout, "out") || !strings.Contains(r.Stderr, "err") {
		t.Errorf("docker run exit 3: %s", r.Stdout+r.Stderr)
	}
	logs := d.Docker(t, "logs", name).Must(t)
	if logs.Stdout != "out\n" || logs.Stderr != "err\n" {
		t.Errorf("docker logs: stdout %q stderr %q", logs.Stdout, logs.Stderr)
	}
	if code := strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{.State.ExitCode}}", name).Must(t).Stdout); code != "3" {
		t.Errorf("ExitCode = %s, want 3", code)
	}
	// The second VM of a shape is the first's template restored: its
	// agent says so on the console.
	id := strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{.Id}}", name).Must(t).Stdout)
	console, _ := os.ReadFile(filepath.Join(d.Root(), "containers", id, "machine", "console.log"))
	if resumed := strings.Contains(string(console), "resumed from template"); tcg && !resumed {
		t.Errorf("second VM of a shape booted cold; console:\n%s", console)
	}
	// A stopped container starts again on the disk it had.
	d.Docker(t, "rm", name).Must(t)
	keep := testenv.Name(t, "keep")
	d.Docker(t, "run", "--name", keep, ref, "sh", "-c", "cat /note 2>/dev/null; echo kept > /note").Must(t)
	if out := d.Docker(t, "start", "-a", keep).Must(t).Stdout; out != "kept\n" {
		t.Errorf("restarted container: %q, want its note kept", out)
	}
	// docker diff of the stopped VM: the agent of a machine booted for it
	// compares the writable disk with the image's.
	if out := d.Docker(t, "diff", keep).Must(t).Stdout; out != "A /note\n" {
		t.Errorf("docker diff in a VM: %q, want A /note", out)
	}
	if out := d.Docker(t, "run", "--rm", ref, "cat", "/note"); out.Code == 0 {
		t.Errorf("another container sees /note: %q", out.Stdout)
	}
	d.Docker(t, "rm", keep).Must(t)

	// A block volume is a disk of the VM's own, with ext4 on it; what is
	// written lands in the image (read back on the host once the VM is off).
	blk := testenv.Name(t, "blk")
	d.Docker(t, "volume", "create", "--driver", "block", "--opt", "size=64M", blk).Must(t)
	if out := d.Docker(t, "run", "--rm", "-v", blk+":/data", ref, "sh", "-c", "echo on-disk > /data/f; grep ' /data ' /proc/mounts").Must(t).Stdout; !strings.Contains(out, "virtio-arca-vol0 /data ext4 ") {
		t.Errorf("block volume in the VM: %q", out)
	}
	image := filepath.Join(d.Root(), "volumes", blk, "disk.ext4")
	// The VM powers off in the background after run --rm: then the image
	// has the file.
	var held []byte
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && string(held) != "on-disk\n"; time.Sleep(200 * time.Millisecond) {
		held, _ = exec.Command("debugfs", "-R", "cat /f", image).Output()
	}
	if string(held) != "on-disk\n" {
		t.Errorf("the block volume's image holds %q", held)
	}
	d.Docker(t, "volume", "rm", blk).Must(t)

	// Networks, volumes and ports across the VM boundary: two VMs talk by
	// name over the network's WireGuard mesh (the guest kernel's), share a
	// volume over 9p (read-only honoured), a port is published to the host,
	// and the host's loopback is reachable as host.docker.internal.
	hostSrv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostSrv.Close()
	go http.Serve(hostSrv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "host here") }))
	hostPort := strconv.Itoa(hostSrv.Addr().(*net.TCPAddr).Port)
	netName, vol, srv := testenv.Name(t, "net"), testenv.Name(t, "vol"), testenv.Name(t, "srv")
	d.Docker(t, "network", "create", netName).Must(t)
	d.Docker(t, "run", "-d", "--name", srv, "--network", netName, "-v", vol+":/data", "-p", "127.0.0.1::8080", ref,
		"sh", "-c", "echo from-vm > /data/x; exec httpd -f -p 8080 -h /data").Must(t)
	out := d.Docker(t, "run", "--rm", "--network", netName, "-v", vol+":/data:ro", ref, "sh", "-c",
		"cat /data/x; wget -q -O - http://"+srv+":8080/x; wget -q -O - http://host.docker.internal:"+hostPort+"/; echo; touch /data/y 2>/dev/null || echo read-only").Must(t).Stdout
	if out != "from-vm\nfrom-vm\nhost here\nread-only\n" {
		t.Errorf("second VM on the network and volume: %q", out)
	}
	hostAddr := strings.TrimSpace(d.Docker(t, "port", srv, "8080").Must(t).Stdout)
	if resp, err := http.Get("http://" + hostAddr + "/x"); err != nil {
		t.Errorf("published port %s: %v", hostAddr, err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "from-vm\n" {
			t.Errorf("published port %s: %q", hostAddr, body)
		}
	}
	d.Docker(t, "rm", "-f", srv).Must(t)
	d.Docker(t, "network", "rm", netName).Must(t)
	d.Docker(t, "volume", "rm", vol).Must(t)
	// --network host: the VM's own uplink.
	checkHostNetwork(t, d, ref)
	// A privileged container's cgroup tree, where the VM's cgroup2 has
	// every controller, and buildkitd in one (its state in a 9p volume).
	checkPrivilegedCgroup(t, d, ref)
	checkBuildxDockerContainer(t, d)

	// The rest of one container's life inside a VM: the VM's size from
	// --memory and --cpus, a TTY, pause, stats, cp both ways, and stop
	// delivering the stop signal to the main process.
	life := testenv.Name(t, "life")
	d.Docker(t, "run", "-d", "-t", "--name", life, "--memory", "256m", "--cpus", "2", ref,
		"sh", "-c", "tty; trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.2; done").Must(t)
	if out := d.Docker(t, "exec", life, "sh", "-c", "grep MemTotal /proc/meminfo; nproc").Must(t).Stdout; !strings.HasSuffix(out, "\n2\n") {
		t.Errorf("VM size: %q, want 2 CPUs", out)
	} else {
		var kb int
		fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(out, "MemTotal:")), "%d", &kb)
		if kb < 150<<10 || kb > 256<<10 {
			t.Errorf("MemTotal %d kB, want a little under --memory 256m", kb)
		}
	}
	d.Docker(t, "pause", life).Must(t)
	if r := d.Docker(t, "exec", life, "true").MustFail(t); !strings.Contains(r.Stderr, "is paused") {
		t.Errorf("exec into a paused VM: %q", r.Stderr)
	}
	d.Docker(t, "unpause", life).Must(t)
	if out := d.Docker(t, "stats", "--no-stream", "--format", "{{.MemUsage}}", life).Must(t).Stdout; !strings.Contains(out, "MiB") {
		t.Errorf("stats of a VM: %q", out)
	}
	src := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(src, []byte("into the vm\n"), 0o644)
	d.Docker(t, "cp", src, life+":/tmp/").Must(t)
	dst := t.TempDir()
	d.Docker(t, "cp", life+":/tmp/in.txt", dst).Must(t)
	if b, _ := os.ReadFile(filepath.Join(dst, "in.txt")); string(b) != "into the vm\n" {
		t.Errorf("cp through a VM: %q", b)
	}
	d.Docker(t, "stop", "-t", "20", life).Must(t)
	if st := strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{.State.ExitCode}}", life).Must(t).Stdout); st != "0" {
		t.Errorf("stopped by SIGTERM with a trap: exit %s, want 0", st)
	}
	if out := d.Docker(t, "logs", life).Must(t).Stdout; !strings.HasPrefix(out, "/dev/pts/0\r\n") || !strings.Contains(out, "got TERM\r\n") {
		t.Errorf("logs after stop: %q, want the pty's name and the trap's line (a TTY's CRLF)", out)
	}
	d.Docker(t, "rm", life).Must(t)

	// kill -9 of the VM under a running container.
	victim := testenv.Name(t, "victim")
	d.Docker(t, "run", "-d", "--name", victim, ref, "sleep", "1000").Must(t)
	pids := qemuPIDs(t, d.Root())
	if len(pids) != 1 {
		t.Fatalf("qemu processes of the daemon: %v, want one", pids)
	}
	p, err := os.FindProcess(atoi(t, pids[0]))
	if err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGKILL)
	var state string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		state = d.Docker(t, "inspect", "-f", "{{.State.Status}}|{{.State.Error}}", victim).Must(t).Stdout
		if strings.HasPrefix(state, "exited|") {
			break
		}
	}
	if status, msg, _ := strings.Cut(strings.TrimSpace(state), "|"); status != "exited" || msg == "" {
		t.Errorf("after kill -9 of its qemu: %q, want exited with State.Error", state)
	}
	d.Docker(t, "rm", "-f", victim).Must(t)

	// exec runs in the VM, and a killed qemu is brought back by the
	// container's restart policy, on a new VM.
	phoenix := testenv.Name(t, "phoenix")
	d.Docker(t, "run", "-d", "--name", phoenix, "--restart", "on-failure:3", ref, "sleep", "1000").Must(t)
	if out := d.Docker(t, "exec", phoenix, "uname", "-r").Must(t).Stdout; strings.TrimSpace(out) == hostRelease {
		t.Errorf("exec ran on the host's kernel: %q", out)
	}
	pids = qemuPIDs(t, d.Root())
	if len(pids) != 1 {
		t.Fatalf("qemu processes of the daemon: %v, want one", pids)
	}
	if p, err := os.FindProcess(atoi(t, pids[0])); err == nil {
		p.Signal(syscall.SIGKILL)
	}
	state = ""
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		state = strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", phoenix).Must(t).Stdout)
		if state == "1 running" {
			break
		}
	}
	if state != "1 running" {
		t.Errorf("after kill -9 of its qemu with on-failure: %q, want \"1 running\"", state)
	}
	if out := d.Docker(t, "exec", phoenix, "echo", "back").Must(t).Stdout; out != "back\n" {
		t.Errorf("exec after recovery: %q", out)
	}
	d.Docker(t, "rm", "-f", phoenix).Must(t)
	if left := qemuPIDs(t, d.Root()); len(left) > 0 {
		t.Errorf("qemu processes left: %v", left)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), d.Root()) {
		t.Errorf("mounts left under %s", d.Root())
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
