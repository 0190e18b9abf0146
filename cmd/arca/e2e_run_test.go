package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/arcavm/arca/internal/testenv"
)

func TestRunEcho(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	r := d.Docker(t, "run", "--rm", img, "echo", "hello").Must(t)
	if r.Stdout != "hello\n" {
		t.Fatalf("stdout %q stderr %q", r.Stdout, r.Stderr)
	}
}

func TestRunPullsMissingImage(t *testing.T) {
	reg := testenv.Registry(t)
	img := testenv.PushBusybox(t, reg)
	d := testenv.SharedDaemon(t)
	r := d.Docker(t, "run", "--rm", img, "echo", "pulled").Must(t)
	if r.Stdout != "pulled\n" || !strings.Contains(r.Stderr, "Unable to find image") {
		t.Fatalf("stdout %q stderr %q", r.Stdout, r.Stderr)
	}
}

func TestRunExitCodesAndStreams(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	cases := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"exit 3", []string{"sh", "-c", "exit 3"}, 3, "", ""},
		{"streams apart", []string{"sh", "-c", "echo out; echo err >&2"}, 0, "out\n", "err\n"},
		{"env", []string{"-e", "FOO=bar", img, "sh", "-c", "echo $FOO"}, 0, "bar\n", ""},
		{"workdir", []string{"-w", "/tmp/made", img, "pwd"}, 0, "/tmp/made\n", ""},
		{"user", []string{"-u", "nobody", img, "id", "-un"}, 0, "nobody\n", ""},
		{"uid", []string{"-u", "65534:65534", img, "id", "-u"}, 0, "65534\n", ""},
		{"entrypoint", []string{"--entrypoint", "echo", img, "via", "entrypoint"}, 0, "via entrypoint\n", ""},
		{"hostname", []string{"--hostname", "box1", img, "hostname"}, 0, "box1\n", ""},
		{"killed by signal", []string{"sh", "-c", "sh -c 'kill -9 $$' 2>/dev/null; exit $?"}, 137, "", ""},
		// The command is PID 1 of its own pid namespace, as on dockerd,
		// where a signal it sends itself without a handler is ignored.
		{"PID 1 survives its own SIGKILL", []string{"sh", "-c", "kill -9 $$; echo alive"}, 0, "alive\n", ""},
		{"missing command", []string{"no-such-cmd"}, 127, "", ""},
		// CapBnd: Docker's default set, then with one dropped and one added.
		{"default caps", []string{"sh", "-c", "grep CapBnd /proc/self/status"}, 0, "CapBnd:\t00000000a80425fb\n", ""},
		{"cap-drop", []string{"--cap-drop", "CHOWN", img, "sh", "-c", "grep CapBnd /proc/self/status"}, 0, "CapBnd:\t00000000a80425fa\n", ""},
		{"cap-add", []string{"--cap-add", "NET_ADMIN", img, "sh", "-c", "grep CapBnd /proc/self/status"}, 0, "CapBnd:\t00000000a80435fb\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"run", "--rm"}
			if strings.HasPrefix(c.args[0], "-") {
				args = append(args, c.args...)
			} else {
				args = append(append(args, img), c.args...)
			}
			r := d.Docker(t, args...)
			if r.Code != c.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", r.Code, c.code, r.Stdout, r.Stderr)
			}
			if c.code == 127 {
				if !strings.Contains(r.Stderr, "executable file not found") {
					t.Errorf("stderr %q", r.Stderr)
				}
				return
			}
			if r.Stdout != c.stdout || r.Stderr != c.stderr {
				t.Errorf("stdout %q stderr %q; want %q %q", r.Stdout, r.Stderr, c.stdout, c.stderr)
			}
		})
	}
}

