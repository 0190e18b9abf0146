package main

// The chaos test: clients create, start, stop, exec into and remove
// containers in parallel while the daemon is killed with SIGKILL at random
// moments and started again on the same root, several rounds. What it
// asserts does not depend on timing: only what the daemon acknowledged is
// held against it, and an operation the kill cut off leaves its container
// "unknown" until the restarted daemon is asked. The operations and the
// kill delays come from one seed, printed first (ARCA_CHAOS_SEED=n replays
// them; which operations a kill cuts off still depends on timing).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// chaosConfig sizes one chaos run.
type chaosConfig struct {
	driver  string
	args    []string // extra daemon arguments
	clients int
	rounds  int
	ops     int // per client and round, at most
	live    int // containers a client keeps at most
	// blockVolumes gives half of client 0's containers a block volume
	// of their own (a loop-mounted image on sandbox), so that the leak
	// checks see loop devices and host mounts.
	blockVolumes bool
	// The kill comes this long after a round's operations begin (drawn
	// between the two); a quarter of the rounds kill within killEarly
	// instead, while the restarted daemon is still bringing back
	// containers.
	killMin, killMax, killEarly time.Duration
	startTimeout                time.Duration
}

func TestChaosSandbox(t *testing.T) {
	runChaos(t, chaosConfig{
		driver: "sandbox", clients: 5, rounds: 5, ops: 14, live: 3, blockVolumes: true,
		killMin: 700 * time.Millisecond, killMax: 3 * time.Second, killEarly: 400 * time.Millisecond,
	})
}

// TestChaosQemu is the short variant on VMs: fewer clients and rounds, the
// kill later (a boot takes seconds under TCG).
func TestChaosQemu(t *testing.T) {
	kit := qemuKit(t)
	runChaos(t, chaosConfig{
		driver: "qemu", args: []string{"--kit", kit.Dir}, clients: 2, rounds: 3, ops: 6, live: 2,
		killMin: 5 * time.Second, killMax: 15 * time.Second, killEarly: 3 * time.Second,
		startTimeout: 60 * time.Second,
	})
}

// chaosCommand ends at once on the stop signal (a PID 1 without a handler
// would ignore SIGTERM and make every stop wait for its SIGKILL).
var chaosCommand = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"}

// tri is what the test knows of a fact: an acknowledged change makes it
// yes or no; a change the kill cut off makes it unknown until the
// restarted daemon is asked.
type tri int8

const (
	no tri = iota
	yes
	unknown
)

func (v tri) String() string { return [...]string{"no", "yes", "unknown"}[v] }

// chaosCtr is the test's model of one container, owned by one client.
type chaosCtr struct {
	name, id string
	policy   container.RestartPolicyMode // "" (none), unless-stopped or always
	network  string                      // "" for the default bridge
	volume   string                      // its block volume's name, if it has one
	volumeOK tri                         // whether the volume's create was acknowledged
	exists   tri
	running  tri // as the last acknowledged create, start or stop left it
	started  tri // a start took effect once (dockerd's HasBeenStartedBefore)
	stopped  tri // stopped by the user since its last start (unless-stopped's "stopped")
	history  []string
}

func (c *chaosCtr) note(format string, args ...any) {
	c.history = append(c.history, fmt.Sprintf(format, args...))
}

func (c *chaosCtr) String() string {
	return fmt.Sprintf("%s (id %.12s, policy %q, exists %s, running %s, started %s, stopped %s); history:\n\t%s",
		c.name, c.id, c.policy, c.exists, c.running, c.started, c.stopped, strings.Join(c.history, "\n\t"))
}

// chaos is one run: the daemon, the model, and the seed everything is
// drawn from.
type chaos struct {
	t       *testing.T
	cfg     chaosConfig
	d       *testenv.Daemon
	image   string
	network string
	seed    int64
	ctrs    [][]*chaosCtr // per client
	killing atomic.Bool   // set before the SIGKILL: errors from then on are the kill's
	// restarted is when the daemon was last started again: no client
	// starts anything between then and the check.
	restarted time.Time
}

