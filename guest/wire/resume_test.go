package wire

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

// The template handshake: ready from the agent, Resume from the host, and
// the session's bytes after it left for the session.
func TestResumeHandshake(t *testing.T) {
	agentEnd, hostEnd := net.Pipe()
	defer agentEnd.Close()
	defer hostEnd.Close()
	want := Resume{UnixNano: 1_800_000_000_123456789, Seed: bytes.Repeat([]byte{7}, 32), TemplateMAC: "02:00:00:00:00:01"}
	got := make(chan Resume, 1)
	rest := make(chan string, 1)
	go func() {
		r, err := AwaitResume(agentEnd)
		if err != nil {
			t.Error(err)
		}
		got <- r
		b := make([]byte, 7)
		io.ReadFull(agentEnd, b)
		rest <- string(b)
	}()
	if err := ReadReady(hostEnd); err != nil {
		t.Fatal(err)
	}
	if err := WriteResume(hostEnd, want); err != nil {
		t.Fatal(err)
	}
	hostEnd.Write([]byte("session"))
	r := <-got
	if r.UnixNano != want.UnixNano || !bytes.Equal(r.Seed, want.Seed) || r.TemplateMAC != want.TemplateMAC {
		t.Errorf("agent got %+v, want %+v", r, want)
	}
	if s := <-rest; s != "session" {
		t.Errorf("after the Resume the agent reads %q", s)
	}
}

func TestResumeRefusesShortSeed(t *testing.T) {
	if err := WriteResume(io.Discard, Resume{Seed: make([]byte, 16)}); err == nil || !strings.Contains(err.Error(), "seed") {
		t.Errorf("host sending 16 bytes of seed: %v", err)
	}
	// An agent given too little (a host of another version) refuses too.
	var in bytes.Buffer
	writeFrame(&in, Resume{Seed: make([]byte, 8)})
	rw := struct {
		io.Reader
		io.Writer
	}{&in, io.Discard}
	if _, err := AwaitResume(rw); err == nil || !strings.Contains(err.Error(), "seed") {
		t.Errorf("agent given 8 bytes of seed: %v", err)
	}
	// A session's first frame is no ready frame.
	var session bytes.Buffer
	writeFrame(&session, request{Op: opPing})
	if err := ReadReady(&session); err == nil {
		t.Error("a ping read as ready")
	}
}
