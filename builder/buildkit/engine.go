//go:build linux

// Package buildkit is BuildKit inside the daemon: the engine behind
// `docker build`'s default path, which the CLI and buildx reach through
// /grpc and /session as they reach dockerd's. Its worker keeps BuildKit's
// snapshots, content, cache and history under its own root; each RUN runs
// in a machine of the daemon's driver (Steps), never on the host; local
// images are FROM's first choice, and a finished image goes into the
// daemon's store (Images).
package buildkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/diff/apply"
	ctdmetadata "github.com/containerd/containerd/v2/core/metadata"
	ctdsnapshot "github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/containerd/v2/plugins/diff/walking"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/cache/metadata"
	"github.com/moby/buildkit/cache/remotecache"
	inlineremotecache "github.com/moby/buildkit/cache/remotecache/inline"
	localremotecache "github.com/moby/buildkit/cache/remotecache/local"
	registryremotecache "github.com/moby/buildkit/cache/remotecache/registry"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/frontend"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/frontend/gateway/forwarder"
	"github.com/moby/buildkit/session"
	containerdsnapshot "github.com/moby/buildkit/snapshot/containerd"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	"github.com/moby/buildkit/util/db/boltutil"
	"github.com/moby/buildkit/util/leaseutil"
	"github.com/moby/buildkit/util/resolver"
	resolverconfig "github.com/moby/buildkit/util/resolver/config"
	bkversion "github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"
	wlabel "github.com/moby/buildkit/worker/label"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
)

// snapshotterName is the one snapshotter: overlayfs on the host, as the
// sandbox driver already needs.
const snapshotterName = "overlayfs"

// Config is what the engine needs of the daemon.
type Config struct {
	Root   string // the engine's own directory (--root/buildkit)
	Steps  Steps
	Images Images
	Log    *slog.Logger
}

// Engine is the daemon's BuildKit: a controller with one worker, served
// over hijacked connections.
type Engine struct {
	controller *control.Controller
	sessions   *session.Manager
	server     *grpc.Server
	worker     *base.Worker
	log        *slog.Logger
	closeOnce  sync.Once
}

// New opens the engine's stores under cfg.Root and starts its controller.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("buildkit root: %w", err)
	}
	stampVersion()
	sessions, err := session.NewManager()
	if err != nil {
		return nil, fmt.Errorf("buildkit sessions: %w", err)
	}
	w, err := newWorker(ctx, cfg)
	if err != nil {
		return nil, err
	}
	wc := &worker.Controller{}
	if err := wc.Add(w); err != nil {
		return nil, fmt.Errorf("buildkit worker: %w", err)
	}
	frontends := map[string]frontend.Frontend{
		"dockerfile.v0": forwarder.NewGatewayForwarder(wc.Infos(), dockerfile.Build),
	}
	gw, err := gateway.NewGatewayFrontend(wc.Infos(), nil)
	if err != nil {
		return nil, fmt.Errorf("buildkit gateway frontend: %w", err)
	}
	frontends["gateway.v0"] = gw
	cacheStorage, err := bboltcachestorage.NewStore(filepath.Join(cfg.Root, "cache.db"))
	if err != nil {
		return nil, fmt.Errorf("buildkit cache: %w", err)
	}
	historyDB, err := boltutil.SafeOpen(filepath.Join(cfg.Root, "history.db"), 0o600, nil)
	if err != nil {
		return nil, fmt.Errorf("buildkit history: %w", err)
	}
	ctrl, err := control.NewController(control.Opt{
		SessionManager:   sessions,
		WorkerController: wc,
		Frontends:        frontends,
		CacheManager:     solver.NewCacheManager(ctx, "local", cacheStorage, worker.NewCacheResultStorage(wc)),
		// As dockerd's builder: the cache can be inlined in an image and
		// imported from a registry image or a local directory
		// (--cache-from); exporting it elsewhere is not offered.
		ResolveCacheExporterFuncs: map[string]remotecache.ResolveCacheExporterFunc{
			"inline": inlineremotecache.ResolveCacheExporterFunc(),
		},
		ResolveCacheImporterFuncs: map[string]remotecache.ResolveCacheImporterFunc{
			"registry": registryremotecache.ResolveCacheImporterFunc(sessions, w.ContentStore(), w.RegistryHosts),
			"local":    localremotecache.ResolveCacheImporterFunc(sessions),
		},
		// As dockerd by default: RUN --network=host may be asked for,
		// RUN --security=insecure (a privileged step) may not.
		Entitlements:   []string{"network.host"},
		HistoryDB:      historyDB,
		CacheStore:     cacheStorage,
		LeaseManager:   w.LeaseManager(),
		ContentStore:   w.ContentStore(),
		GarbageCollect: w.GarbageCollect,
	})
	if err != nil {
		return nil, fmt.Errorf("buildkit controller: %w", err)
	}
	srv := grpc.NewServer()
	ctrl.Register(srv)
	return &Engine{controller: ctrl, sessions: sessions, server: srv, worker: w.Worker, log: cfg.Log}, nil
}

