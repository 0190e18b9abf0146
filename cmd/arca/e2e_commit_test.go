package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// TestCommit: docker commit makes an image of the container's image and
// its writable layer (files added and deleted), with -c changes, of a
// running container (paused meanwhile) and of a stopped one; the image
// runs, and history and inspect show it.
func TestCommit(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, img, "sh", "-c",
		"echo hello > /x; rm /etc/group; mkdir -p /d/e; echo f > /d/e/f; touch /ready; exec sleep 300").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	waitFile(t, d, name, "/ready")

	tag := strings.ToLower(testenv.Name(t, "img")) + ":1"
	defer d.Docker(t, "rmi", "-f", tag)
	since := itoa(int(time.Now().Add(-time.Second).Unix()))
	id := strings.TrimSpace(d.Docker(t, "commit", "-c", `CMD ["cat","/x"]`, "-c", "ENV COMMITTED=yes", "-m", "the message", "-a", "me", name, tag).Must(t).Stdout)
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q, want an image ID", id)
	}
	if st := d.Docker(t, "inspect", "-f", "{{.State.Status}}", name).Must(t).Stdout; strings.TrimSpace(st) != "running" {
		t.Errorf("after a pausing commit the container is %q, want running", st)
	}
	// The container was paused for the snapshot, and the commit is its
	// event, before the unpause, as in dockerd.
	evs := d.Docker(t, "events", "--since", since, "--until", itoa(int(time.Now().Add(time.Second).Unix())),
		"--filter", "container="+name, "--filter", "event=pause", "--filter", "event=unpause", "--filter", "event=commit",
		"--format", "{{.Action}} {{.Actor.Attributes.imageID}}|{{.Actor.Attributes.comment}}").Must(t).Stdout
	if want := "pause <no value>|<no value>\ncommit " + id + "|the message\nunpause <no value>|<no value>\n"; evs != want {
		t.Errorf("events of the commit:\n%s\nwant\n%s", evs, want)
	}
	if got := d.Docker(t, "run", "--rm", tag).Must(t).Stdout; got != "hello\n" {
		t.Errorf("run of the committed image (its CMD): %q, want hello", got)
	}
	r := d.Docker(t, "run", "--rm", tag, "sh", "-c", "cat /d/e/f; test -e /etc/group && echo group-still-there; echo $COMMITTED; test -e /ready && echo ready").Must(t)
	if r.Stdout != "f\nyes\nready\n" {
		t.Errorf("the committed image's files and env: %q", r.Stdout)
	}
	hist := d.Docker(t, "history", "--no-trunc", "--format", "{{.Comment}}|{{.CreatedBy}}", tag).Must(t).Stdout
	if first, _, _ := strings.Cut(hist, "\n"); !strings.HasPrefix(first, "the message|sh -c") {
		t.Errorf("history's newest entry %q, want the message and the container's command", first)
	}
	// The image it was made from is its parent, named in history too.
	hist = d.Docker(t, "history", "--no-trunc", "--format", "{{.ID}}", tag).Must(t).Stdout
	if ids := strings.Fields(hist); len(ids) < 2 || ids[0] != id || ids[1] != imageID(t, d, img) {
		t.Errorf("history IDs %q, want the commit's then its image's", ids)
	}
	var insp []struct {
		ID, Author, Comment, Parent string
		Config                      struct{ Cmd, Env []string }
		RootFS                      struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(d.Docker(t, "image", "inspect", tag).Must(t).Stdout), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	base := d.Docker(t, "image", "inspect", "-f", "{{len .RootFS.Layers}}", img).Must(t).Stdout
	if insp[0].ID != id || insp[0].Parent != imageID(t, d, img) || insp[0].Author != "me" || insp[0].Comment != "the message" || !slices.Equal(insp[0].Config.Cmd, []string{"cat", "/x"}) ||
		!slices.Contains(insp[0].Config.Env, "COMMITTED=yes") || strings.TrimSpace(base) == "" ||
		len(insp[0].RootFS.Layers) != atoi(t, strings.TrimSpace(base))+1 {
		t.Errorf("inspect of the committed image: %+v (base has %s layers)", insp[0], base)
	}

	// Without --pause the container is not frozen. (Events' --since has
	// whole seconds: start on a fresh one.)
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	since = itoa(int(time.Now().Unix()))
	nopause := strings.TrimSpace(d.Docker(t, "commit", "--pause=false", name).Must(t).Stdout)
	defer d.Docker(t, "rmi", "-f", nopause)
	evs = d.Docker(t, "events", "--since", since, "--until", itoa(int(time.Now().Add(time.Second).Unix())),
		"--filter", "container="+name, "--filter", "event=pause", "--filter", "event=commit", "--format", "{{.Action}}").Must(t).Stdout
	if evs != "commit\n" {
		t.Errorf("events of a commit with --pause=false: %q", evs)
	}

	// A stopped container, without a tag, and its image saved and listed.
	d.Docker(t, "stop", "-t", "1", name).Must(t)
	id2 := strings.TrimSpace(d.Docker(t, "commit", name).Must(t).Stdout)
	defer d.Docker(t, "rmi", "-f", id2)
	if got := d.Docker(t, "run", "--rm", id2, "cat", "/x").Must(t).Stdout; got != "hello\n" {
		t.Errorf("run of the stopped container's commit: %q", got)
	}
	if got := d.Docker(t, "image", "inspect", "-f", "{{json .Config.Cmd}}", id2).Must(t).Stdout; !strings.Contains(got, "sleep 300") {
		t.Errorf("commit without changes keeps the container's command, got %s", got)
	}
	d.Docker(t, "save", "-o", t.TempDir()+"/img.tar", tag).Must(t)

	if r := d.Docker(t, "commit", "-c", "RUN true", name).MustFail(t); !strings.Contains(r.Stderr, "RUN is not a valid change command") {
		t.Errorf("commit with RUN: %q", r.Stderr)
	}
	if r := d.Docker(t, "commit", "no-such-container").MustFail(t); !strings.Contains(r.Stderr, "No such container: no-such-container") {
		t.Errorf("commit of a missing container: %q", r.Stderr)
	}
}

