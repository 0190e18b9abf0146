package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

func TestPauseUnpause(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, img, "sh", "-c", "while :; do echo tick; sleep 0.05; done").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	time.Sleep(300 * time.Millisecond)
	d.Docker(t, "pause", name).Must(t)
	st := d.Docker(t, "inspect", "--format", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", name).Must(t).Stdout
	if strings.TrimSpace(st) != "paused true true" {
		t.Errorf("paused state: %q", st)
	}
	if ps := d.Docker(t, "ps", "--filter", "name="+name, "--format", "{{.Status}}").Must(t).Stdout; !strings.Contains(ps, "(Paused)") {
		t.Errorf("ps: %q", ps)
	}
	n1 := len(d.Docker(t, "logs", name).Must(t).Stdout)
	time.Sleep(500 * time.Millisecond)
	if n2 := len(d.Docker(t, "logs", name).Must(t).Stdout); n2 != n1 {
		t.Errorf("output grew while paused: %d -> %d", n1, n2)
	}
	if r := d.Docker(t, "exec", name, "true").MustFail(t); !strings.Contains(r.Stderr, "paused") {
		t.Errorf("exec while paused: %s", r.Stderr)
	}
	if r := d.Docker(t, "pause", name).MustFail(t); !strings.Contains(r.Stderr, "already paused") {
		t.Errorf("double pause: %s", r.Stderr)
	}
	d.Docker(t, "unpause", name).Must(t)
	time.Sleep(500 * time.Millisecond)
	if n3 := len(d.Docker(t, "logs", name).Must(t).Stdout); n3 <= n1 {
		t.Errorf("output did not resume: %d -> %d", n1, n3)
	}
	// Stop of a paused container works (it is thawed for the signal).
	d.Docker(t, "pause", name).Must(t)
	d.Docker(t, "stop", "-t", "2", name).Must(t)
	if st := d.Docker(t, "inspect", "--format", "{{.State.Status}}", name).Must(t).Stdout; strings.TrimSpace(st) != "exited" {
		t.Errorf("after stop of paused: %q", st)
	}
}

func TestTopAndStats(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, "--memory", "128m", img, "sh", "-c", "while :; do :; done").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	top := d.Docker(t, "top", name).Must(t).Stdout
	if !strings.Contains(top, "PID") || !strings.Contains(top, "while") {
		t.Errorf("top:\n%s", top)
	}
	top = d.Docker(t, "top", name, "-o", "pid,comm").Must(t).Stdout
	if !strings.Contains(top, "COMMAND") || !strings.Contains(top, "sh") {
		t.Errorf("top -o pid,comm:\n%s", top)
	}
	if r := d.Docker(t, "top", name, "--bogus"); r.Code == 0 {
		t.Errorf("top with a bad ps arg succeeded")
	}
	out := d.Docker(t, "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", name).Must(t).Stdout
	f := strings.Fields(out)
	if len(f) < 5 || f[0] != name || f[1] == "0.00%" || !strings.Contains(out, "128MiB") {
		t.Errorf("stats: %q", out)
	}
	if got := d.Docker(t, "inspect", "--format", "{{.HostConfig.Memory}}", name).Must(t).Stdout; strings.TrimSpace(got) != "134217728" {
		t.Errorf("memory in inspect: %q", got)
	}
}

func TestMemoryLimitOOM(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	// tail keeps the one endless "line" of /dev/zero in memory: it grows
	// until the 64 MB limit kills it.
	r := d.Docker(t, "run", "--name", name, "--memory", "64m", img, "tail", "/dev/zero")
	defer d.Docker(t, "rm", "-f", name)
	if r.Code != 137 {
		t.Errorf("exit %d, want 137 (%s)", r.Code, r.Stderr)
	}
	if got := d.Docker(t, "inspect", "--format", "{{.State.OOMKilled}}", name).Must(t).Stdout; strings.TrimSpace(got) != "true" {
		t.Errorf("OOMKilled: %q", got)
	}
}

