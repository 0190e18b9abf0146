package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Result is what one docker CLI run gave.
type Result struct {
	Args     []string // the docker arguments, for messages
	Stdout   string
	Stderr   string
	Code     int  // exit code; -1 when it did not exit by itself
	TimedOut bool // killed at the deadline
}

// Must fails the test, showing the command and its output, unless it exited 0.
func (r Result) Must(t testing.TB) Result {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s", r.describe())
	}
	return r
}

// MustFail fails the test unless the command exited non-zero, and returns r
// so the caller can check the error text.
func (r Result) MustFail(t testing.TB) Result {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("expected failure, got success: %s", r.describe())
	}
	return r
}

func (r Result) describe() string {
	status := fmt.Sprintf("exit code %d", r.Code)
	if r.TimedOut {
		status = "timed out"
	}
	return fmt.Sprintf("docker %s: %s\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.Args, " "), status, tail(r.Stdout, 8000), tail(r.Stderr, 8000))
}

// Cmd tunes one docker CLI run.
type Cmd struct {
	Stdin   io.Reader     // nil: no input (like </dev/null)
	Timeout time.Duration // default Options.DockerTimeout (2 min)
	Env     []string      // added to the CLI's environment
}

// Docker runs the docker CLI against the daemon with a private DOCKER_CONFIG
// (nothing of the user's config or credentials leaks in) and returns what it
// printed and its exit code. It never hangs: at the deadline the CLI and
// anything it started are killed.
func (d *Daemon) Docker(t testing.TB, args ...string) Result {
	t.Helper()
	return d.DockerCmd(t, Cmd{}, args...)
}

// DockerStdin is Docker with stdin as the CLI's standard input.
func (d *Daemon) DockerStdin(t testing.TB, stdin io.Reader, args ...string) Result {
	t.Helper()
	return d.DockerCmd(t, Cmd{Stdin: stdin}, args...)
}

// DockerCmd is Docker with the options in c.
func (d *Daemon) DockerCmd(t testing.TB, c Cmd, args ...string) Result {
	t.Helper()
	timeout := c.Timeout
	if timeout == 0 {
		timeout = d.opts.DockerTimeout
	}
	r := runDocker(d.Host(), d.dockerConfig(), timeout, c, args)
	if r.TimedOut {
		t.Logf("testenv: docker %s timed out after %s", strings.Join(args, " "), timeout)
	}
	return r
}

// DockerEnv is the environment that points a docker CLI (or compose, or
// docker-py) at this daemon with its private config: for tests that run
// other clients themselves.
func (d *Daemon) DockerEnv() []string {
	return dockerEnv(d.Host(), d.dockerConfig())
}

func (d *Daemon) dockerConfig() string { return filepath.Join(d.dir, "docker-config") }

func runDocker(host, configDir string, timeout time.Duration, c Cmd, args []string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return runDockerContext(ctx, host, configDir, c, args)
}

// runDockerContext runs the CLI until it exits or ctx ends (then it and
// everything it started are killed, and the result says TimedOut).
func runDockerContext(ctx context.Context, host, configDir string, c Cmd, args []string) Result {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(dockerEnv(host, configDir), c.Env...)
	cmd.Stdin = c.Stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Own process group, so the deadline kills plugins (compose) and
	// anything else the CLI started, not only the CLI.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps our pipes open must not keep us waiting.
	cmd.WaitDelay = 5 * time.Second

	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.Code, r.TimedOut = -1, true
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		r.Code = exitErr.ExitCode()
	default:
		r.Code = -1
		r.Stderr += fmt.Sprintf("\ntestenv: run docker: %v", err)
	}
	return r
}

// dockerEnv is our environment without any DOCKER_* that could redirect the
// CLI elsewhere, plus the daemon's host and the private config.
func dockerEnv(host, configDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_") || strings.HasPrefix(kv, "COMPOSE_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"DOCKER_HOST="+host,
		"DOCKER_CONFIG="+configDir,
		"DOCKER_CLI_HINTS=false",
	)
}

// setupDockerConfig makes a private DOCKER_CONFIG. The CLI looks for plugins
// under $DOCKER_CONFIG/cli-plugins, so the user's plugins (compose, built by
// `make compose`) are linked in; credentials and contexts are not.
func setupDockerConfig(dir string) error {
	plugins := filepath.Join(dir, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o700); err != nil {
		return fmt.Errorf("create docker config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}\n"), 0o600); err != nil {
		return fmt.Errorf("write docker config: %w", err)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return nil // no home, no plugins to share
	}
	entries, err := os.ReadDir(filepath.Join(home, ".docker", "cli-plugins"))
	if err != nil {
		return nil
	}
	for _, e := range entries {
		src := filepath.Join(home, ".docker", "cli-plugins", e.Name())
		if err := os.Symlink(src, filepath.Join(plugins, e.Name())); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("link docker plugin %s: %w", e.Name(), err)
		}
	}
	return nil
}
