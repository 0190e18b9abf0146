package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// TestVolumes: the volume API, a named volume shared by two running
// containers, copy-up of image content on first use, anonymous volumes
// going with rm -v, and the refusals.
func TestVolumes(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	n := testenv.Name(t)
	d.Docker(t, "volume", "create", "--label", "team=a", n).Must(t)
	defer d.Docker(t, "volume", "rm", "-f", n)
	mp := strings.TrimSpace(d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}} {{.Driver}} {{.Labels.team}}", n).Must(t).Stdout)
	if !strings.HasSuffix(mp, "/volumes/"+n+"/_data local a") {
		t.Errorf("inspect: %q", mp)
	}
	if ls := d.Docker(t, "volume", "ls", "-q", "--filter", "label=team=a").Must(t).Stdout; !strings.Contains(ls, n+"\n") {
		t.Errorf("ls by label: %q", ls)
	}

	// Two containers at once: one writes, the other reads.
	d.Docker(t, "run", "-d", "--name", n+"-w", "-v", n+":/data", img, "sh", "-c", "echo shared > /data/f; sleep 300").Must(t)
	defer d.Docker(t, "rm", "-f", n+"-w")
	d.Docker(t, "run", "-d", "--name", n+"-r", "-v", n+":/data:ro", img, "sleep", "300").Must(t)
	defer d.Docker(t, "rm", "-f", n+"-r")
	var got string
	for i := 0; i < 50 && got != "shared\n"; i++ {
		got = d.Docker(t, "exec", n+"-r", "cat", "/data/f").Stdout
	}
	if got != "shared\n" {
		t.Errorf("reader sees %q", got)
	}
	if r := d.Docker(t, "exec", n+"-r", "touch", "/data/x"); r.Code == 0 || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Errorf("write to a :ro volume: %d %q", r.Code, r.Stderr)
	}
	if r := d.Docker(t, "volume", "rm", n); r.Code == 0 || !strings.Contains(r.Stderr, "volume is in use") {
		t.Errorf("rm in use: %d %q", r.Code, r.Stderr)
	}
	if dl := d.Docker(t, "volume", "ls", "-q", "--filter", "dangling=true").Must(t).Stdout; strings.Contains(dl, n+"\n") {
		t.Errorf("a used volume is listed as dangling")
	}

	// Copy-up: an empty volume on /etc gets the image's /etc first.
	out := d.Docker(t, "run", "--rm", "-v", n+"-etc:/etc", img, "cat", "/etc/passwd").Must(t).Stdout
	defer d.Docker(t, "volume", "rm", "-f", n+"-etc")
	if !strings.Contains(out, "root:") {
		t.Errorf("copy-up: /etc/passwd is %q", out)
	}
	// Data outlives its containers.
	d.Docker(t, "rm", "-f", n+"-w", n+"-r").Must(t)
	if out := d.Docker(t, "run", "--rm", "-v", n+":/data", img, "cat", "/data/f").Must(t).Stdout; out != "shared\n" {
		t.Errorf("after the writer is gone: %q", out)
	}

	// Anonymous volumes: kept by rm, removed by rm -v.
	d.Docker(t, "run", "--name", n+"-anon", "-v", "/anon", img, "true").Must(t)
	anon := strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", n+"-anon").Must(t).Stdout)
	if len(anon) != 64 {
		t.Fatalf("anonymous volume name %q", anon)
	}
	d.Docker(t, "rm", "-v", n+"-anon").Must(t)
	if r := d.Docker(t, "volume", "inspect", anon); r.Code == 0 {
		t.Errorf("rm -v left the anonymous volume")
	}

	d.Docker(t, "volume", "rm", n).Must(t)
	if r := d.Docker(t, "volume", "inspect", n); r.Code == 0 || !strings.Contains(r.Stderr, "no such volume") {
		t.Errorf("inspect after rm: %d %q", r.Code, r.Stderr)
	}
	d.Docker(t, "volume", "create", n+"-p").Must(t)
	if pr := d.Docker(t, "volume", "prune", "-f", "--filter", "all=true").Must(t).Stdout; !strings.Contains(pr, n+"-p") {
		t.Errorf("prune: %q", pr)
	}
}

// TestBindAndTmpfsMounts: -v binds (created if missing), :ro, --mount
// refusing a missing source, a single file bound, and --tmpfs.
func TestBindAndTmpfsMounts(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	n := testenv.Name(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("setting=1\n"), 0o644)

	out := d.Docker(t, "run", "--rm", "-v", dir+":/host", img, "sh", "-c", "cat /host/app.conf; echo written > /host/out").Must(t).Stdout
	if out != "setting=1\n" {
		t.Errorf("bind read: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "written\n" {
		t.Errorf("bind write: %q", b)
	}
	r := d.Docker(t, "run", "--rm", "-v", filepath.Join(dir, "app.conf")+":/etc/app.conf:ro", img, "sh", "-c", "cat /etc/app.conf; echo x > /etc/app.conf")
	if r.Stdout != "setting=1\n" || !strings.Contains(r.Stderr, "Read-only file system") {
		t.Errorf("file bind :ro: %q %q", r.Stdout, r.Stderr)
	}
	missing := filepath.Join(dir, "made-by-v")
	d.Docker(t, "run", "--rm", "-v", missing+":/m", img, "true").Must(t)
	if st, err := os.Stat(missing); err != nil || !st.IsDir() {
		t.Errorf("-v did not create the missing host dir: %v", err)
	}
	r = d.Docker(t, "run", "--name", n, "--mount", "type=bind,src="+filepath.Join(dir, "nope")+",dst=/x", img, "true")
	if r.Code == 0 || !strings.Contains(r.Stderr, "bind source path does not exist") {
		t.Errorf("--mount missing source: %d %q", r.Code, r.Stderr)
	}
	if r := d.Docker(t, "inspect", n); r.Code == 0 {
		d.Docker(t, "rm", "-f", n)
		t.Errorf("a refused --mount left a container")
	}
	out = d.Docker(t, "run", "--rm", "--tmpfs", "/scratch:size=1m", img, "sh", "-c", "grep ' /scratch ' /proc/mounts").Must(t).Stdout
	if !strings.Contains(out, "tmpfs") || !strings.Contains(out, "size=1024k") {
		t.Errorf("--tmpfs: %q", out)
	}
	if r := d.Docker(t, "run", "--rm", "-v", dir+":/a", "-v", missing+":/a", img, "true"); r.Code == 0 || !strings.Contains(r.Stderr, "Duplicate mount point") {
		t.Errorf("duplicate mount point: %d %q", r.Code, r.Stderr)
	}
}
