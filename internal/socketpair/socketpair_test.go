package socketpair

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sotype int
	}{{"stream", unix.SOCK_STREAM}, {"datagram", unix.SOCK_DGRAM}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, err := New(tc.sotype, "a", "b")
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			defer b.Close()
			for _, f := range []int{int(a.Fd()), int(b.Fd())} {
				flags, err := unix.FcntlInt(uintptr(f), unix.F_GETFD, 0)
				if err != nil || flags&unix.FD_CLOEXEC == 0 {
					t.Fatalf("fd %d: flags %#x, %v: want close-on-exec", f, flags, err)
				}
				typ, err := unix.GetsockoptInt(f, unix.SOL_SOCKET, unix.SO_TYPE)
				if err != nil || typ != tc.sotype {
					t.Fatalf("fd %d: type %d, %v, want %d", f, typ, err, tc.sotype)
				}
			}
			if _, err := a.Write([]byte("frame")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			n, err := b.Read(buf)
			if err != nil || string(buf[:n]) != "frame" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
		})
	}
}
