package main

import (
	"encoding/xml"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// TestHelp: arca --help lists every command; each command's -h says what
// it does and exits 0; an unknown command or flag is a usage error (2).
func TestHelp(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"--help"}, &out, &errOut); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(out.String(), "  "+c.name+" ") {
			t.Errorf("--help does not list %s:\n%s", c.name, out.String())
		}
	}
	if code := run(nil, io.Discard, io.Discard); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	if code := run([]string{"frobnicate"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}

	arca := testenv.Build(t).Arca
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "-h"}, {"help", c.name}} {
			b, err := exec.Command(arca, args...).CombinedOutput()
			if err != nil {
				t.Errorf("arca %s: %v\n%s", strings.Join(args, " "), err, b)
				continue
			}
			if !strings.Contains(string(b), "usage: arca "+c.name) || !strings.Contains(string(b), strings.Split(c.about, "\n")[0]) {
				t.Errorf("arca %s says:\n%s", strings.Join(args, " "), b)
			}
		}
	}
	b, _ := exec.Command(arca, "daemon", "-h").CombinedOutput()
	for _, flag := range []string{"-socket", "-root", "-driver", "-ui"} {
		if !strings.Contains(string(b), flag) {
			t.Errorf("arca daemon -h does not show %s", flag)
		}
	}
	cmd := exec.Command(arca, "daemon", "--no-such-flag")
	if err := cmd.Run(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
		t.Errorf("a bad flag: %v, want exit 2", err)
	}
}

// TestVersion: the Makefile stamps version, commit and build date, and
// arca version says all three.
func TestVersion(t *testing.T) {
	out, err := exec.Command("make", "--no-print-directory", "-n", "-C", testenv.ModuleRoot(t), "build", "COMMIT=c0ffee", "BUILD_DATE=2026-01-02T03:04:05Z", "VERSION=9.9.9").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	for _, want := range []string{"-X main.version=9.9.9", "-X main.gitCommit=c0ffee", "-X main.buildDate=2026-01-02T03:04:05Z", "CGO_ENABLED=0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make build does not pass %s:\n%s", want, out)
		}
	}
	old := [3]string{version, gitCommit, buildDate}
	defer func() { version, gitCommit, buildDate = old[0], old[1], old[2] }()
	version, gitCommit, buildDate = "9.9.9", "c0ffee", "2026-01-02T03:04:05Z"
	text := versionText()
	for _, want := range []string{"arca 9.9.9\n", "commit: c0ffee\n", "built:  2026-01-02T03:04:05Z\n", "go:     go1."} {
		if !strings.Contains(text, want) {
			t.Errorf("version text lacks %q:\n%s", want, text)
		}
	}
}

// TestNotify: READY=1 (with a status and the main PID) and STOPPING=1 reach
// NOTIFY_SOCKET; without it nothing happens.
func TestNotify(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("NOTIFY_SOCKET", "")
	notifyReady(log, "nowhere") // no socket: a no-op

	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	notifyReady(log, "serving")
	notifyStopping(log)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1024)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b[:n]); !strings.Contains(got, "READY=1\n") || !strings.Contains(got, "STATUS=serving") || !strings.Contains(got, "MAINPID=") {
		t.Fatalf("first notification %q", got)
	}
	n, err = c.Read(b)
	if err != nil || string(b[:n]) != "STOPPING=1" {
		t.Fatalf("second notification %q, %v", b[:n], err)
	}
}

// TestListenOwnSocket: without LISTEN_FDS the daemon makes its socket
// (0660), and says it is its own.
func TestListenOwnSocket(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	t.Setenv("LISTEN_PID", "")
	path := filepath.Join(t.TempDir(), "arca.sock")
	ln, activated, err := listen(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	st, err := os.Stat(path)
	if err != nil || activated || st.Mode().Perm() != 0o660 {
		t.Fatalf("own socket: activated %v, %v %v", activated, st, err)
	}
}

// TestLaunchdPlist: the macOS agent (not runnable here) is a well-formed
// plist that starts arca daemon on the socket make install's context
// names.
func TestLaunchdPlist(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "scripts/macos/dev.arca.daemon.plist"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	var strs []string
	var inString bool
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("plist: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			inString = tok.Name.Local == "string"
		case xml.EndElement:
			inString = false
		case xml.CharData:
			if inString {
				strs = append(strs, string(tok))
			}
		}
	}
	joined := strings.Join(strs, " ")
	for _, want := range []string{"dev.arca.daemon", "@PREFIX@/arca daemon --driver vz --socket @HOME@/.arca/arca.sock --root @HOME@/.arca/root"} {
		if !strings.Contains(joined, want) {
			t.Errorf("plist lacks %q: %s", want, joined)
		}
	}
}
