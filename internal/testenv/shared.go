package testenv

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// Shared resources live for the whole test binary: started by the first test
// that asks, stopped by Main after the last one.
var shared struct {
	mu         sync.Mutex
	mainActive bool
	dirs       []string

	registryOnce sync.Once
	registry     *RegistryServer
	registryErr  error

	busyboxOnce sync.Once
	busybox     Pushed
	busyboxErr  error

	customOnce sync.Once
	custom     Pushed
	customErr  error

	daemonOnce sync.Once
	daemon     *Daemon
	daemonErr  error
	reported   map[int]bool // log offsets of problems already blamed on a test
}

// Main runs the package's tests and then stops the shared registry and
// daemon, failing the run if the daemon's log shows a data race or a panic
// no test was blamed for. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.mainActive = true
	shared.mu.Unlock()
	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func requireMain(t testing.TB) {
	t.Helper()
	shared.mu.Lock()
	active := shared.mainActive
	shared.mu.Unlock()
	if !active {
		t.Fatal("testenv: shared resources need `func TestMain(m *testing.M) { testenv.Main(m) }` in this package, which stops them")
	}
}

func sharedDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	shared.mu.Lock()
	shared.dirs = append(shared.dirs, dir)
	shared.mu.Unlock()
	return dir, nil
}

// SharedRegistry is Registry, shared by the tests of the package.
func SharedRegistry(t testing.TB) string {
	t.Helper()
	RequireTool(t, "docker-registry")
	requireMain(t)
	shared.registryOnce.Do(func() {
		dir, err := sharedDir("arca-registry-")
		if err != nil {
			shared.registryErr = err
			return
		}
		shared.registry, shared.registryErr = startRegistry(dir, "")
	})
	if shared.registryErr != nil {
		t.Fatalf("testenv: shared registry: %v", shared.registryErr)
	}
	return shared.registry.Addr
}

// SharedBusybox is PushBusyboxImage into the shared registry, done once.
func SharedBusybox(t testing.TB) Pushed {
	t.Helper()
	reg := SharedRegistry(t)
	shared.busyboxOnce.Do(func() { shared.busybox, shared.busyboxErr = pushBusybox(reg) })
	if shared.busyboxErr != nil {
		t.Fatalf("testenv: shared busybox: %v", shared.busyboxErr)
	}
	return shared.busybox
}

// SharedBusyboxCustom is PushBusyboxCustomImage into the shared registry,
// done once.
func SharedBusyboxCustom(t testing.TB) Pushed {
	t.Helper()
	reg := SharedRegistry(t)
	shared.customOnce.Do(func() { shared.custom, shared.customErr = pushBusyboxCustom(reg) })
	if shared.customErr != nil {
		t.Fatalf("testenv: shared busybox-custom: %v", shared.customErr)
	}
	return shared.custom
}

// SharedDaemon is a daemon with default Options shared by the tests of the
// package. Don't Kill9 or Restart it; start your own for that. A data race or
// panic the daemon logs while a test runs fails that test; one logged
// between tests fails the run in Main.
func SharedDaemon(t testing.TB) *Daemon {
	t.Helper()
	requireDriver(t, DefaultDriver())
	RequireTool(t, "docker")
	requireMain(t)
	bins := Build(t)
	shared.daemonOnce.Do(func() {
		dir, err := sharedDir("arca-")
		if err != nil {
			shared.daemonErr = err
			return
		}
		d, err := newDaemon(bins, Options{}, dir)
		if err != nil {
			shared.daemonErr = err
			return
		}
		if err := d.start(); err != nil {
			shared.daemonErr = err
			return
		}
		shared.daemon = d
	})
	if shared.daemonErr != nil {
		t.Fatalf("testenv: shared daemon: %v", shared.daemonErr)
	}
	d := shared.daemon
	if d.Stopped() {
		t.Fatalf("testenv: the shared daemon has exited; its log:\n%s", tail(d.Log(), 8000))
	}
	from := len(d.Log())
	t.Cleanup(func() {
		if err := blame(d.Log(), from); err != nil {
			t.Error(err)
		}
	})
	return d
}

// blame reports the first race or panic in log after from that no test was
// blamed for yet.
func blame(log string, from int) error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, loc := range uncleanLog.FindAllStringIndex(log, -1) {
		if loc[0] < from || shared.reported[loc[0]] || knownUpstreamRace(log[loc[0]:]) {
			continue
		}
		if shared.reported == nil {
			shared.reported = map[int]bool{}
		}
		shared.reported[loc[0]] = true
		return uncleanError(log, loc[0])
	}
	return nil
}

func stopShared() error {
	var errs []error
	if d := shared.daemon; d != nil {
		if d.client != nil {
			_ = d.client.Close()
		}
		if err := d.stop(); err != nil {
			errs = append(errs, err)
		}
		if err := blame(d.Log(), 0); err != nil {
			errs = append(errs, fmt.Errorf("shared daemon, between tests: %w", err))
		}
	}
	if r := shared.registry; r != nil {
		r.stop()
	}
	if os.Getenv("ARCA_TEST_KEEP") == "" {
		for _, dir := range shared.dirs {
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("testenv: remove %s: %w", dir, err))
			}
		}
	}
	return errors.Join(errs...)
}
