package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// TestCreateRefusesBadLimits: limits dockerd refuses are a 400 at create
// in its words, through the CLI and the
// raw API for what the CLI checks itself.
func TestCreateRefusesBadLimits(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	nc := runtime.NumCPU()
	cli := []struct {
		args []string
		want string
	}{
		{[]string{"--memory", "5m"}, "Minimum memory limit allowed is 6MB"},
		{[]string{"--memory", "64m", "--memory-swap", "32m"}, "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{[]string{"--memory-reservation", "1m"}, "Minimum memory reservation allowed is 6MB"},
		{[]string{"--cpus", fmt.Sprint(nc + 1)}, fmt.Sprintf("range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", nc)},
		{[]string{"--cpus", "1", "--cpu-period", "100000"}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{[]string{"--cpu-shares", "-5"}, "range of CPUShares is from 2 to 262144"},
		{[]string{"--blkio-weight", "5"}, "Range of blkio weight is from 10 to 1000"},
		{[]string{"--oom-score-adj", "2000"}, "Invalid value 2000, range for oom score adj is [-1000, 1000]"},
		{[]string{"--platform", "bogus/arch"}, `"bogus/arch": unknown operating system or architecture: invalid argument`},
		{[]string{"--cap-add", "BOGUS"}, `invalid CapAdd: unknown capability: "CAP_BOGUS"`},
		{[]string{"-w", "rel"}, "the working directory 'rel' is invalid, it needs to be an absolute path"},
		{[]string{"--tmpfs", "/t:size=abc"}, `invalid tmpfs option "size=abc" for /t: want a size like 64m`},
	}
	for _, c := range cli {
		r := d.Docker(t, append(append([]string{"create"}, c.args...), img, "true")...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "Error response from daemon: "+c.want) {
			t.Errorf("create %v: code %d, stderr %q; want a failure with %q", c.args, r.Code, r.Stderr, c.want)
		}
	}
	if r := d.Docker(t, "pull", "--platform", "bogus/arch", img).MustFail(t); !strings.Contains(r.Stderr, `"bogus/arch": unknown operating system or architecture: invalid argument`) {
		t.Errorf("pull --platform bogus/arch: %s", r.Stderr)
	}
	api := []struct {
		hostConfig string
		name       string
		want       string
	}{
		{`{"ShmSize":-1}`, "", "SHM size can not be less than 0"},
		{`{"Memory":-1}`, "", "Minimum memory limit allowed is 6MB"},
		{`{"NanoCpus":-1}`, "", "range of CPUs is from 0.01"},
		{`{"Ulimits":[{"Name":"bogus","Soft":1,"Hard":1}]}`, "", "invalid ulimit type: bogus"},
		{`{"Ulimits":[{"Name":"nofile","Soft":200,"Hard":100}]}`, "", "ulimit soft limit must be less than or equal to hard limit: 200 > 100"},
		{`{}`, strings.Repeat("n", 300), "Invalid container name: 300 bytes long, at most 255 are allowed"},
	}
	for _, c := range api {
		path := "/containers/create"
		if c.name != "" {
			path += "?name=" + c.name
		}
		code, _, body := call(t, d, "POST", path, `{"Image":"`+img+`","Cmd":["true"],"HostConfig":`+c.hostConfig+`}`)
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("create with %s: %d %s; want 400 with %q", c.hostConfig, code, body, c.want)
		}
	}
	// What the agent refuses at start is the client's error too.
	id := strings.TrimSpace(d.Docker(t, "create", "-u", "nosuchuser", img, "true").Must(t).Stdout)
	if code, _, body := call(t, d, "POST", "/containers/"+id+"/start", ""); code != 400 || !strings.Contains(body, "unable to find user nosuchuser") {
		t.Errorf("start with an unknown user: %d %s", code, body)
	}
	d.Docker(t, "rm", id)
	if code, _, body := call(t, d, "POST", "/containers/create", `{"Image":"`+img+`","Cmd":["true\u0000x"]}`); code != 400 || !strings.Contains(body, "NUL byte") {
		t.Errorf("NUL in the command: %d %s", code, body)
	}
	// Values dockerd accepts still create.
	name := testenv.Name(t)
	d.Docker(t, "create", "--name", name, "--memory", "64m", "--cpus", "0.5", "--pids-limit", "-1", "--ulimit", "nofile=100:200", img, "true").Must(t)
	d.Docker(t, "rm", name).Must(t)
}

// TestBadInputIsNot500: hostile values in archive paths and unserved
// routes answer 4xx or 501, never 500; a tar hard link to a path outside
// the destination writes nothing.
func TestBadInputIsNot500(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, img, "sleep", "300").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	q := url.QueryEscape
	cases := []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/containers/" + name + "/archive?path=" + q("/etc/\x00passwd"), 400, "NUL byte"},
		{"PUT", "/containers/" + name + "/archive?path=" + q("/tmp/"+strings.Repeat("n", 300)), 400, "file name too long"},
		{"GET", "/containers/" + name + "/archive?path=" + q(strings.Repeat("/abc", 1100)), 400, "file name too long"},
		{"GET", "/containers/" + name + "/archive?path=" + q("/proc/1/root/etc/passwd"), 400, "/proc/<pid>/root"},
		{"GET", "/containers/" + name + "/archive?path=" + q("/nope/"+strings.Repeat("n", 200)), 404, "Could not find the file"},
		{"POST", "/v1.51/build/prune?max-used-space=lots", 400, "invalid max-used-space"},
		{"GET", "/v1.51/distribution/Bad:Name/json", 400, "invalid reference format"},
		{"POST", "/containers/" + name + "/update", 501, "container update (POST /containers/{id}/update) is not implemented by Arca"},
		{"GET", "/swarm", 501, "is not implemented by Arca"},
		{"GET", "/no/such/route", 404, "page not found"},
	}
	for _, c := range cases {
		code, _, body := call(t, d, c.method, c.path, "")
		if code != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s %.80s: %d %s; want %d with %q", c.method, c.path, code, body, c.status, c.want)
		}
	}

	if code, _, body := call(t, d, "POST", "/volumes/create", `{"Name":"`+strings.Repeat("v", 300)+`"}`); code != 400 || !strings.Contains(body, "volume name is too long") {
		t.Errorf("volume with a 300-byte name: %d %s", code, body)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "sub/evil", Linkname: "/etc/shadow", Typeflag: tar.TypeLink})
	tw.Close()
	code, _, body := call(t, d, "PUT", "/containers/"+name+"/archive?path=/tmp", buf.String())
	if code != 400 || !strings.Contains(body, "invalid hardlink") {
		t.Errorf("hard link out of the destination: %d %s", code, body)
	}
	if r := d.Docker(t, "exec", name, "ls", "/tmp/sub"); r.Code == 0 {
		t.Errorf("the refused tar made /tmp/sub: %q", r.Stdout)
	}
}