// newWorker sets up BuildKit's stores the way its OCI worker does, with
// Arca's executor, local images and exporter in place of runc and a
// containerd image store.
func newWorker(ctx context.Context, cfg Config) (*arcaWorker, error) {
	root := filepath.Join(cfg.Root, "worker")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("buildkit worker: %w", err)
	}
	sn, err := overlay.NewSnapshotter(filepath.Join(root, "snapshots"), overlay.AsynchronousRemove)
	if err != nil {
		return nil, fmt.Errorf("buildkit snapshotter: %w", err)
	}
	contentStore, err := local.NewStore(filepath.Join(root, "content"))
	if err != nil {
		return nil, fmt.Errorf("buildkit content: %w", err)
	}
	db, err := bolt.Open(filepath.Join(root, "containerdmeta.db"), 0o644, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("buildkit metadata: %w", err)
	}
	mdb := ctdmetadata.NewDB(db, contentStore, map[string]ctdsnapshot.Snapshotter{snapshotterName: sn})
	if err := mdb.Init(ctx); err != nil {
		return nil, fmt.Errorf("buildkit metadata: %w", err)
	}
	cs := containerdsnapshot.NewContentStore(mdb.ContentStore(), "buildkit")
	id, err := base.ID(root)
	if err != nil {
		return nil, fmt.Errorf("buildkit worker id: %w", err)
	}
	md, err := metadata.NewStore(filepath.Join(root, "metadata_v2.db"))
	if err != nil {
		return nil, fmt.Errorf("buildkit cache metadata: %w", err)
	}
	hostname, _ := os.Hostname()
	lm := leaseutil.WithNamespace(ctdmetadata.NewLeaseManager(mdb), "buildkit")
	images := &localImages{images: cfg.Images, content: cs, leases: lm, log: cfg.Log}
	opt := base.WorkerOpt{
		ID:   id,
		Root: root,
		// No snapshotter label: buildx reads one as "the daemon stores
		// images in containerd", which this one does not.
		Labels: map[string]string{
			wlabel.Executor: "arca",
			wlabel.Hostname: hostname,
			wlabel.Network:  "host",
		},
		Platforms:       []ocispecs.Platform{platforms.Normalize(platforms.DefaultSpec())},
		BuildkitVersion: client.BuildkitVersion{Package: bkversion.Package, Version: bkversion.Version, Revision: bkversion.Revision},
		GCPolicy:        gcPolicy(root),
		MetadataStore:   md,
		ContentMetadata: db,
		Executor:        &stepExecutor{steps: cfg.Steps},
		Snapshotter:     containerdsnapshot.NewSnapshotter(snapshotterName, mdb.Snapshotter(snapshotterName), "buildkit", nil),
		ContentStore:    cs,
		Applier:         apply.NewFileSystemApplier(cs),
		Differ:          walking.NewWalkingDiff(cs),
		ImageStore:      images,
		RegistryHosts:   resolver.NewRegistryConfig(map[string]resolverconfig.RegistryConfig{}),
		LeaseManager:    lm,
		GarbageCollect:  mdb.GarbageCollect,
		MountPoolRoot:   filepath.Join(root, "cachemounts"),
	}
	w, err := base.NewWorker(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("buildkit worker: %w", err)
	}
	return &arcaWorker{Worker: w, images: cfg.Images, log: cfg.Log}, nil
}

// stampVersion sets BuildKit's version, which its own builds stamp at
// link time, from the module this binary was built with: buildx shows it.
func stampVersion() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	for _, m := range info.Deps {
		if m.Path == bkversion.Package {
			bkversion.Version = m.Version
		}
	}
}

// gcPolicy keeps the build cache within bounds BuildKit's own defaults
// would set: unused source and cache mounts go after two days, and all of
// it is trimmed to a tenth of the disk, at most 20 GB.
func gcPolicy(root string) []client.PruneInfo {
	keep := int64(20e9)
	if total, err := diskSize(root); err == nil && total/10 < keep {
		keep = total / 10
	}
	return []client.PruneInfo{
		{Filter: []string{"type==source.local,type==exec.cachemount,type==source.git.checkout"}, KeepDuration: 48 * time.Hour},
		{All: true, MaxUsedSpace: keep},
	}
}

// ServeConn serves BuildKit's gRPC API on c (a hijacked /grpc, speaking
// HTTP/2 without TLS) until the client closes it.
func (e *Engine) ServeConn(c net.Conn) {
	l := newConnListener(c)
	if err := e.server.Serve(l); err != nil && !errors.Is(err, errListenerDone) {
		e.log.Debug("buildkit grpc connection", "err", err)
	}
}

// ServeSession serves a client's session (a hijacked /session): the
// channel on which BuildKit reads the build context and secrets from the
// client and asks it for credentials.
func (e *Engine) ServeSession(ctx context.Context, c net.Conn, headers map[string][]string) error {
	return e.sessions.HandleConn(ctx, c, headers)
}

// Client is an in-process BuildKit client, for the Engine API's build
// cache requests (prune, disk usage).
func (e *Engine) Client(ctx context.Context) (*client.Client, error) {
	return client.New(ctx, "", client.WithContextDialer(func(context.Context, string) (net.Conn, error) {
		a, b := net.Pipe()
		go e.ServeConn(b)
		return a, nil
	}))
}

// Close stops serving and closes the stores.
func (e *Engine) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.server.Stop()
		err = errors.Join(e.controller.Close(), e.worker.Close())
	})
	return err
}
