package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/arcavm/arca/actors/security"
	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/underlay"
	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// buildsSupervisor is the parent of the build steps running now: one
// child per step, stopped when its machine is gone. A failed step is
// never restarted (the build reports it).
type buildsSupervisor struct {
	env   *Env
	count int
}

func newBuildsSupervisor(env *Env) actor.Producer {
	return func() actor.Actor { return &buildsSupervisor{env: env} }
}

func (s *buildsSupervisor) Kind() string  { return "builds" }
func (s *buildsSupervisor) State() string { return "running" }

func (s *buildsSupervisor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *messages.BuildStep:
		s.count++
		name := fmt.Sprintf("step-%d", s.count)
		props := s.env.props(func() actor.Actor { return &buildStepActor{env: s.env, step: m, state: stepBooting} },
			actor.WithSupervisor(actor.NewOneForOneStrategy(0, time.Minute, func(any) actor.Directive { return actor.StopDirective })))
		if _, err := ctx.SpawnNamed(props, name); err != nil {
			m.Done <- messages.BuildStepResult{Err: fmt.Errorf("spawn build step: %w", err)}
		}
	}
}

// A build step's lifecycle: booting (machine and process starting),
// running, then done (machine killed, result sent) when it stops itself.
const (
	stepBooting = "booting"
	stepRunning = "running"
)

// buildStepActor owns one build step's machine, from boot to kill. The
// sequence runs on a goroutine; the actor holds what the tree shows.
type buildStepActor struct {
	env   *Env
	step  *messages.BuildStep
	state string
}

type (
	buildStepRunning struct{}
	buildStepEnded   struct{}
)

func (a *buildStepActor) Kind() string  { return "build-step" }
func (a *buildStepActor) State() string { return a.state }

func (a *buildStepActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		self, sys := ctx.Self(), ctx.ActorSystem()
		env, step := a.env, a.step
		id := filepath.Base(self.Id)
		goSafe(sys, self, func() any {
			// The result goes straight to the build (Done is buffered):
			// it must arrive even if the tree is stopping.
			step.Done <- runBuildStep(sys, env, self, id, step, func() { sys.Root.Send(self, &buildStepRunning{}) })
			return &buildStepEnded{}
		})
	case *buildStepRunning:
		a.state = stepRunning
	case *buildStepEnded:
		ctx.Stop(ctx.Self())
	case *goroutinePanic:
		a.step.Done <- messages.BuildStepResult{Err: m}
		ctx.Stop(ctx.Self())
	}
}

