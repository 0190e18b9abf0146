// Package treecheck describes directory trees, for tests that prove an
// operation changed nothing outside where it may write (the fuzz targets
// of docker cp extraction and docker load).
package treecheck

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// HostStandIn stands for the host outside a container or store: a fixed
// path, so that seeds can name it, holding one secret file.
const HostStandIn = "/tmp/arca-fuzz-host"

// EnsureHostStandIn makes the host stand-in once, whole, by rename, so a
// worker never sees it half made.
func EnsureHostStandIn() error {
	if _, err := os.Stat(HostStandIn + "/secret"); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(HostStandIn), ".arca-fuzz-host")
	if err != nil {
		return err
	}
	if err := os.WriteFile(tmp+"/secret", []byte("host secret"), 0o600); err != nil {
		return err
	}
	os.Chmod(tmp, 0o755)
	if err := os.Rename(tmp, HostStandIn); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(HostStandIn + "/secret"); serr != nil {
			return err
		}
	}
	return nil
}

// Snapshot describes every entry under dir, except the subtree skip:
// type, mode, owner, link count, size and content or link target.
func Snapshot(dir, skip string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip != "" && p == skip {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode %o uid %d gid %d nlink %d size %d", st.Mode, st.Uid, st.Gid, st.Nlink, st.Size)
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256 %x", sha256.Sum256(b))
		case syscall.S_IFLNK:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		out[p] = desc
		return nil
	})
	return out, err
}

// Diff lists what differs between two snapshots.
func Diff(a, b map[string]string) string {
	var d []string
	for p, v := range a {
		if w, ok := b[p]; !ok {
			d = append(d, "- "+p+": "+v)
		} else if v != w {
			d = append(d, "~ "+p+": "+v+" => "+w)
		}
	}
	for p, w := range b {
		if _, ok := a[p]; !ok {
			d = append(d, "+ "+p+": "+w)
		}
	}
	return strings.Join(d, "\n")
}

// Baseline makes the host stand-in and returns its snapshot, for a test
// to compare the stand-in against after each input.
func Baseline(tb testing.TB) map[string]string {
	tb.Helper()
	if err := EnsureHostStandIn(); err != nil {
		tb.Fatal(err)
	}
	snap, err := Snapshot(HostStandIn, "")
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}
