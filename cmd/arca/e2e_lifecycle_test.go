package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

func TestExec(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, "-e", "FROM_RUN=1", "-w", "/tmp", img, "sleep", "300").Must(t)
	defer d.Docker(t, "rm", "-f", name)

	cases := []struct {
		name           string
		args           []string
		stdin          string
		code           int
		stdout, stderr string
	}{
		{"echo", []string{"echo", "hi"}, "", 0, "hi\n", ""},
		{"exit code", []string{"sh", "-c", "exit 7"}, "", 7, "", ""},
		{"streams", []string{"sh", "-c", "echo o; echo e >&2"}, "", 0, "o\n", "e\n"},
		{"container env and workdir", []string{"sh", "-c", "echo $FROM_RUN $(pwd)"}, "", 0, "1 /tmp\n", ""},
		{"exec env", []string{"-e", "X=y", name, "sh", "-c", "echo $X"}, "", 0, "y\n", ""},
		{"user", []string{"-u", "nobody", name, "id", "-un"}, "", 0, "nobody\n", ""},
		{"workdir", []string{"-w", "/etc", name, "pwd"}, "", 0, "/etc\n", ""},
		{"stdin", []string{"-i", name, "cat"}, "piped\n", 0, "piped\n", ""},
		{"missing", []string{"nope-cmd"}, "", 126, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"exec"}
			if strings.HasPrefix(c.args[0], "-") {
				args = append(args, c.args...)
			} else {
				args = append(append(args, name), c.args...)
			}
			r := d.DockerStdin(t, strings.NewReader(c.stdin), args...)
			if c.name == "missing" {
				// As dockerd: the error in the stream, exit code 126.
				if r.Code != 126 || !strings.Contains(r.Stdout+r.Stderr, "executable file not found") {
					t.Errorf("missing: %d %q", r.Code, r.Stderr)
				}
				return
			}
			if r.Code != c.code || r.Stdout != c.stdout || r.Stderr != c.stderr {
				t.Errorf("exit %d stdout %q stderr %q; want %d %q %q", r.Code, r.Stdout, r.Stderr, c.code, c.stdout, c.stderr)
			}
		})
	}
	// Detached exec, then inspect through the API.
	d.Docker(t, "exec", "-d", name, "sh", "-c", "echo detached > /tmp/d").Must(t)
	var got string
	for i := 0; i < 50 && got != "detached\n"; i++ {
		got = d.Docker(t, "exec", name, "cat", "/tmp/d").Stdout
		time.Sleep(50 * time.Millisecond)
	}
	if got != "detached\n" {
		t.Errorf("detached exec wrote %q", got)
	}
	code, _, body := call(t, d, "POST", "/containers/"+name+"/exec", `{"Cmd":["true"]}`)
	if code != 201 {
		t.Fatalf("exec create: %d %s", code, body)
	}
	var created struct{ Id string }
	json.Unmarshal([]byte(body), &created)
	code, _, body = call(t, d, "GET", "/exec/"+created.Id+"/json", "")
	if code != 200 || !strings.Contains(body, `"Running":false`) || !strings.Contains(body, `"ExitCode":null`) {
		t.Errorf("exec inspect before start: %d %s", code, body)
	}
	if code, _, body := call(t, d, "GET", "/exec/nope/json", ""); code != 404 || !strings.Contains(body, "No such exec instance") {
		t.Errorf("missing exec: %d %s", code, body)
	}
	// Exec into a stopped container is refused with Docker's words.
	d.Docker(t, "stop", "-t", "1", name).Must(t)
	r := d.Docker(t, "exec", name, "true").MustFail(t)
	if !strings.Contains(r.Stderr, "is not running") {
		t.Errorf("exec into stopped: %s", r.Stderr)
	}
}

func TestEvents(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	since := time.Now().Add(-time.Second).Unix()
	d.Docker(t, "run", "--name", name, "--label", "evt=yes", img, "sh", "-c", "exit 3").MustFail(t)
	d.Docker(t, "rm", name).Must(t)
	until := time.Now().Add(time.Second).Unix()
	out := d.Docker(t, "events", "--since", itoa(int(since)), "--until", itoa(int(until)),
		"--filter", "container="+name, "--format", "{{json .}}").Must(t).Stdout
	var actions []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev struct {
			Type, Action string
			Actor        struct{ Attributes map[string]string }
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		if ev.Type != "container" || ev.Actor.Attributes["evt"] != "yes" || ev.Actor.Attributes["name"] != name {
			t.Errorf("event %s", sc.Text())
		}
		if ev.Action == "die" && ev.Actor.Attributes["exitCode"] != "3" {
			t.Errorf("die without exitCode: %s", sc.Text())
		}
		actions = append(actions, ev.Action)
	}
	if got := strings.Join(actions, ","); got != "create,attach,start,die,destroy" && got != "create,start,die,destroy" {
		t.Errorf("events: %s", got)
	}
	// A bad filter is a 400.
	if code, _, body := call(t, d, "GET", "/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D&until=1", ""); code != 400 {
		t.Errorf("bad filter: %d %s", code, body)
	}
}

