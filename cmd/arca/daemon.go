package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/arcavm/arca/actors"
	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/underlay"
	"github.com/arcavm/arca/httpfront"
	"github.com/arcavm/arca/internal/gateway"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/blobs"
	"github.com/arcavm/arca/persistence/containerlog"
	"github.com/arcavm/arca/persistence/layers"
	"github.com/arcavm/arca/ui"
)

func runDaemon(args []string) error {
	// Descriptors the daemon inherited must not reach its machines.
	markInheritedCloseOnExec()
	fs := newFlags("daemon")
	paths := defaultPaths()
	socket := fs.String("socket", paths.socket, "unix socket to serve the Docker API on")
	root := fs.String("root", paths.root, "state directory")
	driverName := fs.String("driver", "auto", "guest driver: auto, sandbox, qemu or vz")
	agent := fs.String("agent", "", "path of arca-agent (default: beside this binary)")
	kit := fs.String("kit", paths.kit, "qemu and vz drivers: guest kit directory ("+paths.kitHow+")")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	underlayKind := fs.String("underlay", underlayAuto, "what joins the machines' network cards: auto (the user-space switch where the driver takes it: qemu, vz; else a kernel bridge), switch or bridge")
	coldBoot := fs.Bool("cold-boot", false, "qemu driver: boot every VM from its kernel, never from a snapshot of a booted VM of its shape (docs/qemu.md)")
	debug := fs.Bool("debug", false, "serve Go's profiles at /debug/pprof/ on the socket")
	uiAddr := fs.String("ui", "", "serve the live page of the actor tree on this loopback address (127.0.0.1:PORT); off if empty")
	var resolvers []string
	fs.Func("dns", "resolver (ip[:port]) for names the containers' DNS does not know; repeatable (default: the host's /etc/resolv.conf)", func(v string) error {
		r, err := gateway.ParseResolver(v)
		if err == nil {
			resolvers = append(resolvers, r)
		}
		return err
	})
	logOpts := map[string]string{}
	fs.Func("log-opt", "default option of the json-file log driver (key=value, e.g. max-size=10m, max-file=3); repeatable; a container's own --log-opt wins", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value, got %q", v)
		}
		logOpts[k] = val
		return nil
	})
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "arca daemon: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return errUsage
	}
	// A page for everyone on the network would be a remote control of
	// the engine: refuse before anything starts.
	if *uiAddr != "" {
		if _, err := ui.CheckAddr(*uiAddr); err != nil {
			return err
		}
	}
	// Bad defaults would fail every create: refuse them now, as dockerd
	// refuses a daemon.json with bad log-opts.
	if _, err := containerlog.ParseOptions(logOpts); err != nil {
		return fmt.Errorf("--log-opt: %w", err)
	}
	if len(resolvers) == 0 {
		resolvers = gateway.HostResolvers("/etc/resolv.conf")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if *agent == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find arca-agent: %w", err)
		}
		*agent = filepath.Join(filepath.Dir(exe), "arca-agent")
	}
	if _, err := os.Stat(*agent); err != nil {
		return fmt.Errorf("arca-agent: %w (build it with make build, or pass --agent)", err)
	}
	driver, note, err := selectDriver(*driverName, driverOptions{Agent: *agent, Kit: *kit, Root: *root, ColdBoot: *coldBoot, Log: log})
	if err != nil {
		return err
	}
	// The underlay carries WireGuard between machines, and the gateways
	// listen on it. Without it the daemon still runs containers, just
	// without network interfaces.
	var pool *underlay.Pool
	var newGateway func(netip.Addr) (*gateway.Gateway, error)
	ul, err := attachUnderlay(*underlayKind, driver, log)
	if err != nil {
		return err
	}
	if ul != nil {
		defer ul.close()
		log.Info("underlay", "kind", ul.kind)
		pool = underlay.NewPool(underlay.DefaultPrefix)
		newGateway = func(addr netip.Addr) (*gateway.Gateway, error) {
			return gateway.New(gateway.Config{Address: addr, Listen: ul.listen, Resolvers: resolvers, Log: log})
		}
	}

	for _, d := range []string{"db", "blobs", "layers", "containers", "builds"} {
		if err := os.MkdirAll(filepath.Join(*root, d), 0o700); err != nil {
			return fmt.Errorf("prepare %s: %w", *root, err)
		}
	}
	// Listen first (or take systemd's socket): a second daemon on the
	// same socket must fail before it touches the store.
	ln, activated, err := listen(*socket, log)
	if err != nil {
		return err
	}
	if !activated {
		// Ours to remove; systemd's socket outlives the daemon.
		defer os.Remove(*socket)
	}
	var page *ui.Page
	if *uiAddr != "" {
		if page, err = ui.Listen(*uiAddr); err != nil {
			ln.Close()
			return err
		}
		defer page.Shutdown()
	}
	store, err := persistence.OpenStore(filepath.Join(*root, "db"), false, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer store.Close()
	// The store's lock makes the root ours: what a killed daemon left
	// mounted there can go.
	if err := releaseStale(*root); err != nil {
		log.Warn("release stale block volume mounts", "err", err)
	}
	if err := prepareScratch(*root); err != nil {
		return err
	}
	blobStore, err := blobs.Open(filepath.Join(*root, "blobs"))
	if err != nil {
		return err
	}
	layerStore, err := layers.Open(filepath.Join(*root, "layers"))
	if err != nil {
		return err
	}
	sys, err := actors.Start(&actors.Env{
		Root:     *root,
		Store:    store,
		Blobs:    blobStore,
		Layers:   layerStore,
		Driver:   driver,
		Log:      log,
		Underlay: pool,
		Gateway:  newGateway,
		LogOpts:  logOpts,
	})
	if err != nil {
		return err
	}
	srv := httpfront.New(sys, httpfront.Info{
		Version: version, GitCommit: gitCommit, Driver: driver.Name(), DriverNote: note, BootMode: bootMode(driver), GuestKernel: vm.GuestKernel(driver), Underlay: ul.name(), Root: *root, Debug: *debug,
	}, log)
	// Without BuildKit, builds still go through the classic builder.
	if bk, err := startBuildKit(context.Background(), *root, sys, blobStore, log); err != nil {
		log.Warn("BuildKit unavailable: docker build uses the classic builder", "err", err)
	} else {
		defer bk.Close()
		srv.UseBuildKit(bk)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("arca daemon serving", "socket", ln.Addr().String(), "root", *root, "driver", driver.Name(), "version", version, "socket_activated", activated)
	if page != nil {
		page.Serve(sys, log)
		log.Info("live page", "url", "http://"+page.Addr()+"/")
	}
	notifyReady(log, fmt.Sprintf("serving the Docker API on %s with driver %s", ln.Addr().String(), driver.Name()))

	var serveErr error
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case err := <-errc:
		log.Error("serve", "err", err)
		// A failure exit, so that systemd's Restart=on-failure (and
		// launchd's KeepAlive) bring the daemon back.
		serveErr = fmt.Errorf("serve: %w", err)
	}
	notifyStopping(log)
	if page != nil {
		page.Shutdown() // its streams watch the tree
	}
	// Stop accepting, stop the tree (machines die, streams end), then give
	// requests in flight a moment to finish writing.
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(3 * time.Second) }()
	sys.Stop()
	if err := <-shut; err != nil {
		log.Warn("http shutdown", "err", err)
	}
	// The machines are gone with the tree: so can what held their cgroups.
	if err := releaseOnStop(*root); err != nil {
		log.Warn("release the machines' cgroup group", "err", err)
	}
	log.Info("stopped")
	return serveErr
}

