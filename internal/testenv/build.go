package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ModuleRoot returns the directory holding the module's go.mod, found by
// walking up from the working directory (a package's test binary runs in
// that package's directory).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working dir: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Binaries are the paths of the daemon and agent a test binary starts.
type Binaries struct {
	Arca  string // built with -race
	Agent string // static, CGO off, as it runs inside guests
}

var (
	buildOnce sync.Once
	buildBins Binaries
	buildErr  error
)

// Build returns the arca and arca-agent binaries, building them the first
// time it is called in this process. arca is built with -race so the
// end-to-end tests double as a race test of the daemon.
func Build(t testing.TB) Binaries {
	t.Helper()
	buildOnce.Do(func() { buildBins, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("testenv: %v", buildErr)
	}
	return buildBins
}

func build() (Binaries, error) {
	arca, agent := os.Getenv("ARCA_TEST_ARCA"), os.Getenv("ARCA_TEST_AGENT")
	if arca != "" && agent != "" {
		return Binaries{Arca: arca, Agent: agent}, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return Binaries{}, err
	}
	// One directory per checkout, reused across runs: the go build cache makes
	// a rebuild a relink, and a fixed place keeps /tmp from filling with
	// copies of a 50 MB binary. Test binaries of several packages may build
	// here at once, so each writes a private name and renames it into place.
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "arca-testenv-bin-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("create build dir: %w", err)
	}
	bins := Binaries{Arca: arca, Agent: agent}
	if bins.Arca == "" {
		bins.Arca = filepath.Join(dir, "arca")
		// -race needs cgo whatever the caller's environment says.
		if err := goBuild(root, bins.Arca, "./cmd/arca", []string{"CGO_ENABLED=1"}, "-race"); err != nil {
			return Binaries{}, err
		}
		if err := sign(root, bins.Arca); err != nil {
			return Binaries{}, err
		}
	}
	if bins.Agent == "" {
		bins.Agent = filepath.Join(dir, "arca-agent")
		// The agent runs in a Linux guest of the host's architecture
		// (linux/arm64 on a Mac).
		if err := goBuild(root, bins.Agent, "./cmd/arca-agent", []string{"CGO_ENABLED=0", "GOOS=linux"}); err != nil {
			return Binaries{}, err
		}
	}
	return bins, nil
}

func goBuild(root, out, pkg string, env []string, flags ...string) error {
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	// -buildvcs=false: VCS stamping fails in checkouts git won't read (other
	// owners, worktrees mid-rebase) and the tests don't need it.
	args := append([]string{"build", "-buildvcs=false", "-o", tmp}, flags...)
	args = append(args, pkg)
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var out2 bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out2, &out2
	start := time.Now()
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(out2.String()))
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("install %s: %w", out, err)
	}
	if d := time.Since(start); d > 20*time.Second {
		fmt.Fprintf(os.Stderr, "testenv: built %s in %s\n", pkg, d.Round(time.Second))
	}
	return nil
}

// GoTool is the go command tests should run (see goTool).
func GoTool() string { return goTool() }

// goTool finds the go command: the one that runs `go test` puts its GOROOT
// in the environment of the test binary, which beats whatever is on PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}