// TestExportImport: docker export gives the container's whole filesystem,
// without what is mounted over it, and docker import makes a one-layer
// image of such a tar, with -c changes.
func TestExportImport(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	vol := testenv.Name(t, "vol")
	d.Docker(t, "run", "-d", "--name", name, "-v", vol+":/vol", img, "sh", "-c",
		"echo hello > /x; echo secret > /vol/in-volume; rm /etc/group; touch /ready; exec sleep 300").Must(t)
	defer d.Docker(t, "volume", "rm", "-f", vol)
	defer d.Docker(t, "rm", "-f", name)
	waitFile(t, d, name, "/ready")

	check := func(what, archive string) {
		t.Helper()
		names := tarNames(t, archive)
		for _, want := range []string{"x", "bin/busybox", "etc/passwd", "proc/", "vol/"} {
			if !names[want] {
				t.Errorf("%s: no %s in %d entries", what, want, len(names))
			}
		}
		for _, never := range []string{"etc/group", "vol/in-volume", "proc/self", "proc/1/", "sys/kernel/"} {
			if names[never] {
				t.Errorf("%s: has %s", what, never)
			}
		}
	}
	running := d.Docker(t, "export", name).Must(t).Stdout
	check("export of a running container", running)
	d.Docker(t, "stop", "-t", "1", name).Must(t)
	check("export of a stopped container", d.Docker(t, "export", name).Must(t).Stdout)

	tag := strings.ToLower(testenv.Name(t, "imp")) + ":1"
	defer d.Docker(t, "rmi", "-f", tag)
	out := d.DockerStdin(t, strings.NewReader(running), "import", "-m", "imported", "-c", `CMD ["cat","/x"]`, "-", tag).Must(t).Stdout
	if !strings.HasPrefix(strings.TrimSpace(out), "sha256:") {
		t.Errorf("import printed %q, want the image ID", out)
	}
	if got := d.Docker(t, "run", "--rm", tag).Must(t).Stdout; got != "hello\n" {
		t.Errorf("run of the imported image (its CMD): %q", got)
	}
	if got := d.Docker(t, "run", "--rm", tag, "cat", "/x").Must(t).Stdout; got != "hello\n" {
		t.Errorf("cat /x in the imported image: %q", got)
	}
	if got := d.Docker(t, "image", "inspect", "-f", "{{len .RootFS.Layers}} {{.Os}} {{.Comment}}", tag).Must(t).Stdout; got != "1 linux imported\n" {
		t.Errorf("imported image: %q, want one linux layer and the message", got)
	}
	if got := d.Docker(t, "history", "--format", "{{.Comment}}", tag).Must(t).Stdout; got != "imported\n" {
		t.Errorf("imported image's history: %q", got)
	}
	// A compressed archive, from a file.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(running))
	zw.Close()
	file := t.TempDir() + "/rootfs.tar.gz"
	if err := os.WriteFile(file, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	gzTag := strings.ToLower(testenv.Name(t, "gz")) + ":1"
	defer d.Docker(t, "rmi", "-f", gzTag)
	d.Docker(t, "import", "-c", "ENV FROM_GZ=1", file, gzTag).Must(t)
	if got := d.Docker(t, "run", "--rm", gzTag, "sh", "-c", "cat /x; echo $FROM_GZ").Must(t).Stdout; got != "hello\n1\n" {
		t.Errorf("run of the image imported from a gzip file: %q", got)
	}
	if r := d.DockerStdin(t, strings.NewReader(""), "import", "http://example.com/x.tar").MustFail(t); !strings.Contains(r.Stderr, "not supported") {
		t.Errorf("import from a URL: %q", r.Stderr)
	}
}

func waitFile(t *testing.T, d *testenv.Daemon, name, path string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if d.Docker(t, "exec", name, "test", "-e", path).Code == 0 {
			return
		}
	}
	t.Fatalf("%s never appeared in %s", path, name)
}