func runChaos(t *testing.T, cfg chaosConfig) {
	began := time.Now()
	seed := time.Now().UnixNano()
	if s := os.Getenv("ARCA_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("ARCA_CHAOS_SEED: %v", err)
		}
	}
	t.Logf("chaos seed %d (ARCA_CHAOS_SEED=%d replays its operations and kill delays)", seed, seed)

	linksBefore := hostLinks(t)
	reg := testenv.SharedRegistry(t)
	img := testenv.PushBusybox(t, reg)
	d := testenv.StartDaemon(t, testenv.Options{Driver: cfg.driver, Args: cfg.args, StartTimeout: cfg.startTimeout})
	d.Docker(t, "pull", "-q", img).Must(t)
	c := &chaos{t: t, cfg: cfg, d: d, image: img, network: "chaos", seed: seed, ctrs: make([][]*chaosCtr, cfg.clients)}
	d.Docker(t, "network", "create", c.network).Must(t)

	rng := rand.New(rand.NewSource(seed))
	for round := 1; round <= cfg.rounds && !t.Failed(); round++ {
		delay := cfg.killMin + time.Duration(rng.Int63n(int64(cfg.killMax-cfg.killMin)))
		if round > 1 && rng.Intn(4) == 0 {
			delay = time.Duration(rng.Int63n(int64(cfg.killEarly)))
		}
		c.round(round, delay)
		c.check(round)
	}
	if t.Failed() {
		return
	}
	c.teardown(linksBefore)
	t.Logf("chaos: %d rounds in %s; %s", cfg.rounds, time.Since(began).Round(100*time.Millisecond), c.tally())
}

// round runs the clients until each has done its operations or the kill
// comes, kills the daemon, checks that its machines died with it, and
// starts it again.
func (c *chaos) round(round int, killAfter time.Duration) {
	t := c.t
	cli, err := client.New(client.WithHost(c.d.Host()))
	if err != nil {
		t.Fatalf("moby client: %v", err)
	}
	defer cli.Close()
	c.killing.Store(false)
	var wg sync.WaitGroup
	done := make(chan struct{})
	counts := make([]int, c.cfg.clients)
	for i := range c.cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(c.seed + int64(round)*1000 + int64(i)))
			for n := 0; n < c.cfg.ops && !c.killing.Load(); n++ {
				c.step(cli, rng, round, i)
				counts[i]++
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-time.After(killAfter):
	case <-done:
	}
	if c.d.Stopped() {
		t.Fatalf("round %d: the daemon exited by itself:\n%s", round, tailString(c.d.Log(), 6000))
	}
	machines := descendants(c.d.PID())
	loops := len(loopDevicesUnder(c.d.Root()))
	c.killing.Store(true)
	c.d.Kill9(t)
	<-done
	t.Logf("round %d: killed after %s; operations per client %v; %d processes under the daemon, %d loop devices",
		round, killAfter.Round(time.Millisecond), counts, len(machines), loops)

	// The machines die with their daemon.
	deadline := time.Now().Add(15 * time.Second)
	var left []string
	for {
		left = left[:0]
		for _, p := range machines {
			if p.alive() {
				left = append(left, p.String())
			}
		}
		left = append(left, agentPIDs(t, c.d.Root())...)
		left = append(left, qemuPIDs(t, c.d.Root())...)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("round %d: processes of the killed daemon outlived it by 15 s: %v", round, left)
	}
	c.restarted = time.Now()
	c.d.Restart(t)
}

