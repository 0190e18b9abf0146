package crosscheck

import (
	"errors"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// moduleRoot is the repository's root (go env GOMOD's directory).
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// goTool is the go command running the test (its GOROOT), else PATH's.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestDarwinBuildTypeChecks checks what a Mac builds: every package of
// the module that has files for darwin (the vz driver, the daemon, the
// test harness the integration suite runs there), function bodies and
// in-package tests too.
func TestDarwinBuildTypeChecks(t *testing.T) {
	root := moduleRoot(t)
	start := time.Now()
	c := New("darwin", "arm64", root, goTool())
	c.Bodies = func(path string) bool { return strings.HasPrefix(path, "github.com/arcavm/arca/") }
	list := exec.Command(goTool(), "list", "./...")
	list.Dir, list.Env = root, c.env()
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if err := c.Load(pkgs...); err != nil {
		t.Fatal(err)
	}
	checked := map[string]bool{}
	for _, p := range pkgs {
		dir := filepath.Join(root, strings.TrimPrefix(p, "github.com/arcavm/arca"))
		// With its tests: a Mac runs them (make test).
		for _, err := range c.CheckTests(p, dir) {
			var noGo *build.NoGoError
			if errors.As(err, &noGo) {
				continue // a Linux-only package (the agent): nothing for a Mac to build
			}
			t.Errorf("darwin/arm64: %v", err)
		}
		checked[p] = true
	}
	for _, must := range []string{"github.com/arcavm/arca/guest/vm/vz", "github.com/arcavm/arca/cmd/arca", "github.com/arcavm/arca/internal/testenv"} {
		if !checked[must] {
			t.Errorf("%s was not checked", must)
		}
	}
	for _, err := range c.DependencyErrors() {
		t.Errorf("darwin/arm64, in a dependency: %v", err)
	}
	t.Logf("checked %d packages in %s", len(pkgs), time.Since(start).Round(time.Millisecond))
}

// The checker must fail where a Mac's compiler would: a wrong call into
// vz, and a Linux-only field of the standard library (so the standard
// library really is darwin's).
func TestCatchesDarwinErrors(t *testing.T) {
	root := moduleRoot(t)
	c := New("darwin", "arm64", root, goTool())
	if err := c.Load("github.com/Code-Hex/vz/v3", "syscall"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		src  string
		want []string // each in some error
	}{
		{"right", `package p

import vz "github.com/Code-Hex/vz/v3"

func f() error {
	boot, err := vz.NewLinuxBootLoader("Image", vz.WithCommandLine("console=hvc0"))
	if err != nil {
		return err
	}
	_, err = vz.NewVirtualMachineConfiguration(boot, 1, 512<<20)
	return err
}
`, nil},
		{"wrong argument type", `package p

import vz "github.com/Code-Hex/vz/v3"

func f() {
	vz.NewVirtualMachineConfiguration("Image", 1, 512<<20)
}
`, []string{"p.go:6:36", "cannot use \"Image\""}},
		{"no such method", `package p

import vz "github.com/Code-Hex/vz/v3"

func f(m *vz.VirtualMachine) {
	m.Reboot()
}
`, []string{"p.go:6:4", "Reboot"}},
		{"linux-only field", `package p

import "syscall"

var a = syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
`, []string{"p.go:5:29", "Pdeathsig"}},
		{"darwin's build tags", `//go:build linux

package p

func f() { undefined() }
`, []string{"no buildable Go source files"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			errs := c.CheckDir("example.com/p", dir)
			if len(tc.want) == 0 {
				for _, err := range errs {
					t.Errorf("a right program: %v", err)
				}
				return
			}
			var all []string
			for _, err := range errs {
				all = append(all, err.Error())
			}
			joined := strings.Join(all, "\n")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("errors lack %q:\n%s", w, joined)
				}
			}
		})
	}
	if errs := c.DependencyErrors(); len(errs) > 0 {
		t.Errorf("vz v3.7.1 itself: %v", errs)
	}
}
