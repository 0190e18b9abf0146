package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/arcavm/arca/guest/vm"
)

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   request
	}{
		{"ping", request{Op: opPing, Version: ProtocolVersion}},
		{"stdio", request{Op: opStdio, ID: "exec1", Stream: streamStderr}},
		{"signal", request{Op: opSignal, ID: "main", Signal: 15}},
		{"resize", request{Op: opResize, ID: "main", Size: &WindowSize{Height: 24, Width: 80}}},
		{"start", request{Op: opStart, Process: &ProcessSpec{
			ID: "main", Args: []string{"sh", "-c", "echo \"hi\"\n"}, Env: []string{"A=b=c"},
			Cwd: "/w", User: "1:2", Tty: true, Stdin: true, Main: true,
			ConsoleSize: WindowSize{Height: 30, Width: 100},
		}}},
		{"setup", request{Op: opSetup, Setup: &SetupRequest{
			Rootfs:   vm.RootfsSpec{Lower: []string{"/l2", "/l1"}, Upper: "/u", Work: "/w"},
			Hostname: "h", Hosts: []byte("127.0.0.1\tlocalhost\n\x00\xff"), ResolvConf: []byte{},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeFrame(&buf, tt.in); err != nil {
				t.Fatal(err)
			}
			var out request
			if err := readFrame(&buf, &out); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out, tt.in) {
				t.Fatalf("got %+v, want %+v", out, tt.in)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes left over", buf.Len())
			}
		})
	}
}

// A frame must not consume the raw bytes behind it on the same stream.
func TestFrameLeavesTrailingBytes(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, response{Pid: 7}); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("raw output")
	var resp response
	if err := readFrame(&buf, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Pid != 7 {
		t.Fatalf("pid %d", resp.Pid)
	}
	if rest, _ := io.ReadAll(&buf); string(rest) != "raw output" {
		t.Fatalf("trailing bytes %q", rest)
	}
}

func TestReadFrameErrors(t *testing.T) {
	frame := func(n uint32, body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, n)
		return append(b, body...)
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"empty", nil, "EOF"},
		{"short header", []byte{0, 0}, "unexpected EOF"},
		{"too large", frame(maxFrame+1, ""), "exceeds"},
		{"truncated body", frame(10, `{"op"`), "unexpected EOF"},
		{"not json", frame(3, "abc"), "decode frame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req request
			err := readFrame(bytes.NewReader(tt.in), &req)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestWriteFrameTooLarge(t *testing.T) {
	big := SetupRequest{Hosts: bytes.Repeat([]byte("x"), maxFrame)}
	var buf bytes.Buffer
	err := writeFrame(&buf, request{Op: opSetup, Setup: &big})
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("got %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %d bytes of an oversized frame", buf.Len())
	}
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		kind Kind
		is   error
	}{
		{KindNotFound, ErrNotFound},
		{KindPermission, ErrPermission},
		{KindInvalid, ErrInvalid},
		{KindConflict, ErrConflict},
	}
	all := []error{ErrNotFound, ErrPermission, ErrInvalid, ErrConflict}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			// Through the wire: the kind survives, the message is verbatim.
			resp := errorResponse(Errorf(tt.kind, "exec: %q: boom", "x"))
			var buf bytes.Buffer
			if err := writeFrame(&buf, resp); err != nil {
				t.Fatal(err)
			}
			var got response
			if err := readFrame(&buf, &got); err != nil {
				t.Fatal(err)
			}
			err := got.err()
			if err.Error() != `exec: "x": boom` {
				t.Fatalf("message %q", err)
			}
			for _, s := range all {
				if errors.Is(err, s) != (s == tt.is) {
					t.Errorf("errors.Is(%v) = %v", s, !(s == tt.is))
				}
			}
			if KindOf(err) != tt.kind {
				t.Errorf("KindOf = %q", KindOf(err))
			}
		})
	}
	if k := KindOf(errors.New("plain")); k != KindInternal {
		t.Errorf("plain error kind %q", k)
	}
}