// step does one operation of client i on one of its containers.
func (c *chaos) step(cli *client.Client, rng *rand.Rand, round, i int) {
	var live []*chaosCtr
	for _, ct := range c.ctrs[i] {
		if ct.exists != no {
			live = append(live, ct)
		}
	}
	if len(live) == 0 || (len(live) < c.cfg.live && rng.Intn(3) == 0) {
		c.create(cli, rng, round, i)
		return
	}
	ct := live[rng.Intn(len(live))]
	var ops []string
	switch ct.running {
	case yes:
		ops = []string{"stop", "stop", "exec", "exec", "rm -f"}
	case no:
		ops = []string{"start", "start", "rm", "rm -f"}
	default:
		ops = []string{"start", "stop", "rm -f"}
	}
	op := ops[rng.Intn(len(ops))]
	viaCLI := rng.Intn(2) == 0
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var err error
	switch op {
	case "start":
		if viaCLI {
			err = c.cli("start", ct.name)
		} else {
			_, err = cli.ContainerStart(ctx, ct.name, client.ContainerStartOptions{})
			err = apiErr(err)
		}
		c.settle(ct, op, err, func() { ct.running, ct.started, ct.stopped = yes, yes, no }, func() {
			ct.running, ct.stopped = unknown, unknown
			if ct.started == no {
				ct.started = unknown
			}
		})
	case "stop":
		if viaCLI {
			err = c.cli("stop", "-t", "2", ct.name)
		} else {
			timeout := 2
			_, err = cli.ContainerStop(ctx, ct.name, client.ContainerStopOptions{Timeout: &timeout})
			err = apiErr(err)
		}
		c.settle(ct, op, err, func() { ct.running, ct.stopped = no, yes }, func() { ct.running, ct.stopped = unknown, unknown })
	case "exec":
		r := c.d.Docker(c.t, "exec", ct.name, "sh", "-c", "echo $((6*7))")
		if r.Code == 0 && r.Stdout != "42\n" {
			c.t.Errorf("exec in %s: stdout %q", ct.name, r.Stdout)
		}
		err = cliErr(r)
		c.settle(ct, op, err, func() {}, func() {})
	case "rm", "rm -f":
		force := op == "rm -f"
		if viaCLI {
			args := []string{"rm", ct.name}
			if force {
				args = []string{"rm", "-f", ct.name}
			}
			err = c.cli(args...)
		} else {
			_, err = cli.ContainerRemove(ctx, ct.name, client.ContainerRemoveOptions{Force: force})
			err = apiErr(err)
		}
		c.settle(ct, op, err, func() { ct.exists, ct.running = no, no }, func() {
			ct.exists = unknown
			if force {
				ct.running, ct.stopped = unknown, unknown
			}
		})
	}
}

// create makes a new container of client i: some with a restart policy,
// some on the user network, some by docker run -d (created and started).
func (c *chaos) create(cli *client.Client, rng *rand.Rand, round, i int) {
	ct := &chaosCtr{name: fmt.Sprintf("chaos-c%d-r%d-%d", i, round, len(c.ctrs[i])), exists: unknown, running: unknown, started: unknown, stopped: no}
	ct.policy = []container.RestartPolicyMode{"", container.RestartPolicyUnlessStopped, container.RestartPolicyAlways}[rng.Intn(3)]
	if rng.Intn(3) == 0 {
		ct.network = c.network
	}
	c.ctrs[i] = append(c.ctrs[i], ct)
	if i == 0 && c.cfg.blockVolumes && rng.Intn(2) == 0 {
		ct.volume = "chaos-v-" + ct.name
		err := c.cli("volume", "create", "--driver", "block", "--opt", "size=16M", ct.volume)
		c.settle(ct, "volume create", err, func() { ct.volumeOK = yes }, func() { ct.volumeOK = unknown })
		if ct.volumeOK != yes {
			ct.exists, ct.running, ct.started = no, no, no // not made
			return
		}
	}
	if rng.Intn(3) == 0 {
		args := []string{"run", "-d", "--name", ct.name}
		if ct.volume != "" {
			args = append(args, "-v", ct.volume+":/data")
		}
		if ct.policy != "" {
			args = append(args, "--restart", string(ct.policy))
		}
		if ct.network != "" {
			args = append(args, "--network", ct.network)
		}
		r := c.d.Docker(c.t, append(append(args, c.image), chaosCommand...)...)
		err := cliErr(r)
		c.settle(ct, "run -d", err, func() {
			ct.id = strings.TrimSpace(r.Stdout)
			ct.exists, ct.running, ct.started = yes, yes, yes
		}, func() {})
		// Refused, the create may still have been acknowledged and the
		// start refused (the CLI does not say which): all stays unknown.
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	hc := &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: ct.policy}}
	if ct.network != "" {
		hc.NetworkMode = container.NetworkMode(ct.network)
	}
	if ct.volume != "" {
		hc.Binds = []string{ct.volume + ":/data"}
	}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       ct.name,
		Config:     &container.Config{Image: c.image, Cmd: chaosCommand},
		HostConfig: hc,
	})
	err = apiErr(err)
	c.settle(ct, "create", err, func() {
		ct.id = res.ID
		ct.exists, ct.running, ct.started = yes, no, no
	}, func() {})
	if err != nil && errors.Is(err, errAnswered) && !c.killing.Load() {
		ct.exists, ct.running, ct.started = no, no, no
	}
}

