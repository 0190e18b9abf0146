package agent

import (
	"bytes"
	"context"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/sandbox"
	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/internal/prereq"
)

// The test binary doubles as the agent: booted by the sandbox driver under
// the name arca-agent it runs Run, so the agent itself runs under the race
// detector (which a CGO_ENABLED=0 build cannot) and a race makes it exit
// non-zero.
func TestMain(m *testing.M) {
	if IsStage() {
		RunStage()
	}
	if filepath.Base(os.Args[0]) == "arca-agent" {
		os.Exit(agentMain(os.Args[1:]))
	}
	// Stages must run once the agent pivoted away from the host's tree,
	// where this race-enabled (dynamically linked) binary's loader is
	// gone: they run the static agent, built beside it.
	if os.Geteuid() == 0 {
		build := exec.Command("go", "build", "-trimpath", "-o", stageBinary(), "github.com/arcavm/arca/cmd/arca-agent")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build static agent: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// stageBinary is where the static agent for stages lies: beside the test
// binary, which the agents it boots find from their own executable.
func stageBinary() string {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return filepath.Join(filepath.Dir(exe), "arca-agent-static")
}

func agentMain(args []string) int {
	fs := flag.NewFlagSet("arca-agent", flag.ContinueOnError)
	stream := fs.String("stream", "fd:3", "")
	runDir := fs.String("run-dir", DefaultRunDir, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := Run(context.Background(), Config{Stream: *stream, RunDir: *runDir, Stage: stageBinary()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestAgentUnderLoad(t *testing.T) {
	if os.Geteuid() != 0 {
		prereq.Missing(t, "needs root (namespaces, mounts)")
	}
	if f, err := elf.Open("/bin/busybox"); err != nil || f.Section(".interp") != nil {
		prereq.Missing(t, "needs a static /bin/busybox (Debian: busybox-static)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	layer := busyboxLayer(t, filepath.Join(dir, "layer"))
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	os.Mkdir(upper, 0o755)
	os.Mkdir(work, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	m, err := sandbox.New(self).Boot(ctx, vm.MachineSpec{
		ID: "load", StateDir: filepath.Join(dir, "state"), Layers: []string{layer}, UpperDir: upper, WorkDir: work,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	c, err := wire.NewClient(m.Conn())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Setup(ctx, wire.SetupRequest{Rootfs: m.Rootfs(), Hostname: "load"}); err != nil {
		t.Fatalf("setup: %v (%v)", err, m.Err())
	}
	env := []string{"PATH=/bin"}

	// The main process stays up until told; everything else runs beside it.
	mainProc, err := c.Start(ctx, wire.ProcessSpec{ID: "main", Main: true, Args: []string{"sh", "-c", "read x; sleep 100 & echo bye"}, Env: env, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loadOne(ctx, c, i, env); err != nil {
				errs <- fmt.Errorf("process %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A long exec that the main process's end must kill.
	long, err := c.Start(ctx, wire.ProcessSpec{ID: "long", Args: []string{"sleep", "100"}, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	long.Close()
	io.WriteString(mainProc.Stdin, "\n")
	out, _ := io.ReadAll(mainProc.Stdout)
	if st, err := mainProc.Wait(); err != nil || st.Code != 0 || string(out) != "bye\n" {
		t.Fatalf("main: %+v %v %q", st, err, out)
	}
	if st, err := long.Wait(); err != nil || st.Code != 137 {
		t.Fatalf("long exec after main: %+v %v", st, err)
	}
	if err := c.Shutdown(ctx); err != nil {
		<-m.Done()
		t.Fatalf("shutdown: %v; agent: %v\n%s", err, m.Err(), agentLog(dir))
	}
	<-m.Done()
	if err := m.Err(); err != nil {
		t.Fatalf("agent exit: %v\n%s", err, agentLog(dir))
	}
}

func agentLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "state", "agent.log"))
	return string(b)
}

// loadOne runs one of a few kinds of process and checks what it did.
func loadOne(ctx context.Context, c *wire.Client, i int, env []string) error {
	id := fmt.Sprintf("p%d", i)
	switch i % 4 {
	case 0: // output on both streams
		p, err := c.Start(ctx, wire.ProcessSpec{ID: id, Args: []string{"sh", "-c", "seq 1 20000; seq 1 100 >&2; exit 7"}, Env: env})
		if err != nil {
			return err
		}
		var out, errOut bytes.Buffer
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); io.Copy(&out, p.Stdout) }()
		go func() { defer wg.Done(); io.Copy(&errOut, p.Stderr) }()
		wg.Wait()
		st, err := p.Wait()
		if err != nil || st.Code != 7 || !strings.HasSuffix(out.String(), "\n20000\n") || !strings.HasSuffix(errOut.String(), "\n100\n") {
			return fmt.Errorf("seq: %+v %v, %d/%d bytes", st, err, out.Len(), errOut.Len())
		}
	case 1: // stdin round trip
		p, err := c.Start(ctx, wire.ProcessSpec{ID: id, Args: []string{"cat"}, Env: env, Stdin: true})
		if err != nil {
			return err
		}
		in := strings.Repeat("stdin data ", 30000)
		go func() { io.WriteString(p.Stdin, in); p.Stdin.Close() }()
		go io.Copy(io.Discard, p.Stderr)
		out, _ := io.ReadAll(p.Stdout)
		if st, err := p.Wait(); err != nil || st.Code != 0 || string(out) != in {
			return fmt.Errorf("cat: %+v %v, %d bytes", st, err, len(out))
		}
	case 2: // tty with resizes
		p, err := c.Start(ctx, wire.ProcessSpec{ID: id, Args: []string{"sh", "-c", "read x; stty size"}, Env: env, Tty: true, Stdin: true})
		if err != nil {
			return err
		}
		for h := uint16(10); h < 20; h++ {
			if err := c.Resize(ctx, id, h, 80); err != nil {
				return err
			}
		}
		io.WriteString(p.Stdin, "\n")
		out, _ := io.ReadAll(p.Stdout)
		if st, err := p.Wait(); err != nil || st.Code != 0 || !strings.Contains(string(out), "19 80") {
			return fmt.Errorf("tty: %+v %v %q", st, err, out)
		}
	case 3: // signalled
		p, err := c.Start(ctx, wire.ProcessSpec{ID: id, Args: []string{"sleep", "100"}, Env: env})
		if err != nil {
			return err
		}
		p.Close()
		if err := c.Signal(ctx, id, syscall.SIGKILL); err != nil {
			return err
		}
		if st, err := p.Wait(); err != nil || st.Code != 137 || st.Signal != 9 {
			return fmt.Errorf("kill: %+v %v", st, err)
		}
	}
	return nil
}

func busyboxLayer(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			os.Symlink("busybox", filepath.Join(dir, "bin", applet))
		}
	}
	return dir
}
