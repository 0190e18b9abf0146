package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// NetResult: containers on a user network. Start times what a network
// adds to a start (the guest's interfaces, the mesh, the gateway); the
// throughput is bytes one container sends another with busybox nc over
// the network's WireGuard mesh, so on Arca the underlay carries it.
type NetResult struct {
	Count   int                  `json:"count"`
	MiB     int                  `json:"mib"`
	Engines map[string]NetEngine `json:"engines"`
}

type NetEngine struct {
	Run RunEngine `json:"run"` // create/start/wait/remove of `true` on the network
	// MBps is each transfer's rate in MB/s, timed inside the sender (from
	// before nc starts to after it ends), so no boot is in it.
	MBps []float64 `json:"mbps"`
}

// netScenario runs, per engine, RunCount starts of `true` on a network
// and NetRepeat transfers of NetMiB between two containers on it, the
// engines taking turns (A B A B) so that load on the host hits both alike.
func (b *bench) netScenario(ctx context.Context) (res *NetResult, err error) {
	name := "bench-net-" + b.runID
	for _, e := range b.engines {
		if _, err := e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Labels: map[string]string{benchLabel: b.runID}}); err != nil {
			return nil, fmt.Errorf("network create on %s: %w", e.role, err)
		}
		defer func() {
			// Its containers first: a network with endpoints is not removed.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
			defer cancel()
			if cerr := e.cleanup(cctx); cerr != nil && err == nil {
				err = cerr
			}
			if _, rerr := e.cli.NetworkRemove(cctx, name, client.NetworkRemoveOptions{}); rerr != nil && err == nil {
				err = fmt.Errorf("network rm on %s: %w", e.role, rerr)
			}
		}()
	}

	type samples struct {
		create, start, wait, remove, total []time.Duration
		steps                              map[string][]time.Duration
		mbps                               []float64
	}
	by := map[string]*samples{}
	for _, e := range b.engines {
		by[e.role] = &samples{steps: map[string][]time.Duration{}}
	}
	for i := range b.cfg.RunCount + 1 { // the first warms up
		for _, e := range b.engines {
			d, st, err := b.runSpec(ctx, e, onNetwork(containerSpec(b.image, b.runID, "true"), name))
			if err != nil {
				return nil, err
			}
			if i == 0 {
				continue
			}
			s := by[e.role]
			s.create, s.start, s.wait, s.remove = append(s.create, d[0]), append(s.start, d[1]), append(s.wait, d[2]), append(s.remove, d[3])
			s.total = append(s.total, d[0]+d[1]+d[2]+d[3])
			if st != nil {
				for k, v := range map[string]float64{"boot": st.BootMs, "agent": st.AgentMs, "boot_to_agent": st.BootMs + st.AgentMs,
					"setup": st.SetupMs, "network": st.NetworkMs, "process": st.ProcessMs} {
					s.steps[k] = append(s.steps[k], time.Duration(v*float64(time.Millisecond)))
				}
			}
		}
	}
	for range b.cfg.NetRepeat {
		for _, e := range b.engines {
			mbps, err := b.transfer(ctx, e, name)
			if err != nil {
				return nil, err
			}
			b.logf("%s: %d MiB over the network at %.2f MB/s", e.role, b.cfg.NetMiB, mbps)
			by[e.role].mbps = append(by[e.role].mbps, mbps)
		}
	}

	res = &NetResult{Count: b.cfg.RunCount, MiB: b.cfg.NetMiB, Engines: map[string]NetEngine{}}
	for role, s := range by {
		ne := NetEngine{MBps: s.mbps, Run: RunEngine{Create: Summarize(s.create), Start: Summarize(s.start),
			Wait: Summarize(s.wait), Remove: Summarize(s.remove), Total: Summarize(s.total)}}
		if len(s.steps) > 0 {
			ne.Run.Steps = map[string]Summary{}
			for k, ds := range s.steps {
				ne.Run.Steps[k] = Summarize(ds)
			}
		}
		res.Engines[role] = ne
	}
	return res, nil
}

