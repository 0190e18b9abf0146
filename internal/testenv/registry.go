package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryServer is a running docker-registry.
type RegistryServer struct {
	Addr string // "127.0.0.1:PORT"
	Dir  string // storage, config and log
	cmd  *exec.Cmd
	done chan struct{}
}

// Registry starts Debian's docker-registry on a free 127.0.0.1 port, with
// no auth and deletes enabled, storing in a temp dir, waits until GET /v2/
// answers and stops it at cleanup. It returns "127.0.0.1:PORT"; regclient,
// the docker CLI and the daemon all talk plain HTTP to loopback registries.
func Registry(t testing.TB) string {
	t.Helper()
	RequireTool(t, "docker-registry")
	dir := tempDir(t, "arca-registry-")
	r, err := startRegistry(dir, "")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { r.stop() })
	return r.Addr
}

func startRegistry(dir, extraConfig string) (*RegistryServer, error) {
	var lastErr error
	// The free port may be taken between our probe and the registry's bind;
	// a few tries make that race irrelevant.
	for attempt := 0; attempt < 5; attempt++ {
		r, err := tryStartRegistry(dir, extraConfig)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func tryStartRegistry(dir, extraConfig string) (*RegistryServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, fmt.Errorf("create registry storage: %w", err)
	}
	// The upload purger and the storage health check only add background
	// noise to a registry that lives for one test run.
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
  secret: arca-testenv-not-a-secret
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
`, storage, addr) + extraConfig
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, fmt.Errorf("write registry config: %w", err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create registry log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor

	cmd := exec.Command("docker-registry", "serve", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = dir
	// Die with the test binary, even when it is killed by a test timeout.
	cmd.SysProcAttr = dieWithTest(syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start docker-registry: %w", err)
	}
	r := &RegistryServer{Addr: addr, Dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(r.done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := waitHTTP(ctx, "http://"+addr+"/v2/", r.done, extraConfig != ""); err != nil {
		r.stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("docker-registry on %s: %w\nregistry log:\n%s", addr, err, tail(string(log), 4000))
	}
	return r, nil
}

// waitHTTP polls url until it answers 200 (or 401 when authOK: a registry
// that wants a password is up when it asks for one), the context ends or
// exited is closed (the server died: no point waiting for it).
func waitHTTP(ctx context.Context, url string, exited <-chan struct{}, authOK bool) error {
	c := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("build request: %w", err)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || authOK && resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-exited:
			return errors.New("exited before answering")
		case <-ctx.Done():
			return fmt.Errorf("not answering GET %s: %w (last: %v)", url, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *RegistryServer) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// AuthRegistryServer is a registry that wants a password.
type AuthRegistryServer struct {
	Addr     string // "127.0.0.1:PORT"
	User     string
	Password string
}

// AuthRegistry starts docker-registry as Registry does, but behind HTTP
// Basic auth with one user (an htpasswd file, bcrypt as the registry
// requires, made here so no apache2-utils is needed).
func AuthRegistry(t testing.TB) AuthRegistryServer {
	t.Helper()
	RequireTool(t, "docker-registry")
	dir := tempDir(t, "arca-authregistry-")
	user, password := "arca", "s3cret-arca"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("testenv: bcrypt: %v", err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatalf("testenv: write htpasswd: %v", err)
	}
	extra := fmt.Sprintf("auth:\n  htpasswd:\n    realm: arca-test\n    path: %s\n", htpasswd)
	r, err := startRegistry(dir, extra)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { r.stop() })
	return AuthRegistryServer{Addr: r.Addr, User: user, Password: password}
}