func TestCopy(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, img, "sh", "-c", "mkdir -p /data/sub && echo inside > /data/sub/f && sleep 300").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	time.Sleep(300 * time.Millisecond)
	dir := t.TempDir()

	// Out of a running container.
	d.Docker(t, "cp", name+":/data", dir).Must(t)
	if b, _ := os.ReadFile(filepath.Join(dir, "data", "sub", "f")); string(b) != "inside\n" {
		t.Errorf("copied out: %q", b)
	}
	// Into it.
	src := filepath.Join(dir, "host.txt")
	os.WriteFile(src, []byte("from host\n"), 0o640)
	d.Docker(t, "cp", src, name+":/data/sub/").Must(t)
	if got := d.Docker(t, "exec", name, "cat", "/data/sub/host.txt").Must(t).Stdout; got != "from host\n" {
		t.Errorf("copied in: %q", got)
	}
	// Missing path: Docker's words.
	if r := d.Docker(t, "cp", name+":/nope", dir).MustFail(t); !strings.Contains(r.Stderr, "Could not find the file /nope") {
		t.Errorf("missing: %s", r.Stderr)
	}

	// A stopped container's files are reachable too (through an agent).
	d.Docker(t, "stop", "-t", "1", name).Must(t)
	d.Docker(t, "cp", src, name+":/data/").Must(t)
	out := filepath.Join(dir, "back")
	d.Docker(t, "cp", name+":/data/host.txt", out).Must(t)
	if b, _ := os.ReadFile(out); string(b) != "from host\n" {
		t.Errorf("round trip through a stopped container: %q", b)
	}
	d.Docker(t, "start", name).Must(t)
	if got := d.Docker(t, "exec", name, "cat", "/data/host.txt").Must(t).Stdout; got != "from host\n" {
		t.Errorf("file copied while stopped: %q", got)
	}

	// A tar whose entries try to leave the container writes nothing
	// outside it.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "../../../../../tmp/arca-escape-" + name, Mode: 0o644, Size: 3, Typeflag: tar.TypeReg},
		{Name: "link", Linkname: "/tmp", Typeflag: tar.TypeSymlink},
		{Name: "link/arca-escape2-" + name, Mode: 0o644, Size: 3, Typeflag: tar.TypeReg},
	} {
		tw.WriteHeader(h)
		if h.Size > 0 {
			tw.Write([]byte("bad"))
		}
	}
	tw.Close()
	req, _ := http.NewRequest("PUT", "http://arca/containers/"+name+"/archive?path=/data", &buf)
	if resp, err := rawAPI(d).Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, p := range []string{"/tmp/arca-escape-" + name, "/tmp/arca-escape2-" + name} {
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			t.Errorf("a tar entry escaped to the host: %s", p)
		}
	}
	// HEAD gives the path stat header.
	req, _ = http.NewRequest("HEAD", "http://arca/containers/"+name+"/archive?path=/data/host.txt", nil)
	resp, err := rawAPI(d).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Docker-Container-Path-Stat") == "" {
		t.Errorf("HEAD archive: %d %v", resp.StatusCode, resp.Header)
	}
	var st struct{ Name string }
	b64 := resp.Header.Get("X-Docker-Container-Path-Stat")
	if raw, err := decodeB64(b64); err != nil || json.Unmarshal(raw, &st) != nil || st.Name != "host.txt" {
		t.Errorf("path stat %q: %+v %v", b64, st, err)
	}
}

// TestContainerSize: ps -s and inspect --size report the writable layer,
// measured by the agent while the container runs and kept from its last
// run once it has stopped.
func TestContainerSize(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, img, "sh", "-c", "head -c 100000 /dev/zero > /blob; exec sleep 300").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	sizeRw := func() int {
		out := d.Docker(t, "inspect", "--size", "-f", "{{.SizeRw}} {{.SizeRootFs}}", name).Must(t).Stdout
		var rw, rootfs int
		fmt.Sscan(out, &rw, &rootfs)
		if rootfs <= rw {
			t.Errorf("SizeRootFs %d does not include the image (SizeRw %d)", rootfs, rw)
		}
		return rw
	}
	var rw int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if rw = sizeRw(); rw >= 100000 {
			break
		}
	}
	if rw < 100000 || rw > 120000 {
		t.Errorf("running: SizeRw %d, want about 100000", rw)
	}
	if ps := d.Docker(t, "ps", "-s", "--filter", "name="+name, "--format", "{{.Size}}").Must(t).Stdout; !strings.HasPrefix(ps, "100kB (virtual ") {
		t.Errorf("ps -s: %q", ps)
	}
	d.Docker(t, "stop", "-t", "1", name).Must(t)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if rw = sizeRw(); rw >= 100000 {
			break
		}
	}
	if rw < 100000 || rw > 120000 {
		t.Errorf("stopped: SizeRw %d, want the last run's, about 100000", rw)
	}
	if ps := d.Docker(t, "ps", "-a", "-s", "--filter", "name="+name, "--format", "{{.Size}}").Must(t).Stdout; !strings.HasPrefix(ps, "100kB (virtual ") {
		t.Errorf("ps -a -s after stop: %q", ps)
	}
}

// TestDiff: docker diff lists what a container added, changed and deleted
// against its image, running or stopped, sorted by path as dockerd does,
// and nothing of what the engine itself puts in every rootfs.
func TestDiff(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, img, "sh", "-c",
		"rm /etc/group; echo root2:x:0:0::/:/bin/sh >> /etc/passwd; mkdir -p /new/sub; echo a > /new/sub/f; : > /home/h; exec sleep 300").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	want := "C /etc\nD /etc/group\nC /etc/passwd\nC /home\nA /home/h\nA /new\nA /new/sub\nA /new/sub/f\n"
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = d.Docker(t, "diff", name).Must(t).Stdout; got == want {
			break
		}
	}
	if got != want {
		t.Errorf("docker diff of a running container:\n%s\nwant\n%s", got, want)
	}
	d.Docker(t, "stop", "-t", "1", name).Must(t)
	if got := d.Docker(t, "diff", name).Must(t).Stdout; got != want {
		t.Errorf("docker diff of a stopped container:\n%s\nwant\n%s", got, want)
	}
	// A fresh container differs in nothing, though the engine bound its
	// /etc files and made its mount points.
	fresh := testenv.Name(t, "fresh")
	d.Docker(t, "create", "--name", fresh, img, "true").Must(t)
	defer d.Docker(t, "rm", "-f", fresh)
	d.Docker(t, "start", "-a", fresh).Must(t)
	if got := d.Docker(t, "diff", fresh).Must(t).Stdout; got != "" {
		t.Errorf("docker diff of an untouched container: %q", got)
	}
	if r := d.Docker(t, "diff", "no-such-container").MustFail(t); !strings.Contains(r.Stderr, "No such container: no-such-container") {
		t.Errorf("docker diff of a missing container: %q", r.Stderr)
	}
}
