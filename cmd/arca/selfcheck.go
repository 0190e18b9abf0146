package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// arca doctor --full: after the static checks, the install is driven end
// to end through the docker CLI, as a user would, against the running
// daemon: an image pulled, containers run (each a machine booted), a user
// network, volumes of both drivers, a published port reached from the
// host. Everything here is plain logic, run on Linux against a sandbox
// daemon by the tests; what only a Mac has (signature, macOS version,
// chip) is in doctor_darwin.go.

// stepStatus is one step's outcome.
type stepStatus int

const (
	stepOK stepStatus = iota
	stepFail
	stepSkip // a step it needs did not pass
)

func (s stepStatus) String() string { return [...]string{"OK", "FAIL", "SKIP"}[s] }

// checkStep is one step of the self-check. run returns a short detail
// for the report (what was seen), or why it failed.
type checkStep struct {
	name    string
	needs   []string // steps that must have passed first
	timeout time.Duration
	run     func(ctx context.Context, c *selfCheck) (string, error)
}

// stepResult is a step's line in the report.
type stepResult struct {
	name   string
	status stepStatus
	detail string
	err    error
	took   time.Duration
}

// selfCheck is one run: how to call the docker CLI, the image used and
// the prefix of everything it makes (all removed at the end).
type selfCheck struct {
	docker dockerCLI
	image  string
	prefix string
	// httpGet reaches a published port from the host (tests replace it).
	httpGet func(ctx context.Context, url string) (string, error)
	cleanup []func(ctx context.Context) error
}

// selfCheckLabel marks what the self-check makes, so leftovers of an
// interrupted run can be found: docker ps -a --filter label=dev.arca.selfcheck.
const selfCheckLabel = "dev.arca.selfcheck"

func newSelfCheck(docker dockerCLI, image string) *selfCheck {
	b := make([]byte, 3)
	rand.Read(b)
	return &selfCheck{docker: docker, image: image, prefix: "arca-check-" + hex.EncodeToString(b), httpGet: hostGet}
}

// name is the name of something this run makes.
func (c *selfCheck) name(what string) string { return c.prefix + "-" + what }

// later registers an undo for the end of the run (last first).
func (c *selfCheck) later(f func(ctx context.Context) error) { c.cleanup = append(c.cleanup, f) }

// rm removes a container at the end of the run.
func (c *selfCheck) rm(name string) {
	c.later(func(ctx context.Context) error { _, err := c.docker.run(ctx, "rm", "-f", name); return err })
}

// runSteps runs steps in order, a step whose needs did not pass skipped,
// each line written to w as it is known; then it undoes what the steps
// made, reporting what it could not.
func (c *selfCheck) runSteps(ctx context.Context, w io.Writer, steps []checkStep) []stepResult {
	passed := map[string]bool{}
	var out []stepResult
	for _, s := range steps {
		r := stepResult{name: s.name}
		for _, n := range s.needs {
			if !passed[n] {
				r.status, r.detail = stepSkip, "needs "+n
				break
			}
		}
		if r.status != stepSkip {
			if ctx.Err() != nil {
				r.status, r.detail = stepSkip, "interrupted"
			} else {
				r = c.runStep(ctx, s)
			}
		}
		passed[s.name] = r.status == stepOK
		writeStep(w, r)
		out = append(out, r)
	}
	if err := c.undo(); err != nil {
		r := stepResult{name: "cleanup", status: stepFail, err: err,
			detail: "remove what is left: docker rm -f / network rm / volume rm of " + c.prefix + "-*"}
		writeStep(w, r)
		out = append(out, r)
	}
	return out
}

func (c *selfCheck) runStep(ctx context.Context, s checkStep) stepResult {
	timeout := s.timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	detail, err := s.run(sctx, c)
	r := stepResult{name: s.name, detail: detail, took: time.Since(start)}
	if err != nil {
		r.status, r.err = stepFail, err
		if sctx.Err() != nil && ctx.Err() == nil {
			r.err = fmt.Errorf("%w (the step's %s ran out)", err, timeout)
		}
	}
	return r
}

