package httpfront

import (
	"io"
	"net"
	"testing"
)

func TestEmptyHostMended(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty host", "POST /grpc HTTP/1.1\r\nHost: \r\nUpgrade: h2c\r\n\r\nPRI", "POST /grpc HTTP/1.1\r\nHost: docker\r\nUpgrade: h2c\r\n\r\nPRI"},
		{"no space", "GET /_ping HTTP/1.1\r\nhost:\r\n\r\n", "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"},
		{"host kept", "GET /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\n\r\n", "GET /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\n\r\n"},
		// The body is never looked at, nor a second request.
		{"body untouched", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n\r\nHost: \r\n\r\n", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n\r\nHost: \r\n\r\n"},
		{"no header end", "GET / HTTP/1.1\r\nHost: \r\n", "GET / HTTP/1.1\r\nHost: \r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			go func() {
				// Small writes: the header may arrive in pieces.
				for i := 0; i < len(tc.in); i += 5 {
					b.Write([]byte(tc.in[i:min(i+5, len(tc.in))]))
				}
				b.Close()
			}()
			got, err := io.ReadAll(&emptyHostConn{Conn: a})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
