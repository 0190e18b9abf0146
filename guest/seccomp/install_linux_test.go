package seccomp

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/prereq"
	"golang.org/x/sys/unix"
)

// childEnv makes the test binary, re-executed, install filters in itself
// (TestMain) instead of running tests: a filter cannot be taken off again.
const childEnv = "ARCA_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child installs Docker's default profile (default capabilities) and the
// Boundary, then reports how some syscalls fare, one "name=errno" a line.
func child() int {
	// A thread that exists before Install: TSYNC must reach it too.
	before := make(chan func() error)
	result := make(chan error)
	go func() {
		runtime.LockOSThread()
		for f := range before {
			result <- f()
		}
	}()
	before <- func() error { return nil }
	<-result

	f, err := defaultProfile(dockerCaps)
	if err == nil {
		err = Install(f)
	}
	if err == nil {
		err = Install(Boundary())
	}
	if err != nil {
		fmt.Println("install:", err)
		return 1
	}

	report := func(name string, err error) {
		var errno unix.Errno
		switch {
		case err == nil:
			fmt.Printf("%s=ok\n", name)
		case errors.As(err, &errno):
			fmt.Printf("%s=%s\n", name, unix.ErrnoName(errno))
		default:
			fmt.Printf("%s=%v\n", name, err)
		}
	}
	report("unshare", unix.Unshare(unix.CLONE_NEWUSER))
	report("umount2", unix.Unmount("/nonexistent-arca-seccomp-test", 0))
	report("keyctl", func() error { _, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_PROCESS_KEYRING, false); return err }())
	_, err = os.Getwd()
	report("getcwd", err)
	before <- func() error { return unix.Unshare(unix.CLONE_NEWUSER) }
	report("unshare-other-thread", <-result)
	out, err := exec.Command("grep", "^Seccomp:", "/proc/self/status").Output()
	report("exec", err)
	fmt.Printf("after-exec=%s\n", strings.Join(strings.Fields(string(out)), ""))
	return 0
}

func TestInstall(t *testing.T) {
	if _, err := exec.LookPath("grep"); err != nil {
		prereq.Missing(t, "no grep to exec")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			got[k] = v
		}
	}
	want := map[string]string{
		"unshare":              "EPERM",
		"umount2":              "EPERM",
		"keyctl":               "EPERM",
		"getcwd":               "ok",
		"unshare-other-thread": "EPERM",
		"exec":                 "ok",
		// 2 is SECCOMP_MODE_FILTER: execve keeps the filters.
		"after-exec": "Seccomp:2",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q (child said:\n%s)", k, got[k], v, out)
		}
	}
}
