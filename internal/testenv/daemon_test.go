package testenv

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// The harness is tested against a stand-in daemon: this test binary run
// again with fakeDaemonEnv set, serving just enough of the Engine API for
// the CLI's `version` and `ps`. The real daemon's tests live in cmd/arca.
const fakeDaemonEnv = "ARCA_TESTENV_FAKE_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(fakeDaemonEnv) == "1" {
		os.Exit(fakeDaemon(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeDaemon(args []string) int {
	if len(args) == 0 || args[0] != "daemon" {
		fmt.Fprintf(os.Stderr, "fake daemon: want `daemon ...`, got %q\n", args)
		return 2
	}
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	fs.String("root", "", "")
	fs.String("driver", "", "")
	agent := fs.String("agent", "", "")
	fs.String("dns", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	fmt.Fprintf(os.Stderr, "fake daemon: agent=%s args=%q\n", *agent, args)
	// A crashed predecessor leaves its socket behind.
	_ = os.Remove(*socket)
	l, err := net.Listen("unix", *socket)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fake daemon: %v\n", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.50")
		w.Header().Set("Ostype", "linux")
		fmt.Fprint(w, "OK")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if i := strings.Index(path[1:], "/"); strings.HasPrefix(path, "/v1.") && i > 0 {
			path = path[i+1:]
		}
		switch path {
		case "/version":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{
				"Version": "fake", "ApiVersion": "1.50", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64",
			})
		case "/containers/json":
			if os.Getenv("FAKE_HANG") == "1" {
				<-r.Context().Done()
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, "[]")
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"message":"page not found: %s"}`, r.URL.Path)
		}
	})
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() { _ = http.Serve(l, mux) }()
	<-term
	if os.Getenv("FAKE_RACE") == "1" {
		fmt.Fprint(os.Stderr, "==================\nWARNING: DATA RACE\nWrite at 0x00c0000a0 by goroutine 7:\n")
	}
	fmt.Fprintln(os.Stderr, "fake daemon: bye")
	return 0
}

func startFake(t *testing.T, opts Options) *Daemon {
	t.Helper()
	RequireTool(t, "docker")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	opts.Env = append(opts.Env, fakeDaemonEnv+"=1")
	d, err := newDaemon(Binaries{Arca: self, Agent: "/bin/true"}, opts, tempDir(t, "arca-fake-"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.stop() })
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDaemonHarness(t *testing.T) {
	d := startFake(t, Options{Env: []string{"FAKE_HANG=1"}})
	if !strings.Contains(d.Log(), "agent=/bin/true") {
		t.Errorf("daemon not given --agent; log:\n%s", d.Log())
	}
	if !strings.HasPrefix(d.Host(), "unix:///") || !strings.HasSuffix(d.Host(), d.Socket()) {
		t.Errorf("Host %q for socket %q", d.Host(), d.Socket())
	}

	res := d.Docker(t, "version", "--format", "{{.Server.Version}}").Must(t)
	if res.Stdout != "fake\n" {
		t.Errorf("docker version: %q", res.Stdout)
	}
	// The private DOCKER_CONFIG still finds the user's plugins.
	if home, err := os.UserHomeDir(); err == nil {
		if _, err := os.Stat(home + "/.docker/cli-plugins/docker-compose"); err == nil {
			res = d.Docker(t, "compose", "version").Must(t)
			if !strings.Contains(res.Stdout, "Docker Compose version") {
				t.Errorf("docker compose version: %q", res.Stdout)
			}
		}
	}
	res = d.Docker(t, "no-such-command-here")
	if res.Code == 0 || res.TimedOut {
		t.Errorf("bad command: %+v", res)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := d.Client(t).ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil || v.Version != "fake" {
		t.Errorf("client: version %q, err %v", v.Version, err)
	}

	// A hung request must come back at the deadline, not hang the test.
	start := time.Now()
	res = d.DockerCmd(t, Cmd{Timeout: 2 * time.Second}, "ps")
	if !res.TimedOut || res.Code != -1 {
		t.Errorf("hung ps: %+v", res)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("hung ps took %s to give up", took)
	}

	d.Kill9(t)
	if !d.Stopped() {
		t.Fatal("still running after Kill9")
	}
	d.Restart(t)
	if d.Stopped() {
		t.Fatal("not running after Restart")
	}
	d.Docker(t, "version").Must(t)
	if n := strings.Count(d.Log(), "=== testenv: starting daemon"); n != 2 {
		t.Errorf("log shows %d starts, want 2", n)
	}
}

func TestDaemonLogCheck(t *testing.T) {
	d := startFake(t, Options{Env: []string{"FAKE_RACE=1"}})
	err := d.shutdown()
	if err == nil || !strings.Contains(err.Error(), "DATA RACE") {
		t.Fatalf("shutdown after a race: %v", err)
	}
	if !d.Stopped() {
		t.Fatal("still running after shutdown")
	}

	d = startFake(t, Options{Env: []string{"FAKE_RACE=1"}, AllowUnclean: true})
	if err := d.shutdown(); err != nil {
		t.Fatalf("AllowUnclean: %v", err)
	}
}

func TestDaemonStartFailure(t *testing.T) {
	// A daemon that exits at once must fail the start at once, not after
	// the /_ping deadline.
	d, err := newDaemon(Binaries{Arca: "/bin/false", Agent: "/bin/true"}, Options{StartTimeout: 20 * time.Second}, tempDir(t, "arca-fake-"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = d.start()
	if err == nil {
		_ = d.stop()
		t.Fatal("start succeeded")
	}
	if !strings.Contains(err.Error(), "exited before answering") || time.Since(start) > 10*time.Second {
		t.Errorf("start error after %s: %v", time.Since(start), err)
	}
}

// A known upstream race passes the log check; one in our code, or one
// sharing only a frame with a known one, does not.
func TestKnownUpstreamRace(t *testing.T) {
	report := func(first, second string) string {
		return "WARNING: DATA RACE\nWrite at 0x00c00013c090 by goroutine 233:\n  " + first + "\n      /x.go:30 +0x64\n\nPrevious write at 0x00c00013c090 by goroutine 232:\n  " + second + "\n      /x.go:30 +0x64\n==================\n"
	}
	known := knownUpstreamRaces[0]
	ours := "github.com/arcavm/arca/actors.(*containerActor).start()"
	for _, tc := range []struct {
		log  string
		want bool
	}{
		{report(known, known), true},
		{report(ours, ours), false},
		{report(known, ours), false},
		{"panic: boom\n", false},
	} {
		if err := checkLog("start\n" + tc.log); (err == nil) != tc.want {
			t.Errorf("checkLog(%q) = %v, want clean %v", tc.log, err, tc.want)
		}
	}
}