// undo runs the cleanups, last first, on a context of its own: an
// interrupted run still removes what it made.
func (c *selfCheck) undo() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for i := len(c.cleanup) - 1; i >= 0; i-- {
		if err := c.cleanup[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	c.cleanup = nil
	return errors.Join(errs...)
}

// selfCheckSteps is what --full checks, in an order where each step
// builds on the ones before.
func selfCheckSteps() []checkStep {
	return []checkStep{
		{name: "daemon", timeout: 30 * time.Second, run: stepDaemon},
		{name: "pull", needs: []string{"daemon"}, timeout: 5 * time.Minute, run: stepPull},
		{name: "run", needs: []string{"pull"}, run: stepRun},
		{name: "exec", needs: []string{"run"}, run: stepExec},
		{name: "network", needs: []string{"run"}, timeout: 3 * time.Minute, run: stepNetwork},
		{name: "volume", needs: []string{"run"}, run: stepVolume},
		{name: "block", needs: []string{"run"}, run: stepBlockVolume},
		{name: "port", needs: []string{"run"}, run: stepPort},
	}
}

// stepDaemon: the daemon answers, and says which driver it runs.
func stepDaemon(ctx context.Context, c *selfCheck) (string, error) {
	v, err := c.docker.run(ctx, "version", "--format", "server {{.Server.Version}} (API {{.Server.APIVersion}})")
	if err != nil {
		return "", err
	}
	status, err := c.docker.run(ctx, "info", "--format", "{{range .DriverStatus}}{{index . 0}}: {{index . 1}}; {{end}}")
	if err != nil {
		return "", err
	}
	return v + "; " + strings.TrimSuffix(strings.TrimSpace(status), ";"), nil
}

func stepPull(ctx context.Context, c *selfCheck) (string, error) {
	if _, err := c.docker.run(ctx, "pull", "-q", c.image); err != nil {
		return "", err
	}
	id, err := c.docker.run(ctx, "image", "inspect", "-f", "{{.Id}} {{.Architecture}}", c.image)
	if err != nil {
		return "", err
	}
	return c.image + " " + imageSummary(id), nil
}

// stepRun: a container's whole life, machine booted and gone.
func stepRun(ctx context.Context, c *selfCheck) (string, error) {
	if _, err := c.docker.run(ctx, "run", "--rm", "--label", selfCheckLabel, c.image, "true"); err != nil {
		return "", err
	}
	return "docker run --rm " + c.image + " true", nil
}

// stepExec: an exec in a running container, which shows the guest's
// kernel and architecture.
func stepExec(ctx context.Context, c *selfCheck) (string, error) {
	n := c.name("exec")
	c.rm(n)
	if _, err := c.docker.run(ctx, "run", "-d", "--name", n, "--label", selfCheckLabel, c.image, "sleep", "300"); err != nil {
		return "", err
	}
	uname, err := c.docker.run(ctx, "exec", n, "uname", "-srm")
	if err != nil {
		return "", err
	}
	return "guest " + uname, nil
}

// stepNetwork: two containers on a user network reach each other by name
// (the embedded DNS and the mesh between their machines).
func stepNetwork(ctx context.Context, c *selfCheck) (string, error) {
	net := c.name("net")
	c.later(func(ctx context.Context) error { _, err := c.docker.run(ctx, "network", "rm", net); return err })
	if _, err := c.docker.run(ctx, "network", "create", "--label", selfCheckLabel, net); err != nil {
		return "", err
	}
	a, b := c.name("a"), c.name("b")
	for _, n := range []string{a, b} {
		c.rm(n)
		if _, err := c.docker.run(ctx, "run", "-d", "--name", n, "--network", net, "--label", selfCheckLabel, c.image, "sleep", "300"); err != nil {
			return "", err
		}
	}
	out, err := c.docker.run(ctx, "exec", a, "ping", "-c", "1", "-W", "5", b)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s reached %s by name%s", shortName(c, a), shortName(c, b), pingedAddr(out)), nil
}

// pingedAddr is " (ADDR)" from busybox ping's "PING name (ADDR): ...".
func pingedAddr(out string) string {
	if m := regexp.MustCompile(`PING \S+ \(([0-9.]+)\)`).FindStringSubmatch(out); m != nil {
		return " (" + m[1] + ")"
	}
	return ""
}

// stepVolume: a local volume keeps what one container wrote for the next.
func stepVolume(ctx context.Context, c *selfCheck) (string, error) {
	v := c.name("vol")
	return c.volumeRoundTrip(ctx, v, []string{"volume", "create", "--label", selfCheckLabel, v}, "")
}

// stepBlockVolume: the same with a block volume, the machine's own ext4
// disk.
func stepBlockVolume(ctx context.Context, c *selfCheck) (string, error) {
	v := c.name("blk")
	return c.volumeRoundTrip(ctx, v, []string{"volume", "create", "--driver", "block", "--opt", "size=64M", "--label", selfCheckLabel, v}, "ext4")
}

// volumeRoundTrip creates volume v, writes to it from one container and
// reads it back read-only from another; fstype, when set, is what the
// first must see mounted at /data.
func (c *selfCheck) volumeRoundTrip(ctx context.Context, v string, create []string, fstype string) (string, error) {
	c.later(func(ctx context.Context) error { _, err := c.docker.run(ctx, "volume", "rm", v); return err })
	if _, err := c.docker.run(ctx, create...); err != nil {
		return "", err
	}
	out, err := c.docker.run(ctx, "run", "--rm", "--label", selfCheckLabel, "-v", v+":/data", c.image,
		"sh", "-c", "echo arca > /data/check && grep ' /data ' /proc/mounts")
	if err != nil {
		return "", err
	}
	fields := strings.Fields(out)
	if len(fields) < 3 {
		return "", fmt.Errorf("no mount at /data in the container: %q", out)
	}
	if fstype != "" && fields[2] != fstype {
		return "", fmt.Errorf("/data is %s, not %s: %q", fields[2], fstype, out)
	}
	got, err := c.docker.run(ctx, "run", "--rm", "--label", selfCheckLabel, "-v", v+":/data:ro", c.image, "cat", "/data/check")
	if err != nil {
		return "", err
	}
	if got != "arca" {
		return "", fmt.Errorf("the next container read %q, not what was written", got)
	}
	return fmt.Sprintf("written, read back by another container (%s at /data)", fields[2]), nil
}

// stepPort: a server in a container reached from the host through a
// published port.
func stepPort(ctx context.Context, c *selfCheck) (string, error) {
	n := c.name("web")
	c.rm(n)
	const serve = "mkdir -p /www && echo arca > /www/index.html && exec httpd -f -p 8080 -h /www"
	if _, err := c.docker.run(ctx, "run", "-d", "--name", n, "--label", selfCheckLabel, "-p", "127.0.0.1::8080", c.image, "sh", "-c", serve); err != nil {
		return "", err
	}
	hostPort, err := c.docker.run(ctx, "port", n, "8080/tcp")
	if err != nil {
		return "", err
	}
	hostPort, _, _ = strings.Cut(hostPort, "\n")
	url := "http://" + hostPort + "/index.html"
	// The server may not listen yet when the container has started.
	var last error
	for {
		body, err := c.httpGet(ctx, url)
		if err == nil && strings.TrimSpace(body) == "arca" {
			return "GET " + url + " from the host", nil
		}
		if err == nil {
			err = fmt.Errorf("GET %s: %q", url, body)
		}
		last = err
		select {
		case <-ctx.Done():
			return "", last
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func hostGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// imageSummary turns inspect's "sha256:HEX ARCH" into "HEX[:12] ARCH".
func imageSummary(s string) string {
	id, arch, _ := strings.Cut(strings.TrimSpace(s), " ")
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return strings.TrimSpace(id + " " + arch)
}

func shortName(c *selfCheck, n string) string { return strings.TrimPrefix(n, c.prefix+"-") }

// dockerCLI runs the docker CLI with fixed leading arguments (the context
// or host) and environment.
type dockerCLI struct {
	path   string
	global []string
	env    []string // nil: the doctor's own
}

// run runs one command and returns its trimmed stdout; an error carries
// the command and what it printed on stderr.
func (d dockerCLI) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.path, append(append([]string{}, d.global...), args...)...)
	cmd.Env = d.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if msg != "" {
			err = fmt.Errorf("%w: %s", err, lastLines(msg, 6))
		}
		return "", fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// lastLines keeps the end of a long error output.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
