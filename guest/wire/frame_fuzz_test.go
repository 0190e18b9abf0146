package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// frameBytes is one frame as writeFrame sends it, for seeds.
func frameBytes(v any) []byte {
	var buf bytes.Buffer
	if err := writeFrame(&buf, v); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// FuzzReadFrame reads whatever a peer may send as the first frame of a
// stream, as the agent reads a request and the host a response. A frame
// never reads past its own length (the raw bytes behind it belong to the
// stream), and what decodes encodes to a frame that decodes to the same
// thing: nothing the peer sends turns into a value the other side cannot
// send back.
func FuzzReadFrame(f *testing.F) {
	for _, v := range []any{
		request{Op: opPing, Version: ProtocolVersion},
		request{Op: opStart, Process: &ProcessSpec{ID: "main", Args: []string{"sh", "-c", "echo hi"}, Env: []string{"A=b"}, Cwd: "/", User: "0:0", Tty: true, Main: true, ConsoleSize: WindowSize{Height: 24, Width: 80}}},
		request{Op: opArchivePut, Path: "/tmp", Put: &ArchivePutOptions{CopyUIDGID: true, User: "app", NoOverwriteDirNonDir: true}},
		request{Op: opDial, Proto: "tcp", Port: 80},
		request{Op: opResize, ID: "e1", Size: &WindowSize{Height: 50, Width: 200}},
		response{Pid: 42},
		response{Error: "no such file or directory: /x", Kind: KindNotFound},
		response{Exit: &ExitStatus{Code: 137}},
		response{Stat: &PathStat{Name: "etc", Size: 4096, Mode: 0o20000000755, LinkTarget: ""}},
	} {
		f.Add(append(frameBytes(v), "raw stdio bytes"...))
	}
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, '{'})
	f.Add([]byte{0, 0, 0, 9, '{', '"', 'o', 'p', '"'})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFrame[request](t, data)
		checkFrame[response](t, data)
	})
}

func checkFrame[T any](t *testing.T, data []byte) {
	r := bytes.NewReader(data)
	var v T
	if err := readFrame(r, &v); err != nil {
		return
	}
	n := int(binary.BigEndian.Uint32(data))
	if r.Len() != len(data)-4-n {
		t.Fatalf("%T: frame of %d bytes left %d of %d", v, n, r.Len(), len(data))
	}
	var once bytes.Buffer
	if err := writeFrame(&once, v); err != nil {
		t.Fatalf("%T decoded but does not encode: %v", v, err)
	}
	var w T
	if err := readFrame(bytes.NewReader(once.Bytes()), &w); err != nil {
		t.Fatalf("%T: own frame does not decode: %v\n%q", v, err, once.Bytes())
	}
	var twice bytes.Buffer
	if err := writeFrame(&twice, w); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(once.Bytes(), twice.Bytes()) {
		t.Fatalf("%T changes through the wire:\n%q\n%q", v, once.Bytes(), twice.Bytes())
	}
}

// FuzzChunkReader reads an archive stream as the host does (docker cp from
// a container, changes): it ends in the tar's bytes, a clean EOF, or an
// error, and the bytes are exactly the chunks' payloads, which chunkWriter
// turns back into a stream that reads the same.
func FuzzChunkReader(f *testing.F) {
	seed := func(parts [][]byte, end any) []byte {
		var buf bytes.Buffer
		cw := &chunkWriter{w: &buf}
		for _, p := range parts {
			cw.Write(p)
		}
		buf.Write([]byte{0, 0, 0, 0})
		buf.Write(frameBytes(end))
		return buf.Bytes()
	}
	f.Add(seed([][]byte{[]byte("ustar header and file bytes")}, response{}))
	f.Add(seed([][]byte{bytes.Repeat([]byte{0}, 64), []byte("x")}, response{}))
	f.Add(seed([][]byte{[]byte("partial")}, response{Error: "read /x: permission denied", Kind: KindPermission}))
	f.Add(seed(nil, response{}))
	f.Add([]byte{0, 0, 0, 5, 'a', 'b'})
	f.Add([]byte{0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &chunkReader{r: bytes.NewReader(data)}
		out, err := io.ReadAll(cr)
		if len(out) > len(data) {
			t.Fatalf("%d bytes out of a %d byte stream", len(out), len(data))
		}
		// Once ended, always ended the same way.
		if n, again := cr.Read(make([]byte, 8)); n != 0 || (err == nil) != (again == io.EOF) {
			t.Fatalf("read after the end: %d %v (first end %v)", n, again, err)
		}
		if err != nil {
			return
		}
		// Clean end: the same payload, chunked again, reads back whole.
		var buf bytes.Buffer
		if _, err := (&chunkWriter{w: &buf}).Write(out); err != nil {
			t.Fatal(err)
		}
		buf.Write([]byte{0, 0, 0, 0})
		buf.Write(frameBytes(response{}))
		back, err := io.ReadAll(&chunkReader{r: &buf})
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("rechunked payload reads %d bytes, %v; want %d", len(back), err, len(out))
		}
	})
}