func TestRestartPolicy(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, "--restart", "on-failure:2", img, "sh", "-c", "echo run; exit 1").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	// Two restarts (100 ms, 200 ms), then it stays exited.
	deadline := time.Now().Add(30 * time.Second)
	var state string
	for time.Now().Before(deadline) {
		state = d.Docker(t, "inspect", "--format", "{{.RestartCount}} {{.State.Status}}", name).Must(t).Stdout
		if strings.TrimSpace(state) == "2 exited" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.TrimSpace(state) != "2 exited" {
		t.Fatalf("after on-failure:2: %q", state)
	}
	if logs := d.Docker(t, "logs", name).Must(t).Stdout; logs != "run\nrun\nrun\n" {
		t.Errorf("logs of three runs: %q", logs)
	}
	// Bad policies are refused at create.
	for _, bad := range [][]string{{"--restart", "sometimes"}, {"--restart", "always", "--rm"}} {
		args := append(append([]string{"create"}, bad...), img, "true")
		if r := d.Docker(t, args...); r.Code == 0 {
			t.Errorf("create %v succeeded", bad)
		}
	}
}

func TestRestartAlwaysStopsOnStop(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, "--restart", "always", img, "sh", "-c", "sleep 0.2").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		n, _ := strconv.Atoi(strings.TrimSpace(d.Docker(t, "inspect", "--format", "{{.RestartCount}}", name).Must(t).Stdout))
		if n >= 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.Docker(t, "stop", "-t", "1", name).Must(t)
	time.Sleep(time.Second)
	st := d.Docker(t, "inspect", "--format", "{{.State.Status}}", name).Must(t).Stdout
	if strings.TrimSpace(st) != "exited" {
		t.Errorf("after stop: %q", st)
	}
}

func TestRestartAndRename(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, img, "sh", "-c", "echo boot; sleep 300").Must(t)
	first := d.Docker(t, "inspect", "--format", "{{.State.StartedAt}}", name).Must(t).Stdout
	d.Docker(t, "restart", "-t", "1", name).Must(t)
	second := d.Docker(t, "inspect", "--format", "{{.State.StartedAt}} {{.State.Status}}", name).Must(t).Stdout
	if first == second || !strings.Contains(second, "running") {
		t.Errorf("restart: %q then %q", first, second)
	}
	renamed := name + "-new"
	d.Docker(t, "rename", name, renamed).Must(t)
	if r := d.Docker(t, "inspect", name); r.Code == 0 {
		t.Error("old name still resolves")
	}
	if got := d.Docker(t, "inspect", "--format", "{{.Name}}", renamed).Must(t).Stdout; strings.TrimSpace(got) != "/"+renamed {
		t.Errorf("renamed: %q", got)
	}
	other := testenv.Name(t, "other")
	d.Docker(t, "create", "--name", other, img, "true").Must(t)
	if r := d.Docker(t, "rename", other, renamed).MustFail(t); !strings.Contains(r.Stderr, "already in use") {
		t.Errorf("rename onto a taken name: %s", r.Stderr)
	}
	d.Docker(t, "rm", "-f", renamed, other).Must(t)
}

// TestPolicyRestartsAfterDaemonCrash: always comes back, unless-stopped
// stopped by the user does not.
func TestPolicyRestartsAfterDaemonCrash(t *testing.T) {
	reg := testenv.SharedRegistry(t)
	img := testenv.PushBusybox(t, reg)
	d := testenv.StartDaemon(t, testenv.Options{AllowUnclean: true})
	d.Docker(t, "pull", "-q", img).Must(t)
	d.Docker(t, "run", "-d", "--name", "always", "--restart", "always", img, "sleep", "300").Must(t)
	d.Docker(t, "run", "-d", "--name", "stopped", "--restart", "unless-stopped", img, "sleep", "300").Must(t)
	d.Docker(t, "stop", "-t", "1", "stopped").Must(t)
	d.Docker(t, "run", "-d", "--name", "plain", img, "sleep", "300").Must(t)
	d.Kill9(t)
	d.Restart(t)
	deadline := time.Now().Add(20 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		out = d.Docker(t, "ps", "-a", "--format", "{{.Names}} {{.State}}").Must(t).Stdout
		if strings.Contains(out, "always running") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"always running", "stopped exited", "plain exited"} {
		if !strings.Contains(out, want) {
			t.Errorf("after restart lacks %q:\n%s", want, out)
		}
	}
	d.Docker(t, "rm", "-f", "always", "stopped", "plain").Must(t)
}