// errAnswered marks an error the daemon answered with (a status), as
// opposed to one of a request the kill cut off.
var errAnswered = errors.New("answered by the daemon")

// settle applies an operation's outcome to the model: acknowledged, the
// change; cut off by the kill, the fact becomes unknown; refused by a
// live daemon, nothing changes (and the refusal is logged, since the
// model predicted it would work).
func (c *chaos) settle(ct *chaosCtr, op string, err error, acked, cutOff func()) {
	switch {
	case err == nil:
		acked()
		ct.note("%s: ok", op)
	case c.killing.Load() || !errors.Is(err, errAnswered):
		cutOff()
		ct.note("%s: cut off: %v", op, err)
	default:
		ct.note("%s: refused: %v", op, err)
		c.t.Logf("%s %s refused by a live daemon: %v", op, ct.name, err)
	}
}

// cli runs the docker CLI and returns its outcome as an error.
func (c *chaos) cli(args ...string) error {
	return cliErr(c.d.Docker(c.t, args...))
}

func cliErr(r testenv.Result) error {
	if r.Code == 0 {
		return nil
	}
	msg := strings.TrimSpace(r.Stderr)
	if strings.Contains(msg, "Error response from daemon") {
		return fmt.Errorf("docker %s: %w: %s", strings.Join(r.Args, " "), errAnswered, msg)
	}
	return fmt.Errorf("docker %s: exit %d: %s", strings.Join(r.Args, " "), r.Code, msg)
}

// The moby client's errors for a status say so; any other is the
// transport's.
func apiErr(err error) error {
	if err == nil || !strings.Contains(err.Error(), "Error response from daemon") {
		return err
	}
	return fmt.Errorf("%w: %v", errAnswered, err)
}