func tarNames(t *testing.T, archive string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader([]byte(archive)))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("tar after %d entries: %v", len(names), err)
		}
		names[strings.TrimPrefix(hdr.Name, "./")] = true
	}
}

// TestQemuCommit: commit and export work through a VM's agent too, for a
// running container and for a stopped one (a machine booted for it).
func TestQemuCommit(t *testing.T) {
	kit := qemuKit(t)
	d := testenv.StartDaemon(t, testenv.Options{Driver: "qemu", Args: []string{"--kit", kit.Dir},
		StartTimeout: 60 * time.Second})
	ref := testenv.SharedBusybox(t).Ref
	d.Docker(t, "pull", "-q", ref).Must(t)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, ref, "sh", "-c", "echo vm > /x; rm /etc/group; touch /ready; exec sleep 300").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	waitFile(t, d, name, "/ready")
	d.Docker(t, "commit", "-c", `CMD ["cat","/x"]`, name, "qemu-commit:1").Must(t)
	if got := d.Docker(t, "run", "--rm", "qemu-commit:1").Must(t).Stdout; got != "vm\n" {
		t.Errorf("run of the image committed on qemu: %q", got)
	}
	if r := d.Docker(t, "run", "--rm", "qemu-commit:1", "test", "-e", "/etc/group"); r.Code == 0 {
		t.Errorf("/etc/group, deleted in the container, is in its image")
	}
	d.Docker(t, "stop", "-t", "1", name).Must(t)
	names := tarNames(t, d.Docker(t, "export", name).Must(t).Stdout)
	if !names["x"] || !names["bin/busybox"] || names["etc/group"] {
		t.Errorf("export of a stopped qemu container: x %v, bin/busybox %v, etc/group %v", names["x"], names["bin/busybox"], names["etc/group"])
	}
}