// runBuildStep boots the step's machine over its root directory, runs the
// process with its stdio, and kills the machine. running is called once
// the process has started.
func runBuildStep(sys *actor.ActorSystem, env *Env, self *actor.PID, name string, step *messages.BuildStep, running func()) messages.BuildStepResult {
	if env.Driver == nil {
		return messages.BuildStepResult{Err: errors.New("no machine driver")}
	}
	stateDir, err := os.MkdirTemp(filepath.Join(env.Root, "builds"), name+"-")
	if err != nil {
		return messages.BuildStepResult{Err: fmt.Errorf("build step state: %w", err)}
	}
	defer os.RemoveAll(stateDir)
	if len(step.Mounts) > 0 && !hostPathMounts(env.Driver) {
		return messages.BuildStepResult{Err: fmt.Errorf("RUN mounts are not supported by the %s driver yet", env.Driver.Name())}
	}
	spec := vm.MachineSpec{
		ID:       name,
		StateDir: filepath.Join(stateDir, "machine"),
		RootDir:  step.RootDir,
		Hostname: step.Hostname,
	}
	// The driver gives the guest RootDir itself.
	spec.Shares = sharesFor(step.Mounts, nil)
	setup := wire.SetupRequest{
		Hostname:       step.Hostname,
		Hosts:          step.Hosts,
		ResolvConf:     resolvConf(),
		Mounts:         step.Mounts,
		ReadonlyRootfs: step.ReadonlyRootfs,
		Privileged:     step.Privileged,
	}
	var netcfg *wire.NetworkConfig
	if step.Network != "none" {
		// A unique name on the host network for this step's run.
		id := "buildkit-" + filepath.Base(stateDir)
		n, err := joinStepUplink(sys, env, self, id)
		if err != nil {
			return messages.BuildStepResult{Err: fmt.Errorf("build step network: %w", err)}
		}
		if n != nil {
			defer releaseStepUplink(sys, env, id, n)
			cfg := n.config(id)
			netcfg = &cfg
			spec.UnderlayMAC = n.mac
			setup.ResolvConf = hostNetResolvConf(resolvConf(), &container.HostConfig{}, n.hostGateway())
			// The host's loopback, as for a container on the host network.
			if gw := n.hostGateway(); gw.IsValid() && !namesHost(string(setup.Hosts), hostDockerInternal) {
				setup.Hosts = append(slices.Clip(setup.Hosts), []byte(gw.String()+"\t"+hostDockerInternal+"\n")...)
			}
		}
	}
	proc := wire.ProcessSpec{
		ID: "main", Args: step.Args, Env: step.Env, Cwd: step.Cwd, User: step.User,
		Tty: step.Tty, Stdin: step.Stdin != nil, Main: true,
	}
	hc := &container.HostConfig{Privileged: step.Privileged}
	proc.Capabilities = capabilities(hc)
	if err := security.Apply(&proc, hc, proc.Capabilities, env.Driver.Name() == "sandbox"); err != nil {
		return messages.BuildStepResult{Err: err}
	}
	b, err := bootAndStart(env.Driver, spec, setup, netcfg, proc)
	if err != nil {
		return messages.BuildStepResult{Err: fmt.Errorf("run build step: %w", err)}
	}
	defer func() {
		b.client.Close()
		b.machine.Kill()
	}()
	if step.Started != nil {
		close(step.Started)
	}
	running()
	p := b.proc
	var wg sync.WaitGroup
	copyOut := func(w io.Writer, r io.Reader) {
		if r == nil {
			return
		}
		if w == nil {
			w = io.Discard
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(w, r)
		}()
	}
	copyOut(step.Stdout, p.Stdout)
	copyOut(step.Stderr, p.Stderr)
	if step.Stdin != nil && p.Stdin != nil {
		go func() {
			io.Copy(p.Stdin, step.Stdin)
			p.Stdin.Close()
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-step.Cancel:
				// The build was cancelled: the machine goes, and with it
				// the process.
				b.machine.Kill()
				return
			case sig, ok := <-step.Signal:
				if !ok {
					step.Signal = nil
					continue
				}
				b.client.Signal(ctx, p.ID, sig)
			case sz, ok := <-step.Resize:
				if !ok {
					step.Resize = nil
					continue
				}
				b.client.Resize(ctx, p.ID, sz.Height, sz.Width)
			}
		}
	}()
	st, err := p.Wait()
	wg.Wait()
	select {
	case <-step.Cancel:
		return messages.BuildStepResult{Err: context.Canceled}
	default:
	}
	if err != nil {
		return messages.BuildStepResult{Err: fmt.Errorf("wait build step: %w", err)}
	}
	code := st.Code
	if st.Signal != 0 {
		code = 128 + st.Signal
	}
	return messages.BuildStepResult{ExitCode: code}
}

// joinStepUplink gives a build step the host network's uplink, its way
// out through the host, as buildkitd's default host networking gives its
// steps; nil without an underlay (the step has loopback only).
func joinStepUplink(sys *actor.ActorSystem, env *Env, self *actor.PID, id string) (*netRun, error) {
	if env.Underlay == nil {
		return nil, nil
	}
	addr, err := env.Underlay.Allocate()
	if err != nil {
		return nil, err
	}
	n := &netRun{underlayAddr: addr, mac: underlay.NewMAC().String(), ifaces: map[string]*netIface{}, uplink: true}
	f, err := newNetIface(netHost, &network.EndpointSettings{}, 0)
	if err == nil {
		var j *networkJoined
		if j, err = joinOne(sys, env, self, &persistence.ContainerRecord{ID: id, Name: "/" + id}, n, f); err == nil {
			n.ifaces[j.networkID] = f
			n.applyJoins(map[string]*networkJoined{j.networkID: j})
			return n, nil
		}
	}
	env.Underlay.Release(addr.Addr())
	return nil, err
}

// releaseStepUplink gives back what joinStepUplink took.
func releaseStepUplink(sys *actor.ActorSystem, env *Env, id string, n *netRun) {
	leaveAll(sys, env, id, n)
	env.Underlay.Release(n.underlayAddr.Addr())
}

// RunBuildStep runs step in a machine of the daemon's driver and returns
// its exit code once the machine is gone; ctx's end kills it.
func (s *System) RunBuildStep(ctx context.Context, step messages.BuildStep) (int, error) {
	done := make(chan messages.BuildStepResult, 1)
	step.Done = done
	step.Cancel = ctx.Done()
	s.Root.Send(s.Builds, &step)
	select {
	case res := <-done:
		return res.ExitCode, res.Err
	case <-ctx.Done():
	}
	// Cancelled: the step kills its machine and answers; a tree already
	// stopped does not, so the wait is bounded.
	select {
	case res := <-done:
		return res.ExitCode, res.Err
	case <-time.After(time.Minute):
		return 0, context.Cause(ctx)
	}
}
