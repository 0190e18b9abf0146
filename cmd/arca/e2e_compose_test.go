package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// composeProject is a typical stack: a database-like service with a named
// volume and a health check, a web server in front with a bind-mounted
// config and a published port, a one-shot job, and two networks.
const composeProject = `services:
  db:
    image: %[1]s
    command: ["sh", "-c", "mkdir -p /data && echo dbdata > /data/x && exec httpd -f -p 5432 -h /data"]
    volumes: ["dbdata:/data"]
    networks: [back]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:5432/x"]
      interval: 1s
      retries: 30
  web:
    image: %[1]s
    command: ["sh", "-c", "exec httpd -f -p 80 -h /www"]
    volumes: ["./conf:/www:ro"]
    ports: ["127.0.0.1:%[2]d:80"]
    networks: [front, back]
    depends_on:
      db: {condition: service_healthy}
  job:
    image: %[1]s
    command: ["sh", "-c", "wget -q -O- http://db:5432/x"]
    networks: [back]
    depends_on:
      db: {condition: service_healthy}
volumes:
  dbdata:
networks:
  front:
  back:
`

// TestCompose runs the project through docker compose v2 (make compose
// builds the plugin; make test does so first): up --wait, ps, logs, exec,
// run --rm, restart, an attached up, and down -v leaving nothing behind.
func TestCompose(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	if r := d.Docker(t, "compose", "version"); r.Code != 0 {
		t.Fatalf("the docker compose plugin is missing (make compose builds it; make test does so first): %s", r.Stderr)
	}
	dir := t.TempDir()
	project := strings.ToLower(testenv.Name(t))
	port := freePort(t)
	os.MkdirAll(filepath.Join(dir, "conf"), 0o755)
	os.WriteFile(filepath.Join(dir, "conf", "index.html"), []byte("hello from config\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(fmt.Sprintf(composeProject, img, port)), 0o644)
	compose := func(args ...string) testenv.Result {
		return d.Docker(t, append([]string{"compose", "--project-directory", dir, "-p", project}, args...)...)
	}
	defer compose("down", "-v", "--timeout", "1")

	// The one-shot job exits, which --wait reports; what matters is that
	// the long-running services came up healthy behind their dependency.
	compose("up", "-d", "--wait", "db", "web").Must(t)
	ps := compose("ps", "--format", "{{.Service}} {{.Status}}").Must(t).Stdout
	if !strings.Contains(ps, "db Up") || !strings.Contains(ps, "(healthy)") || !strings.Contains(ps, "web Up") {
		t.Errorf("compose ps:\n%s", ps)
	}
	if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); err != nil || body != "hello from config\n" {
		t.Errorf("web through its published port: %q %v", body, err)
	}
	if out := compose("exec", "-T", "web", "wget", "-q", "-O-", "http://db:5432/x").Must(t).Stdout; out != "dbdata\n" {
		t.Errorf("exec web -> db by service name: %q", out)
	}
	// An attached up of the one-shot service shows its output.
	if out := compose("up", "job").Must(t).Stdout; !strings.Contains(out, "dbdata") {
		t.Errorf("attached up: %q", out)
	}
	if out := compose("logs", "job").Must(t).Stdout; !strings.Contains(out, "dbdata") {
		t.Errorf("logs: %q", out)
	}
	if out := compose("run", "--rm", "job").Must(t).Stdout; !strings.Contains(out, "dbdata") {
		t.Errorf("run --rm: %q", out)
	}
	compose("restart", "web").Must(t)
	if body, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); err != nil || body != "hello from config\n" {
		t.Errorf("after restart: %q %v", body, err)
	}

	compose("down", "-v", "--timeout", "1").Must(t)
	for _, c := range []struct{ args []string }{
		{[]string{"ps", "-aq", "--filter", "label=com.docker.compose.project=" + project}},
		{[]string{"network", "ls", "-q", "--filter", "label=com.docker.compose.project=" + project}},
		{[]string{"volume", "ls", "-q", "--filter", "label=com.docker.compose.project=" + project}},
	} {
		if out := d.Docker(t, c.args...).Must(t).Stdout; out != "" {
			t.Errorf("%v after down -v: %q", c.args, out)
		}
	}
	if _, err := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Errorf("port %d still served after down", port)
	}
}
