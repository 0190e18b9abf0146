package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// A flood of output stays within --log-opt max-size × max-file, rotated
// as json-file names it, and --tail reads the end of it.
func TestLogRotation(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	start := time.Now()
	id := strings.TrimSpace(d.Docker(t, "run", "-d", "--name", name,
		"--log-opt", "max-size=100k", "--log-opt", "max-file=2", img,
		"sh", "-c", "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 80000; echo end1; echo end2; echo end3").Must(t).Stdout)
	t.Cleanup(func() { d.Docker(t, "rm", "-f", name) })
	if code := strings.TrimSpace(d.Docker(t, "wait", name).Must(t).Stdout); code != "0" {
		t.Fatalf("exit %s", code)
	}
	t.Logf("flood done after %v", time.Since(start))

	dir := filepath.Join(d.Root(), "containers", id)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	var total int64
	for _, e := range ents {
		if strings.Contains(e.Name(), "-json.log") {
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			logs = append(logs, e.Name())
			total += info.Size()
		}
	}
	slices.Sort(logs)
	if want := []string{id + "-json.log", id + "-json.log.1"}; !slices.Equal(logs, want) {
		t.Errorf("log files %v, want %v", logs, want)
	}
	// Each file passes 100 kB by at most one entry (≤ 32 KiB of output).
	if total > 2*(100_000+64<<10) {
		t.Errorf("logs take %d bytes", total)
	}

	if got := d.Docker(t, "logs", "--tail", "3", name).Must(t).Stdout; got != "end1\nend2\nend3\n" {
		t.Errorf("logs --tail 3: %q", got)
	}
	// What is kept reads back whole and in order, across the two files.
	all := d.Docker(t, "logs", name).Must(t).Stdout
	lines := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
	// About 1000 entries fill 100 kB: the current file and .1 hold more.
	if n := len(lines); n < 1000 || lines[n-1] != "end3" {
		t.Errorf("logs: %d lines, last %q", n, lines[n-1])
	}
	for i, l := range lines[:len(lines)-3] {
		if l != "0123456789abcdefghijklmnopqrstuvwxyz" {
			t.Fatalf("line %d: %q", i, l)
		}
	}

	var inspect []struct {
		LogPath    string
		HostConfig struct {
			LogConfig struct {
				Type   string
				Config map[string]string
			}
		}
	}
	if err := json.Unmarshal([]byte(d.Docker(t, "inspect", name).Must(t).Stdout), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	lc := inspect[0].HostConfig.LogConfig
	if lc.Type != "json-file" || len(lc.Config) != 2 || lc.Config["max-size"] != "100k" || lc.Config["max-file"] != "2" {
		t.Errorf("LogConfig %+v", lc)
	}
	if inspect[0].LogPath != filepath.Join(dir, id+"-json.log") {
		t.Errorf("LogPath %q", inspect[0].LogPath)
	}
}

// Bad --log-opt values are the client's error, in dockerd's words.
func TestLogOptsRejected(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	cases := []struct{ opt, msg string }{
		{"max-size=abc", "invalid size: 'abc'"},
		{"max-size=0", "max-size must be a positive number"},
		{"max-file=0", "max-file cannot be less than 1"},
		{"mode=non-blocking", "unknown log opt 'mode' for json-file log driver"},
		{"compress=true", "compress cannot be true when max-file is less than 2 or max-size is not set"},
	}
	for _, c := range cases {
		r := d.Docker(t, "create", "--log-opt", c.opt, img, "true").MustFail(t)
		if !strings.Contains(r.Stderr, c.msg) {
			t.Errorf("%s: stderr %q", c.opt, r.Stderr)
		}
	}
	k, v, _ := strings.Cut(cases[0].opt, "=")
	body := `{"Image":"` + img + `","Cmd":["true"],"HostConfig":{"LogConfig":{"Type":"json-file","Config":{"` + k + `":"` + v + `"}}}}`
	if code, _, resp := call(t, d, "POST", "/containers/create", body); code != 400 || !strings.Contains(resp, cases[0].msg) {
		t.Errorf("create: %d %s", code, resp)
	}
}

// The daemon's --log-opt values are defaults under a container's own, and
// inspect shows the merged result, as with daemon.json's log-opts.
func TestLogOptDaemonDefaults(t *testing.T) {
	d := testenv.StartDaemon(t, testenv.Options{Args: []string{"--log-opt", "max-size=50k", "--log-opt", "max-file=3"}})
	img := pulled(t, d)
	plain := testenv.Name(t, "plain")
	own := testenv.Name(t, "own")
	d.Docker(t, "create", "--name", plain, img, "true").Must(t)
	d.Docker(t, "create", "--name", own, "--log-opt", "max-file=5", img, "true").Must(t)
	for name, want := range map[string]string{plain: `{"max-file":"3","max-size":"50k"}`, own: `{"max-file":"5","max-size":"50k"}`} {
		got := strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}", name).Must(t).Stdout)
		if got != "json-file "+want {
			t.Errorf("%s: %s", name, got)
		}
	}
}

// logs -f joins what the rotated files hold to what comes live, each line
// once, while the log rotates under it.
func TestLogFollowAcrossRotation(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	name := testenv.Name(t)
	d.Docker(t, "run", "-d", "--name", name, "--log-opt", "max-size=1k", "--log-opt", "max-file=5", img,
		"sh", "-c", "i=0; while [ $i -lt 40 ]; do echo $i; i=$((i+1)); sleep 0.05; done").Must(t)
	t.Cleanup(func() { d.Docker(t, "rm", "-f", name) })
	time.Sleep(time.Second)
	got := d.Docker(t, "logs", "-f", name).Must(t).Stdout
	var want strings.Builder
	for i := range 40 {
		want.WriteString(strconv.Itoa(i) + "\n")
	}
	if got != want.String() {
		t.Errorf("logs -f: %q", got)
	}
}
