package main

// End-to-end tests: the real daemon (built with -race) on a temp socket, a
// real registry, and the real docker CLI and moby Go client. They share one
// daemon and one registry (testenv.Main stops them and checks the daemon's
// log for races and panics); tests that kill the daemon start their own.

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// rawAPI is a plain HTTP client on the daemon's socket, for what the CLI
// hides: headers, status codes, bodies.
func rawAPI(d *testenv.Daemon) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.Socket())
		}},
	}
}

// call does one request and returns status and body.
func call(t *testing.T, d *testenv.Daemon, method, path, body string) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://arca"+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := rawAPI(d).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// pulled makes sure the shared busybox image is in the shared daemon and
// returns its reference.
func pulled(t *testing.T, d *testenv.Daemon) string {
	t.Helper()
	ref := testenv.SharedBusybox(t).Ref
	d.Docker(t, "pull", "-q", ref).Must(t)
	return ref
}

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
