package httpfront

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence/containerlog"
)

// frameWriter writes container output as Docker frames it: without a TTY,
// each chunk behind an 8-byte header (stream, 3 zero bytes, big-endian
// length); with one, raw.
type frameWriter struct {
	w          io.Writer
	raw        bool
	timestamps bool
	hdr        [8]byte
}

func (f *frameWriter) write(stream int, data []byte, t time.Time) error {
	if f.timestamps {
		data = append([]byte(t.UTC().Format(time.RFC3339Nano)+" "), data...)
	}
	if f.raw {
		_, err := f.w.Write(data)
		return err
	}
	for len(data) > 0 {
		chunk := data
		if len(chunk) > 1<<20 {
			chunk = chunk[:1<<20]
		}
		f.hdr = [8]byte{byte(stream)}
		binary.BigEndian.PutUint32(f.hdr[4:], uint32(len(chunk)))
		if _, err := f.w.Write(f.hdr[:]); err != nil {
			return err
		}
		if _, err := f.w.Write(chunk); err != nil {
			return err
		}
		data = data[len(chunk):]
	}
	return nil
}

// streamNow makes a streamed response send its headers at once: clients
// block on them (docker run waits for the wait response's headers before it
// starts the container), and fasthttp would otherwise hold them until the
// first body byte.
func streamNow(ctx *fasthttp.RequestCtx) {
	ctx.Response.ImmediateHeaderFlush = true
}

// streamMediaType: from API 1.42 the multiplexed stream says so.
func streamMediaType(ctx *fasthttp.RequestCtx, tty bool) string {
	if !tty && compareVersions(apiVersion(ctx), multiplexedFrom) >= 0 {
		return "application/vnd.docker.multiplexed-stream"
	}
	return "application/vnd.docker.raw-stream"
}

// hijack upgrades the connection (101 when the client asked for it, as
// the docker CLI does) and runs serve on it. serve must not use the
// connection after it returns; closing raw unblocks its readers.
func (s *Server) hijack(ctx *fasthttp.RequestCtx, mediaType string, serve func(c net.Conn, raw net.Conn, bw *bufio.Writer)) {
	upgrade := len(ctx.Request.Header.Peek("Upgrade")) > 0
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		raw := c
		if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
			raw = u.UnsafeConn()
		}
		bw := bufio.NewWriterSize(c, 32<<10)
		if upgrade {
			bw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: " + mediaType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		} else {
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: " + mediaType + "\r\n\r\n")
		}
		if err := bw.Flush(); err != nil {
			raw.Close()
		}
		serve(c, raw, bw)
	})
}

// copyStdin feeds the client's input to w; with closeOnEOF the client's
// EOF closes w (the process's stdin). With detach keys, typing them ends
// the attach: onDetach runs and the process keeps its stdin.
func copyStdin(wg *sync.WaitGroup, w io.WriteCloser, c io.Reader, closeOnEOF bool, keys []byte, onDetach func()) {
	if keys != nil {
		c = &detachReader{r: c, keys: keys}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := io.Copy(w, c)
		switch {
		case errors.Is(err, errDetached):
			onDetach()
		case err == nil && closeOnEOF:
			w.Close()
		}
	}()
}

// hijackAttach carries the container's output out and the client's input
// in until the run ends or the client leaves.
func (s *Server) hijackAttach(ctx *fasthttp.RequestCtx, reply *messages.AttachReply) {
	keys, err := parseDetachKeys(reply.DetachKeys)
	if err != nil {
		if reply.Output != nil {
			reply.Output.Close()
		}
		if reply.Log != nil {
			reply.Log.Close()
		}
		writeError(ctx, err)
		return
	}
	s.hijack(ctx, streamMediaType(ctx, reply.Tty), func(c, raw net.Conn, bw *bufio.Writer) {
		var wg sync.WaitGroup
		if reply.Stdin != nil {
			// Detaching ends the output side too: the client is gone.
			copyStdin(&wg, reply.Stdin, c, reply.StdinOnce, keys, func() {
				if reply.Output != nil {
					reply.Output.Close()
				}
			})
		}
		if reply.Log != nil {
			fw := &frameWriter{w: bw, raw: reply.Tty}
			filter := containerlog.Filter{Stdout: reply.Stdout, Stderr: reply.Stderr, Tail: -1}
			reply.Log.Read(filter, func(e containerlog.Entry) error {
				return fw.write(containerlog.StreamNumber(e.Stream), []byte(e.Log), e.Time)
			})
			reply.Log.Close()
			bw.Flush()
		}
		if reply.Output != nil {
			fw := &frameWriter{w: bw, raw: reply.Tty}
			for {
				f, ok := reply.Output.Next()
				if !ok {
					break
				}
				if fw.write(f.Stream, f.Data, f.Time) != nil || bw.Flush() != nil {
					break
				}
			}
			reply.Output.Close()
		} else if reply.Stdin != nil {
			wg.Wait()
		}
		bw.Flush()
		raw.Close()
		wg.Wait()
	})
}
