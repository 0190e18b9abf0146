// Command fsprobe does to a file what busybox cannot, for a test to run
// in a guest (static, so any root runs it):
//
//	fsprobe mmap PATH TEXT     writes TEXT to a new file through a shared,
//	                           writable mapping, as apt writes its cache
//	fsprobe xattr PATH NAME HEX  sets an extended attribute, reads it back
//	fsprobe socket PATH        binds a unix socket there, as gpg-agent does
package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	var err error
	switch os.Args[1] {
	case "mmap":
		err = mmapWrite(os.Args[2], os.Args[3])
	case "xattr":
		err = xattr(os.Args[2], os.Args[3], os.Args[4])
	case "socket":
		err = bindSocket(os.Args[2])
	default:
		err = fmt.Errorf("unknown probe %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsprobe:", err)
		os.Exit(1)
	}
}

func mmapWrite(path, text string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(int64(len(text))); err != nil {
		return err
	}
	b, err := unix.Mmap(int(f.Fd()), 0, len(text), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	copy(b, text)
	if err := unix.Msync(b, unix.MS_SYNC); err != nil {
		return fmt.Errorf("msync: %w", err)
	}
	return unix.Munmap(b)
}

func xattr(path, name, value string) error {
	v, err := hex.DecodeString(value)
	if err != nil {
		return err
	}
	if err := unix.Setxattr(path, name, v, 0); err != nil {
		return fmt.Errorf("setxattr %s: %w", name, err)
	}
	got := make([]byte, 256)
	n, err := unix.Getxattr(path, name, got)
	if err != nil {
		return fmt.Errorf("getxattr %s: %w", name, err)
	}
	if !bytes.Equal(got[:n], v) {
		return fmt.Errorf("xattr %s reads back %x", name, got[:n])
	}
	return nil
}

func bindSocket(path string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return fmt.Errorf("bind %s: %w", path, err)
	}
	return nil
}