// TestRunCapDropAll: --cap-drop ALL leaves the process no capability.
func TestRunCapDropAll(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	out := d.Docker(t, "run", "--rm", "--cap-drop", "ALL", img, "grep", "-E", "^Cap(Eff|Prm|Bnd)", "/proc/self/status").Must(t).Stdout
	want := "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if r := d.Docker(t, "run", "--rm", "--cap-drop", "ALL", img, "chown", "nobody", "/tmp"); r.Code == 0 {
		t.Error("chown without CAP_CHOWN succeeded")
	}
}

// TestRunLimitsEnforced: --ulimit, --pids-limit, --shm-size and
// --read-only as the container sees them.
func TestRunLimitsEnforced(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	cases := []struct {
		name string
		args []string
		ok   func(r testenv.Result) bool
	}{
		{"ulimit", []string{"--ulimit", "nofile=100:100", img, "sh", "-c", "ulimit -n; ulimit -Hn"},
			func(r testenv.Result) bool { return r.Code == 0 && r.Stdout == "100\n100\n" }},
		{"pids-limit", []string{"--pids-limit", "5", img, "sh", "-c", "for i in $(seq 10); do sleep 5 & done; echo forked"},
			func(r testenv.Result) bool {
				return strings.Contains(r.Stderr, "can't fork") || strings.Contains(r.Stderr, "Resource temporarily unavailable")
			}},
		{"shm-size", []string{"--shm-size", "1m", img, "sh", "-c", "df -k /dev/shm | tail -1"},
			func(r testenv.Result) bool {
				f := strings.Fields(r.Stdout)
				return r.Code == 0 && len(f) > 1 && f[1] == "1024"
			}},
		{"read-only", []string{"--read-only", img, "sh", "-c", "touch /x; echo $?; touch /dev/shm/x /tmp/x 2>&1; echo done"},
			func(r testenv.Result) bool {
				return strings.HasPrefix(r.Stdout, "1\n") && strings.Contains(r.Stderr, "Read-only file system")
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := d.Docker(t, append([]string{"run", "--rm"}, c.args...)...)
			if !c.ok(r) {
				t.Errorf("code %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
			}
		})
	}
}