// check holds the restarted daemon to what it acknowledged, then learns
// from it what the kill left unknown.
func (c *chaos) check(round int) {
	t := c.t
	cli, err := client.New(client.WithHost(c.d.Host()))
	if err != nil {
		t.Fatalf("moby client: %v", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The restart policies first: what must come back must be seen
	// running before anything is held to have stayed down (the starts
	// the daemon makes at its start are all sent at once).
	var all []*chaosCtr
	for _, cs := range c.ctrs {
		all = append(all, cs...)
	}
	inspect := func(ct *chaosCtr) (container.InspectResponse, bool) {
		ref := ct.id
		if ref == "" {
			ref = ct.name
		}
		res, err := cli.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
		if err != nil {
			if strings.Contains(err.Error(), "No such container") {
				return container.InspectResponse{}, false
			}
			t.Fatalf("round %d: inspect %s: %v", round, ct.name, err)
		}
		return res.Container, true
	}
	deadline := time.Now().Add(45 * time.Second)
	for _, ct := range all {
		if expectAfterCrash(ct) != yes {
			continue
		}
		for {
			got, ok := inspect(ct)
			if ok && got.State.Running && !got.State.Restarting {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("round %d: %s did not come back running after the restart (its policy says it should): %+v\n%s", round, ct.name, got.State, ct)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Starts the daemon made wrongly would be under way by now too;
	// one that ended already still shows in StartedAt.
	time.Sleep(time.Second)

	for _, ct := range all {
		got, found := inspect(ct)
		switch {
		case ct.exists == yes && !found:
			t.Errorf("round %d: acknowledged container lost: %s", round, ct)
		case ct.exists == no && found:
			t.Errorf("round %d: a container whose removal was acknowledged (or whose create was refused) is back: %s", round, ct)
		case found && ct.id != "" && got.ID != ct.id:
			t.Errorf("round %d: %s has ID %s, the create said %s", round, ct.name, got.ID, ct.id)
		case found && expectAfterCrash(ct) == no && (got.State.Running || got.State.Restarting || startedSince(got, c.restarted)):
			t.Errorf("round %d: %s was started by the restarted daemon though the user stopped it, it never started, or it has no restart policy (state %s, started at %s)\n%s",
				round, ct.name, got.State.Status, got.State.StartedAt, ct)
		}
		// What the restarted daemon says is the model from now on.
		if !found {
			ct.exists, ct.running = no, no
			ct.note("round %d restart: gone", round)
			continue
		}
		ct.exists, ct.id = yes, got.ID
		ct.running = no
		if got.State.Running {
			ct.running = yes
			ct.stopped = no
		}
		if got.State.StartedAt != "" && !strings.HasPrefix(got.State.StartedAt, "0001-") {
			ct.started = yes
		} else if ct.started == unknown {
			ct.started = no
		}
		if got.State.Restarting {
			ct.running = unknown
		}
		ct.note("round %d restart: %s", round, got.State.Status)
	}

	// Nothing else is there: every container is one of the clients'.
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatalf("round %d: list: %v", round, err)
	}
	known := map[string]bool{}
	for _, ct := range all {
		if ct.exists == yes {
			known[ct.id] = true
		}
	}
	for _, s := range list.Items {
		if !known[s.ID] {
			t.Errorf("round %d: container %.12s %v is listed but the model lacks it", round, s.ID, s.Names)
		}
	}
	for _, ct := range all {
		if ct.volume == "" || ct.volumeOK == no {
			continue
		}
		_, err := cli.VolumeInspect(ctx, ct.volume, client.VolumeInspectOptions{})
		switch {
		case err == nil:
			ct.volumeOK = yes
		case ct.volumeOK == yes:
			t.Errorf("round %d: acknowledged volume %s lost: %v", round, ct.volume, err)
		default:
			ct.volumeOK = no
		}
	}
	if _, err := cli.NetworkInspect(ctx, c.network, client.NetworkInspectOptions{}); err != nil {
		t.Errorf("round %d: the network created before the first kill: %v", round, err)
	}
	if t.Failed() {
		t.Logf("daemon log (tail):\n%s", tailString(c.d.Log(), 8000))
	}
}

// startedSince says whether c's last start was after t.
func startedSince(c container.InspectResponse, t time.Time) bool {
	at, err := time.Parse(time.RFC3339Nano, c.State.StartedAt)
	return err == nil && at.After(t)
}

// expectAfterCrash says whether c must run after a restart of the daemon
// (yes), must not (no), or may either way (unknown), by dockerd's rules: a
// container never started stays down whatever its policy; always brings
// back any other; unless-stopped one the user did not stop; without a
// policy nothing comes back.
func expectAfterCrash(c *chaosCtr) tri {
	switch {
	case c.exists != yes:
		return unknown
	case c.started == no || c.policy == "":
		return no
	case c.started == unknown:
		return unknown
	case c.policy == container.RestartPolicyAlways:
		return yes
	}
	return map[tri]tri{yes: no, no: yes, unknown: unknown}[c.stopped]
}

// teardown removes everything, stops the daemon, and then looks for
// anything of it left on the host.
func (c *chaos) teardown(linksBefore map[string]string) {
	t := c.t
	d := c.d
	if ids := strings.Fields(d.Docker(t, "ps", "-aq").Must(t).Stdout); len(ids) > 0 {
		d.Docker(t, append([]string{"rm", "-f"}, ids...)...).Must(t)
	}
	d.Docker(t, "network", "rm", c.network).Must(t)
	if vols := strings.Fields(d.Docker(t, "volume", "ls", "-q").Must(t).Stdout); len(vols) > 0 {
		d.Docker(t, append([]string{"volume", "rm"}, vols...)...).Must(t)
	}
	if out := d.Docker(t, "ps", "-aq").Must(t).Stdout; out != "" {
		t.Errorf("containers left after rm -f of all: %s", out)
	}
	// With every container gone, nothing of one is left while the daemon
	// still runs: no machine (its cgroup goes last), no files (they go
	// after rm's answer).
	containerDirs := func() []string {
		ents, _ := os.ReadDir(filepath.Join(d.Root(), "containers"))
		var ids []string
		for _, e := range ents {
			ids = append(ids, e.Name())
		}
		return ids
	}
	deadline := time.Now().Add(10 * time.Second)
	for (machineCgroups(t, d) != "" || len(containerDirs()) > 0) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := machineCgroups(t, d); left != "" {
		t.Errorf("machine cgroups left with no container:\n%s", left)
	}
	for _, id := range containerDirs() {
		t.Errorf("files of a removed container left: %s", c.describe(id))
	}
	d.Stop(t)

	deadline = time.Now().Add(10 * time.Second)
	var leaks []string
	for {
		leaks = leftovers(t, d.Root(), linksBefore)
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(leaks) > 0 {
		t.Errorf("left behind by the stopped daemon:\n\t%s", strings.Join(leaks, "\n\t"))
	}
}

// tally sums up what the clients did, to show what a run covered.
func (c *chaos) tally() string {
	n := map[string]int{}
	for _, cs := range c.ctrs {
		for _, ct := range cs {
			n["containers"]++
			if ct.volumeOK == yes {
				n["block volumes"]++
			}
			for _, h := range ct.history {
				switch {
				case strings.Contains(h, ": ok"):
					n["acknowledged"]++
				case strings.Contains(h, ": cut off"):
					n["cut off"]++
				case strings.Contains(h, ": refused"):
					n["refused"]++
				}
			}
		}
	}
	return fmt.Sprintf("%d containers (%d with a block volume), %d operations acknowledged, %d cut off by a kill, %d refused",
		n["containers"], n["block volumes"], n["acknowledged"], n["cut off"], n["refused"])
}

// describe names a container by its ID, with the model's history of it.
func (c *chaos) describe(id string) string {
	for _, cs := range c.ctrs {
		for _, ct := range cs {
			if ct.id == id {
				return ct.String()
			}
		}
	}
	return id + " (not in the model: a create the kill cut off)"
}

// leftovers lists what of a daemon of root is still on the host: processes
// that point into root, mounts under it, loop devices backed by its files,
// cgroups of its group, directories of removed containers, and network
// links that were not there before it.
func leftovers(t *testing.T, root string, linksBefore map[string]string) []string {
	var out []string
	for _, p := range processesInto(root) {
		out = append(out, "process "+p)
	}
	if n := mountsUnder(t, root); n > 0 {
		out = append(out, fmt.Sprintf("%d mounts under %s", n, root))
	}
	out = append(out, loopDevicesUnder(root)...)
	for _, dir := range daemonCgroups(root) {
		out = append(out, "cgroup "+dir)
	}
	// Every container was removed: none of their directories is left
	// (the record goes first, so a kill between the two leaves one).
	ents, _ := os.ReadDir(filepath.Join(root, "containers"))
	for _, e := range ents {
		out = append(out, "container directory "+e.Name())
	}
	for name, kind := range hostLinks(t) {
		if _, ok := linksBefore[name]; !ok {
			out = append(out, "link "+name+" ("+kind+")")
		}
	}
	sort.Strings(out)
	return out
}

// loopDevicesUnder lists the loop devices backed by a file under root.
func loopDevicesUnder(root string) []string {
	var out []string
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if backing := strings.TrimSpace(string(b)); strings.HasPrefix(backing, root) {
			out = append(out, "loop device "+filepath.Base(filepath.Dir(filepath.Dir(f)))+" backed by "+backing)
		}
	}
	return out
}

// daemonCgroups lists every cgroup directory of the daemon of root in any
// hierarchy, its group (arca/<hash of root>) included.
func daemonCgroups(root string) []string {
	abs, _ := filepath.Abs(root)
	sum := sha256.Sum256([]byte(abs))
	group := "arca/" + hex.EncodeToString(sum[:6])
	out, _ := exec.Command("find", "/sys/fs/cgroup", "-maxdepth", "8", "-type", "d", "(", "-path", "*/"+group, "-o", "-path", "*/"+group+"/*", ")").Output()
	return strings.Fields(string(out))
}

// hostLinks maps the host's network links to their kinds (veth, tun,
// wireguard, ...; "" for a plain device).
func hostLinks(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "-d", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	links := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		kind := ""
		for _, k := range []string{"veth", "tun", "tap", "wireguard", "bridge", "macvlan", "dummy"} {
			if slices.Contains(f, k) {
				kind = k
			}
		}
		links[name] = kind
	}
	return links
}

// processesInto lists processes (but this one) whose command line,
// environment, working directory, root, executable or an open file
// points into root.
func processesInto(root string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	self := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		pid := e.Name()
		if strings.Trim(pid, "0123456789") != "" || pid == self {
			continue
		}
		dir := filepath.Join("/proc", pid)
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		environ, _ := os.ReadFile(filepath.Join(dir, "environ"))
		why := ""
		switch {
		case strings.Contains(string(cmdline), root):
			why = "command line"
		case strings.Contains(string(environ), root):
			why = "environment"
		}
		for _, l := range []string{"cwd", "root", "exe"} {
			if p, err := os.Readlink(filepath.Join(dir, l)); err == nil && strings.HasPrefix(p, root) {
				why = l
			}
		}
		fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
		for _, fd := range fds {
			if p, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && strings.HasPrefix(p, root) {
				why = "open file " + p
			}
		}
		if why != "" {
			out = append(out, fmt.Sprintf("%s (%s): %s", pid, why, strings.ReplaceAll(strings.TrimSpace(string(cmdline)), "\x00", " ")))
		}
	}
	return out
}

// procID names a process across PID reuse: its PID and start time.
type procID struct {
	pid   int
	start string
	comm  string
}

func (p procID) String() string { return fmt.Sprintf("%d (%s)", p.pid, p.comm) }

// alive says whether the process still exists (and is not a zombie).
func (p procID) alive() bool {
	st, ok := readStat(p.pid)
	return ok && st.start == p.start && st.state != "Z"
}

type procStat struct {
	ppid         int
	state, start string
	comm         string
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	// After the command: state, ppid, ... starttime is the 20th.
	f := strings.Fields(s[end+1:])
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return procStat{ppid: ppid, state: f[0], start: f[19], comm: s[open+1 : end]}, true
}

// descendants lists the processes below pid.
func descendants(pid int) []procID {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]procID{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(n); ok {
			children[st.ppid] = append(children[st.ppid], procID{pid: n, start: st.start, comm: st.comm})
		}
	}
	var out []procID
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