// prepareScratch empties the daemon's temporary directory and the build
// steps' state (what a killed daemon left) and makes the temporary
// directory TMPDIR, as dockerd does: BuildKit mounts snapshots in
// temporary directories, which must be on the root to be found again.
func prepareScratch(root string) error {
	for _, d := range []string{"tmp", "builds"} {
		dir := filepath.Join(root, d)
		// Never remove through a mount: that would empty a snapshot.
		if err := releaseStaleMounts(dir); err != nil {
			return fmt.Errorf("clear %s: %w", dir, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("clear %s: %w", dir, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("prepare %s: %w", dir, err)
		}
	}
	return os.Setenv("TMPDIR", filepath.Join(root, "tmp"))
}

// buildKitEngine is the daemon's BuildKit, closed at shutdown.
type buildKitEngine interface {
	httpfront.BuildKit
	Close() error
}

// bootMode is how the driver's VMs boot, for docker info.
func bootMode(d vm.Driver) string {
	if b, ok := d.(interface{ BootMode() string }); ok {
		return b.BootMode()
	}
	return ""
}

// driverOptions are the daemon's flags that set up a guest driver.
type driverOptions struct {
	Agent, Kit, Root string
	ColdBoot         bool // qemu: no templates
	Log              *slog.Logger
}
