package agent

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/vsock"
)

// TestVsockStream serves a "vsock:PORT" stream and dials it over the
// kernel's loopback transport (CID 1), as the vz host dials the guest.
func TestVsockStream(t *testing.T) {
	// Without the loopback transport a dial to CID 1 goes out to the
	// hypervisor (if any) and times out: nothing here could answer.
	if _, err := os.Stat("/sys/module/vsock_loopback"); err != nil {
		t.Skip("no vsock loopback transport in this kernel (CONFIG_VSOCKETS_LOOPBACK, module vsock_loopback)")
	}
	const port = 52011
	type opened struct {
		rw  io.ReadWriteCloser
		err error
	}
	got := make(chan opened, 1)
	go func() {
		rw, err := OpenStream("vsock:52011")
		got <- opened{rw, err}
	}()
	var conn *vsock.Conn
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := vsock.Dial(vsock.Local, port, nil)
		if err == nil {
			conn = c
			break
		}
		select {
		case o := <-got:
			t.Fatalf("the agent's vsock listener ended before the dial: %v", o.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial vsock port %d: %v", port, err)
		}
		time.Sleep(10 * time.Millisecond) // the listener is not up yet
	}
	defer conn.Close()
	o := <-got
	if o.err != nil {
		t.Fatal(o.err)
	}
	defer o.rw.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(o.rw, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("agent read %q, %v", buf, err)
	}
	if _, err := o.rw.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("host read %q, %v", buf, err)
	}
}
