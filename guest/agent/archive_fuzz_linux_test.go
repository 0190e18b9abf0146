package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/internal/treecheck"
)

// fuzzHostDir stands for the host outside a container: a fixed path, so
// seeds (and what the fuzzer makes of them) can name it by absolute path
// and by ../ climbs. It is only ever read here; the workers share it.
const fuzzHostDir = treecheck.HostStandIn

type fuzzEntry struct {
	name, link, body string
	typ              byte
	mode             int64
}

func fuzzTar(entries ...fuzzEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0), Uid: 1000, Gid: 1000}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(err)
		}
		if hdr.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzArchivePut extracts any tar (docker cp into a container, PUT
// /containers/{id}/archive) the way the agent does, into a container root
// that has a sibling directory and symlinks out of it, as a hostile image
// would. Whatever the archive, extraction succeeds or fails with an error,
// and nothing outside the root changes: not the sibling, not the shared
// host stand-in, not even a link count (a hard link to a host file would
// change it).
func FuzzArchivePut(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("extraction chowns and makes device nodes: needs root")
	}
	const climb = "../../../../../../../../../../../.."
	for _, s := range []struct {
		dir     string
		flags   uint8
		entries []fuzzEntry
	}{
		{"/tmp", 0, []fuzzEntry{{name: "d/", typ: tar.TypeDir, mode: 0o755}, {name: "d/f", typ: tar.TypeReg, body: "hello"}, {name: "d/l", typ: tar.TypeSymlink, link: "f"}, {name: "d/h", typ: tar.TypeLink, link: "d/f"}}},
		{"/", 2, []fuzzEntry{{name: "./", typ: tar.TypeDir, mode: 0o755}, {name: "./etc/motd", typ: tar.TypeReg, body: "hi", mode: 0o4755}, {name: "fifo", typ: tar.TypeFifo}}},
		{"/tmp", 0, []fuzzEntry{{name: climb + fuzzHostDir + "/dotdot", typ: tar.TypeReg, body: "x"}}},
		{"/tmp", 0, []fuzzEntry{{name: "evil", typ: tar.TypeSymlink, link: fuzzHostDir}, {name: "evil/pwned", typ: tar.TypeReg, body: "x"}}},
		{"/tmp", 0, []fuzzEntry{{name: "up", typ: tar.TypeSymlink, link: climb + fuzzHostDir}, {name: "up/pwned", typ: tar.TypeReg, body: "x"}}},
		{"/tmp", 0, []fuzzEntry{{name: "sib", typ: tar.TypeSymlink, link: "../../outside"}, {name: "sib/pwned", typ: tar.TypeReg, body: "x"}}},
		{"/hostlink", 0, []fuzzEntry{{name: "pwned", typ: tar.TypeReg, body: "x"}}},
		{"/uplink", 0, []fuzzEntry{{name: "pwned", typ: tar.TypeReg, body: "x"}}},
		{"/tmp", 0, []fuzzEntry{{name: "hl", typ: tar.TypeLink, link: climb + fuzzHostDir + "/secret"}}},
		{"/tmp", 0, []fuzzEntry{{name: "evil2", typ: tar.TypeSymlink, link: fuzzHostDir}, {name: "hl2", typ: tar.TypeLink, link: "evil2/secret"}}},
		{"/tmp", 0, []fuzzEntry{{name: "pl", typ: tar.TypeSymlink, link: fuzzHostDir + "/secret"}, {name: "pl", typ: tar.TypeReg, body: "overwritten"}}},
		{"/tmp", 1, []fuzzEntry{{name: "x", typ: tar.TypeDir}, {name: "x", typ: tar.TypeReg, body: "file over dir"}}},
		{"/tmp", 0, []fuzzEntry{{name: "hostlink", typ: tar.TypeDir}, {name: "hostlink/x", typ: tar.TypeReg, body: "x"}}},
		{"/", 0, []fuzzEntry{{name: "tmp", typ: tar.TypeSymlink, link: "/"}, {name: "tmp/../outside/x", typ: tar.TypeReg, body: "x"}}},
		{"/tmp", 0, []fuzzEntry{{name: "dev", typ: tar.TypeChar, mode: 0o666}}},
	} {
		f.Add(fuzzTar(s.entries...), s.dir, s.flags)
	}
	f.Add([]byte{}, "/tmp", uint8(0))
	f.Add([]byte("not a tar"), "/", uint8(0))

	hostBefore := treecheck.Baseline(f)
	mnt := treecheck.SmallTmpfs(f, "32m")

	f.Fuzz(func(t *testing.T, data []byte, dir string, flags uint8) {
		base, err := os.MkdirTemp(mnt, "case")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(base)
		root := filepath.Join(base, "root")
		// The host stand-in's path exists inside the root too, where links
		// to it must lead.
		for _, d := range []string{root + "/tmp", root + "/etc", root + fuzzHostDir, base + "/outside"} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(root+"/etc/passwd", []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
		os.WriteFile(base+"/outside/secret", []byte("sibling secret"), 0o600)
		// As an image might have them: links out, absolute and relative.
		os.Symlink(fuzzHostDir, root+"/hostlink")
		os.Symlink("../outside", root+"/uplink")
		before, err := treecheck.Snapshot(base, root)
		if err != nil {
			t.Fatal(err)
		}

		rd, err := openRootDir(root, "/proc")
		if err != nil {
			t.Fatal(err)
		}
		defer rd.close()
		a := &Agent{root: rd, rootPath: root, procs: map[string]*process{}}
		opts := wire.ArchivePutOptions{NoOverwriteDirNonDir: flags&1 != 0}
		if flags&2 != 0 {
			opts.CopyUIDGID, opts.User = true, "app"
		}
		if extract, err := a.ArchivePut(context.Background(), dir, opts); err == nil {
			_ = extract(bytes.NewReader(data))
		}

		after, err := treecheck.Snapshot(base, root)
		if err != nil {
			t.Fatal(err)
		}
		if d := treecheck.Diff(before, after); d != "" {
			t.Fatalf("extraction changed the root's sibling:\n%s", d)
		}
		host, err := treecheck.Snapshot(fuzzHostDir, "")
		if err != nil {
			t.Fatal(err)
		}
		if d := treecheck.Diff(hostBefore, host); d != "" {
			t.Fatalf("extraction changed %s:\n%s", fuzzHostDir, d)
		}
	})
}