func TestHealthCheck(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	since := itoa(int(time.Now().Add(-time.Second).Unix()))
	d.Docker(t, "run", "-d", "--name", name, "--health-cmd", "test -f /tmp/ok && echo fine",
		"--health-interval", "200ms", "--health-retries", "2", img, "sleep", "300").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	status := func() string {
		return strings.TrimSpace(d.Docker(t, "inspect", "--format", "{{.State.Health.Status}}", name).Must(t).Stdout)
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if status() == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("health never became %s (now %s)", want, status())
	}
	waitFor("unhealthy")
	d.Docker(t, "exec", name, "touch", "/tmp/ok").Must(t)
	waitFor("healthy")
	if ps := d.Docker(t, "ps", "--filter", "name="+name, "--filter", "health=healthy", "--format", "{{.Status}}").Must(t).Stdout; !strings.Contains(ps, "(healthy)") {
		t.Errorf("ps status: %q", ps)
	}
	log := d.Docker(t, "inspect", "--format", "{{range .State.Health.Log}}{{.ExitCode}}:{{.Output}}|{{end}}", name).Must(t).Stdout
	if !strings.Contains(log, "0:fine") {
		t.Errorf("health log: %q", log)
	}
	ev := d.Docker(t, "events", "--since", since, "--until", itoa(int(time.Now().Unix())+1),
		"--filter", "container="+name, "--filter", "event=health_status", "--format", "{{.Action}}").Must(t).Stdout
	if !strings.Contains(ev, "health_status: healthy") || !strings.Contains(ev, "health_status: unhealthy") {
		t.Errorf("health events: %q", ev)
	}
}

// TestAttachDetachKeys drives the attach upgrade on the raw socket: the
// detach keys end the attach, and the container keeps running.
func TestAttachDetachKeys(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "-i", "--name", name, img, "cat").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	for _, c := range []struct{ query, keys string }{{"", "\x10\x11"}, {"&detachKeys=ctrl-a,x", "\x01x"}} {
		conn, err := net.Dial("unix", d.Socket())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(conn, "POST /v1.50/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1%s HTTP/1.1\r\nHost: arca\r\nUpgrade: tcp\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n", name, c.query)
		br := bufio.NewReader(conn)
		status, _ := br.ReadString('\n')
		if !strings.Contains(status, "101") {
			t.Fatalf("attach status %q", status)
		}
		for line, _ := br.ReadString('\n'); line != "\r\n" && line != ""; line, _ = br.ReadString('\n') {
		}
		conn.Write([]byte("hello\n"))
		frame := make([]byte, 8+6)
		if _, err := io.ReadFull(br, frame); err != nil || string(frame[8:]) != "hello\n" {
			t.Fatalf("echo: %q %v", frame, err)
		}
		conn.Write([]byte(c.keys + "more\n"))
		rest, err := io.ReadAll(br)
		if err != nil || len(rest) != 0 {
			t.Errorf("after detach keys %q: %q %v (want EOF)", c.query, rest, err)
		}
		conn.Close()
	}
	if st := d.Docker(t, "inspect", "--format", "{{.State.Running}}", name).Must(t).Stdout; strings.TrimSpace(st) != "true" {
		t.Errorf("container stopped after detach: %s", st)
	}
	// Bad keys are a 400.
	if code, _, _ := call(t, d, "POST", "/containers/"+name+"/attach?stream=1&stdin=1&detachKeys=ctrl-", ""); code != 400 {
		t.Errorf("bad detach keys: %d", code)
	}
}

func TestContainerPrune(t *testing.T) {
	img := testenv.SharedBusybox(t).Ref
	d := testenv.StartDaemon(t, testenv.Options{})
	d.Docker(t, "pull", "-q", img).Must(t)
	d.Docker(t, "run", "--name", "done1", img, "true").Must(t)
	d.Docker(t, "create", "--name", "made", "--label", "keep=yes", img, "true").Must(t)
	d.Docker(t, "run", "-d", "--name", "live", img, "sleep", "300").Must(t)
	out := d.Docker(t, "container", "prune", "-f", "--filter", "label!=keep=yes").Must(t).Stdout
	if !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("prune: %q", out)
	}
	names := d.Docker(t, "ps", "-a", "--format", "{{.Names}}").Must(t).Stdout
	if strings.Contains(names, "done1") || !strings.Contains(names, "made") || !strings.Contains(names, "live") {
		t.Errorf("after prune: %q", names)
	}
	d.Docker(t, "rm", "-f", "live", "made").Must(t)
}