// transfer sends NetMiB from one container to another by name and
// returns the rate the sender saw. busybox nc ends when the other side
// shuts its half down, which the receiver's would do at once on an empty
// stdin: its stdin is a fifo opened for reading and writing, never ending.
func (b *bench) transfer(ctx context.Context, e *engine, network string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*opTimeout)
	defer cancel()
	srvName := fmt.Sprintf("bench-srv-%s-%d", b.runID, time.Now().UnixNano())
	srv := onNetwork(containerSpec(b.image, b.runID, "sh", "-c", "mkfifo /tmp/in && nc -l -p 9000 0<>/tmp/in | wc -c"), network)
	s, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: srvName, Config: srv.Config, HostConfig: srv.HostConfig})
	if err != nil {
		return 0, fmt.Errorf("create receiver on %s: %w", e.role, err)
	}
	if _, err := e.cli.ContainerStart(ctx, s.ID, client.ContainerStartOptions{}); err != nil {
		return 0, fmt.Errorf("start receiver on %s: %w", e.role, err)
	}
	bytes := b.cfg.NetMiB << 20
	// /proc/uptime is the guest's clock in hundredths: enough for
	// transfers of seconds. Retried until the receiver listens.
	script := fmt.Sprintf(`i=0; while :; do t0=$(cut -d' ' -f1 /proc/uptime); `+
		`head -c %d /dev/zero | nc %s 9000 && break; i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done; `+
		`t1=$(cut -d' ' -f1 /proc/uptime); echo "$t0 $t1"`, bytes, srvName)
	cl := onNetwork(containerSpec(b.image, b.runID, "sh", "-c", script), network)
	cl.Config.Tty = true // raw logs, no stream headers
	c, err := e.cli.ContainerCreate(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("create sender on %s: %w", e.role, err)
	}
	if _, err := e.cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		return 0, fmt.Errorf("start sender on %s: %w", e.role, err)
	}
	out, code, err := waitAndLog(ctx, e, c.ID)
	if err != nil {
		return 0, err
	}
	if code != 0 {
		return 0, fmt.Errorf("sender on %s exited %d: %q", e.role, code, out)
	}
	var t0, t1 float64
	if _, err := fmt.Sscan(strings.TrimSpace(out), &t0, &t1); err != nil || t1 <= t0 {
		return 0, fmt.Errorf("sender on %s: times %q", e.role, out)
	}
	got, _, err := waitAndLog(ctx, e, s.ID)
	if err != nil {
		return 0, err
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(got)); n != bytes {
		return 0, fmt.Errorf("receiver on %s counted %q bytes, want %d", e.role, got, bytes)
	}
	return float64(bytes) / (t1 - t0) / 1e6, nil
}

// waitAndLog waits for a container to exit and returns its output (a
// TTY's, or a receiver's one line, whose stream headers are cut).
func waitAndLog(ctx context.Context, e *engine, id string) (string, int64, error) {
	w := e.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{})
	var code int64
	select {
	case r := <-w.Result:
		code = r.StatusCode
	case err := <-w.Error:
		return "", 0, fmt.Errorf("wait %.12s on %s: %w", id, e.role, err)
	}
	logs, err := e.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", 0, fmt.Errorf("logs of %.12s on %s: %w", id, e.role, err)
	}
	defer logs.Close()
	b, err := io.ReadAll(logs)
	if err != nil {
		return "", 0, fmt.Errorf("logs of %.12s on %s: %w", id, e.role, err)
	}
	return stripStreamHeaders(b), code, nil
}

// stripStreamHeaders drops the 8-byte frame headers of a non-TTY log
// stream; a TTY's comes as it is.
func stripStreamHeaders(b []byte) string {
	if len(b) < 8 || (b[0] != 1 && b[0] != 2) || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return string(b)
	}
	var out []byte
	for len(b) >= 8 {
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		b = b[8:]
		if n > len(b) {
			n = len(b)
		}
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return string(out)
}