func TestRunStdin(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	r := d.DockerStdin(t, strings.NewReader("abc\n"), "run", "-i", "--rm", img, "cat").Must(t)
	if r.Stdout != "abc\n" {
		t.Fatalf("stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	// A larger stdin, counted on the other side.
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	r = d.DockerStdin(t, strings.NewReader(big), "run", "-i", "--rm", img, "wc", "-c").Must(t)
	if strings.TrimSpace(r.Stdout) != "1048576" {
		t.Fatalf("wc -c: %q", r.Stdout)
	}
}

func TestRunLargeOutput(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	const n = 10_000_000
	// seq's output is deterministic: compare its checksum with the host's.
	r := d.DockerCmd(t, testenv.Cmd{Timeout: 5 * time.Minute}, "run", "--rm", img, "sh", "-c", "seq 1 1400000 | head -c 10000000")
	r.Must(t)
	if len(r.Stdout) != n {
		t.Fatalf("got %d bytes, want %d", len(r.Stdout), n)
	}
	var want strings.Builder
	for i := 1; want.Len() < n; i++ {
		want.WriteString(itoa(i))
		want.WriteByte('\n')
	}
	w := want.String()[:n]
	if sum(r.Stdout) != sum(w) {
		t.Fatalf("10 MB output differs from the expected bytes")
	}
}

func itoa(i int) string {
	b := []byte{}
	for i > 0 {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
	}
	return string(b)
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestImageDefaultsApplied(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := testenv.SharedBusyboxCustom(t).Ref
	d.Docker(t, "pull", "-q", img).Must(t)
	want := testenv.BusyboxCustom
	if got := d.Docker(t, "run", "--rm", img).Must(t).Stdout; got != want.DefaultOutput {
		t.Errorf("default run: %q, want %q", got, want.DefaultOutput)
	}
	env := d.Docker(t, "run", "--rm", img, "env").Must(t).Stdout
	for _, e := range append([]string{want.EntrypointMarker}, want.Env...) {
		if !strings.Contains(env, e+"\n") {
			t.Errorf("env lacks %q:\n%s", e, env)
		}
	}
	if got := d.Docker(t, "run", "--rm", "--entrypoint", "", img, "id", "-u").Must(t).Stdout; strings.TrimSpace(got) != "1000" {
		t.Errorf("image user: %q", got)
	}
	if got := d.Docker(t, "run", "--rm", "--entrypoint", "pwd", img).Must(t).Stdout; got != want.WorkingDir+"\n" {
		t.Errorf("image workdir: %q", got)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	id := strings.TrimSpace(d.Docker(t, "run", "-d", "--name", name, "--label", "suite=arca", img,
		"sh", "-c", "echo started; echo problem >&2; sleep 300").Must(t).Stdout)
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	ps := d.Docker(t, "ps", "--filter", "name="+name, "--format", "{{.ID}} {{.Names}} {{.Status}} {{.Labels}}").Must(t).Stdout
	if !strings.HasPrefix(ps, id[:12]+" "+name+" Up") || !strings.Contains(ps, "suite=arca") {
		t.Errorf("ps: %q", ps)
	}
	var logs testenv.Result
	for i := 0; i < 50; i++ {
		logs = d.Docker(t, "logs", name).Must(t)
		if logs.Stdout == "started\n" && logs.Stderr == "problem\n" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if logs.Stdout != "started\n" || logs.Stderr != "problem\n" {
		t.Errorf("logs: stdout %q stderr %q", logs.Stdout, logs.Stderr)
	}
	var inspect []struct {
		ID    string `json:"Id"`
		Name  string
		State struct {
			Status    string
			Running   bool
			Pid       int
			StartedAt string
		}
		Config struct {
			Labels map[string]string
			Image  string
		}
	}
	if err := json.Unmarshal([]byte(d.Docker(t, "inspect", name).Must(t).Stdout), &inspect); err != nil {
		t.Fatal(err)
	}
	st := inspect[0].State
	if inspect[0].ID != id || inspect[0].Name != "/"+name || st.Status != "running" || !st.Running || st.Pid == 0 ||
		!strings.HasPrefix(st.StartedAt, "20") || inspect[0].Config.Labels["suite"] != "arca" {
		t.Errorf("inspect: %+v", inspect[0])
	}
	r := d.Docker(t, "rm", name).MustFail(t)
	if !strings.Contains(r.Stderr, "container is running") {
		t.Errorf("rm of running: %s", r.Stderr)
	}
	d.Docker(t, "rm", "-f", name).Must(t)
	if r := d.Docker(t, "inspect", name); r.Code == 0 || !strings.Contains(r.Stderr, "No such") {
		t.Errorf("inspect after rm: %d %s", r.Code, r.Stderr)
	}
	if out := d.Docker(t, "ps", "-a", "--filter", "name="+name, "-q").Must(t).Stdout; out != "" {
		t.Errorf("ps -a after rm: %q", out)
	}
}

func TestExitedShowsInPsA(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "--name", name, img, "sh", "-c", "exit 5").MustFail(t)
	out := d.Docker(t, "ps", "-a", "--filter", "name="+name, "--format", "{{.Status}}").Must(t).Stdout
	if !strings.HasPrefix(out, "Exited (5)") {
		t.Errorf("ps -a status %q", out)
	}
	if out := d.Docker(t, "ps", "--filter", "name="+name, "-q").Must(t).Stdout; out != "" {
		t.Errorf("ps without -a lists exited: %q", out)
	}
	code := d.Docker(t, "inspect", "--format", "{{.State.ExitCode}} {{.State.Status}}", name).Must(t).Stdout
	if strings.TrimSpace(code) != "5 exited" {
		t.Errorf("inspect state %q", code)
	}
	d.Docker(t, "rm", name).Must(t)
}

func TestBadInput(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	cases := []struct {
		method, path, body string
		code               int
		contains           string
	}{
		{"POST", "/containers/create", "{not json", 400, "invalid JSON"},
		{"POST", "/containers/create", `{"Image":""}`, 400, "no image"},
		{"POST", "/containers/create?name=bad/name", `{"Image":"` + img + `"}`, 400, "Invalid container name"},
		{"POST", "/containers/create", `{"Image":"no-such-image:v9"}`, 404, "No such image: no-such-image:v9"},
		{"GET", "/containers/nope-nope/json", "", 404, "No such container: nope-nope"},
		{"POST", "/containers/nope-nope/start", "", 404, "No such container: nope-nope"},
		{"DELETE", "/containers/nope-nope", "", 404, "No such container: nope-nope"},
		{"GET", "/containers/json?filters=%7Bbroken", "", 400, "invalid filter"},
		{"GET", "/containers/json?filters=%7B%22nokey%22%3A%7B%22x%22%3Atrue%7D%7D", "", 400, "invalid filter 'nokey'"},
		{"GET", "/images/nope-nope:1/json", "", 404, "No such image: nope-nope:1"},
		{"POST", "/containers/create", `{"Image":"` + img + `","Cmd":[],"Entrypoint":[""]}`, 400, "no command specified"},
	}
	for _, c := range cases {
		code, _, body := call(t, d, c.method, c.path, c.body)
		if code != c.code || !strings.Contains(body, c.contains) || !strings.Contains(body, `"message"`) {
			t.Errorf("%s %s %s = %d %s; want %d with %q", c.method, c.path, c.body, code, body, c.code, c.contains)
		}
	}
	// A name conflict, with Docker's words.
	name := testenv.Name(t)
	d.Docker(t, "create", "--name", name, img, "true").Must(t)
	r := d.Docker(t, "create", "--name", name, img, "true").MustFail(t)
	if !strings.Contains(r.Stderr, "is already in use by container") {
		t.Errorf("conflict: %s", r.Stderr)
	}
	d.Docker(t, "rm", name).Must(t)
	// Nothing half-made: the failed creates left no container behind.
	c := d.Client(t)
	list, err := c.ContainerList(context.Background(), client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range list.Items {
		if ct.Image == "no-such-image:v9" {
			t.Errorf("half-made container %s", ct.ID)
		}
	}
}

func TestRunTTY(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	r := d.Docker(t, "run", "-t", "--rm", img, "sh", "-c", "tty; echo $TERM; echo err >&2").Must(t)
	// A TTY merges the streams and turns \n into \r\n.
	if r.Stdout != "/dev/pts/0\r\nxterm\r\nerr\r\n" {
		t.Errorf("tty run: %q %q", r.Stdout, r.Stderr)
	}
}
