package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet retries while the server in the container comes up.
func httpGet(t *testing.T, url string) (string, error) {
	t.Helper()
	var last error
	for i := 0; i < 50; i++ {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b), nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return "", last
}

const httpdCmd = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"

// TestPublishedPorts: -p with fixed and picked ports, docker port, ps,
// inspect, a taken port, and ports freed on stop and bound again on start.
func TestPublishedPorts(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	n := testenv.Name(t)
	fixed := freePort(t)
	d.Docker(t, "run", "-d", "--name", n, "-p", fmt.Sprintf("127.0.0.1:%d:80", fixed), "-p", "127.0.0.1::81",
		"--expose", "99", img, "sh", "-c", httpdCmd).Must(t)
	defer d.Docker(t, "rm", "-f", n)

	body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", fixed))
	if err != nil || body != "hello\n" {
		t.Fatalf("GET through the published port: %q %v", body, err)
	}
	port := d.Docker(t, "port", n).Must(t).Stdout
	if !strings.Contains(port, fmt.Sprintf("80/tcp -> 127.0.0.1:%d", fixed)) || !strings.Contains(port, "81/tcp -> 127.0.0.1:") {
		t.Errorf("docker port:\n%s", port)
	}
	ps := d.Docker(t, "ps", "--filter", "name="+n, "--format", "{{.Ports}}").Must(t).Stdout
	if !strings.Contains(ps, fmt.Sprintf("127.0.0.1:%d->80/tcp", fixed)) || !strings.Contains(ps, "99/tcp") {
		t.Errorf("ps PORTS: %q", ps)
	}
	bindings := d.Docker(t, "inspect", "-f", "{{json .HostConfig.PortBindings}}", n).Must(t).Stdout
	if !strings.Contains(bindings, fmt.Sprintf(`"HostPort":"%d"`, fixed)) {
		t.Errorf("HostConfig.PortBindings: %s", bindings)
	}

	// The same port for a second container: its start fails, nothing runs.
	r := d.Docker(t, "run", "-d", "--name", n+"-2", "-p", fmt.Sprintf("127.0.0.1:%d:80", fixed), img, "sleep", "100")
	defer d.Docker(t, "rm", "-f", n+"-2")
	if r.Code == 0 || !strings.Contains(r.Stderr, fmt.Sprintf("Bind for 127.0.0.1:%d failed: port is already allocated", fixed)) {
		t.Errorf("taken port: %d %q", r.Code, r.Stderr)
	}
	if st := d.Docker(t, "inspect", "-f", "{{.State.Status}}", n+"-2").Must(t).Stdout; strings.TrimSpace(st) != "created" {
		t.Errorf("container with a taken port is %q", st)
	}

	// stop frees the port (the test can bind it); start binds it again.
	d.Docker(t, "stop", "-t", "1", n).Must(t)
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", fixed))
	if err != nil {
		t.Fatalf("port still held after stop: %v", err)
	}
	l.Close()
	d.Docker(t, "start", n).Must(t)
	if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", fixed)); err != nil || body != "hello\n" {
		t.Errorf("after restart: %q %v", body, err)
	}

	// -P publishes what the image and --expose declare.
	d.Docker(t, "run", "-d", "--name", n+"-all", "-P", "--expose", "80", img, "sh", "-c", httpdCmd).Must(t)
	defer d.Docker(t, "rm", "-f", n+"-all")
	all := d.Docker(t, "port", n+"-all", "80/tcp").Must(t).Stdout
	_, p, ok := strings.Cut(strings.TrimSpace(strings.Split(all, "\n")[0]), ":")
	if !ok {
		t.Fatalf("-P: %q", all)
	}
	if body, err := httpGet(t, "http://127.0.0.1:"+p+"/index.html"); err != nil || body != "hello\n" {
		t.Errorf("-P port: %q %v", body, err)
	}

	if r := d.Docker(t, "run", "--rm", "-p", "127.0.0.1:1:80/sctp", img, "true"); r.Code == 0 || !strings.Contains(r.Stderr, "sctp") {
		t.Errorf("sctp: %d %q", r.Code, r.Stderr)
	}
}

// TestPublishedPortHalfCloseAndUDP: a client that shuts its write side
// still gets the server's answer, and UDP datagrams go both ways.
func TestPublishedPortHalfCloseAndUDP(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	n := testenv.Name(t)
	echo := filepath.Join(t.TempDir(), "udpecho")
	build := exec.Command(testenv.GoTool(), "build", "-o", echo, "./testdata/udpecho")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build udpecho: %v\n%s", err, out)
	}
	tcp, udp := freePort(t), freePort(t)
	d.Docker(t, "create", "--name", n, "-p", fmt.Sprintf("127.0.0.1:%d:7", tcp), "-p", fmt.Sprintf("127.0.0.1:%d:5353/udp", udp),
		img, "sh", "-c", `printf '#!/bin/sh\necho got $(wc -c)\n' > /h.sh && chmod +x /h.sh && (/udpecho 5353 &) && exec nc -ll -p 7 -e /h.sh`).Must(t)
	defer d.Docker(t, "rm", "-f", n)
	d.Docker(t, "cp", echo, n+":/udpecho").Must(t)
	d.Docker(t, "start", n).Must(t)

	var reply []byte
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tcp))
		if err == nil {
			c.Write([]byte("hello"))
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			reply, _ = io.ReadAll(c)
			c.Close()
			if len(reply) > 0 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.TrimSpace(string(reply)) != "got 5" {
		t.Errorf("half-close: reply %q", reply)
	}

	u, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udp))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	buf := make([]byte, 100)
	var got string
	for i := 0; i < 30 && got == ""; i++ {
		u.Write([]byte("ping"))
		u.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := u.Read(buf); err == nil {
			got = string(buf[:n])
		}
	}
	if got != "echo:ping" {
		t.Errorf("udp: %q", got)
	}
}
