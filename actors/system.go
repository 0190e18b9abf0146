package actors

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// System is the running tree, as httpfront sees it: where to send what.
type System struct {
	Actors     *actor.ActorSystem
	Root       *actor.RootContext
	Containers *actor.PID
	Images     *actor.PID
	Networks   *actor.PID
	Volumes    *actor.PID
	Registry   *actor.PID // introspection
	Events     *actor.PID
	DiskUsage  *actor.PID
	Builds     *actor.PID // BuildKit's steps
	root       *actor.PID
}

// rootSupervisor is the top of the tree. Its children are the per-kind
// supervisors; a failing one is restarted alone, a bounded number of times.
type rootSupervisor struct {
	env *Env
}

func (r *rootSupervisor) Kind() string  { return "root" }
func (r *rootSupervisor) State() string { return "running" }

func (r *rootSupervisor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *ready:
		ctx.Respond(&ready{})
	case *actor.Started:
		env := r.env
		ev, err := ctx.SpawnNamed(env.props(newEventsActor), "events")
		if err != nil {
			panic(fmt.Sprintf("spawn events: %v", err))
		}
		env.events = ev
		// Images first: containers ask it at create.
		img, err := ctx.SpawnNamed(env.props(newImagesActor(env)), "images")
		if err != nil {
			panic(fmt.Sprintf("spawn images: %v", err))
		}
		env.images = img
		vols, err := ctx.SpawnNamed(env.props(newVolumesActor(env)), "volumes")
		if err != nil {
			panic(fmt.Sprintf("spawn volumes: %v", err))
		}
		env.volumes = vols
		// Networks before containers: restored containers join them.
		nets, err := ctx.SpawnNamed(env.props(newNetworksSupervisor(env),
			actor.WithSupervisor(actor.NewOneForOneStrategy(10, time.Minute, actor.DefaultDecider))), "networks")
		if err != nil {
			panic(fmt.Sprintf("spawn networks: %v", err))
		}
		env.networks = nets
		ctrs, err := ctx.SpawnNamed(env.props(newContainersSupervisor(env),
			actor.WithSupervisor(actor.NewOneForOneStrategy(10, time.Minute, actor.DefaultDecider))), "containers")
		if err != nil {
			panic(fmt.Sprintf("spawn containers: %v", err))
		}
		env.containers = ctrs
		du, err := ctx.SpawnNamed(env.props(newDiskUsageActor(env)), "disk-usage")
		if err != nil {
			panic(fmt.Sprintf("spawn disk-usage: %v", err))
		}
		env.diskUsage = du
		builds, err := ctx.SpawnNamed(env.props(newBuildsSupervisor(env)), "builds")
		if err != nil {
			panic(fmt.Sprintf("spawn builds: %v", err))
		}
		env.builds = builds
	}
}

// Start builds the tree and returns once the per-kind supervisors exist.
func Start(env *Env) (*System, error) {
	log := env.Log
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return log.With("component", "actor")
	}))
	reg, err := sys.Root.SpawnNamed(actor.PropsFromProducer(newIntrospection), "introspection")
	if err != nil {
		return nil, fmt.Errorf("spawn introspection: %w", err)
	}
	env.registry = reg
	props := env.props(func() actor.Actor { return &rootSupervisor{env: env} },
		actor.WithSupervisor(actor.NewOneForOneStrategy(10, time.Minute, actor.DefaultDecider)))
	root, err := sys.Root.SpawnNamed(props, "arca")
	if err != nil {
		return nil, fmt.Errorf("spawn root: %w", err)
	}
	// Wait until root has spawned its children, so the PIDs are set.
	if _, err := sys.Root.RequestFuture(root, &ready{}, 30*time.Second).Result(); err != nil {
		return nil, fmt.Errorf("start actor tree: %w", err)
	}
	return &System{
		Actors:     sys,
		Root:       sys.Root,
		Containers: env.containers,
		Images:     env.images,
		Networks:   env.networks,
		Volumes:    env.volumes,
		Registry:   reg,
		Events:     env.events,
		DiskUsage:  env.diskUsage,
		Builds:     env.builds,
		root:       root,
	}, nil
}

type ready struct{}

// Stop stops the tree from the root down, waiting a bounded time.
func (s *System) Stop() {
	_ = s.Root.StopFuture(s.root).Wait()
	s.Root.Stop(s.Registry)
	s.Actors.Shutdown()
}
