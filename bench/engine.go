package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/arcavm/arca/messages"
)

// benchLabel marks every container the bench creates, valued with the run's
// ID, so leftovers of an interrupted run can be found and removed.
const benchLabel = "arca.bench"

// engine is one Docker Engine API endpoint under test.
type engine struct {
	role string // "target" or "compare": the keys of every per-engine map in the report
	host string
	cli  *client.Client
	info EngineInfo
}

// EngineInfo says what answered on an endpoint.
type EngineInfo struct {
	Role       string `json:"role"`
	Host       string `json:"host"`
	Name       string `json:"name"` // Platform.Name from /version, or "Docker Engine"
	Version    string `json:"version"`
	APIVersion string `json:"api_version"`
	DaemonPID  int    `json:"daemon_pid,omitempty"`
}

// newEngine connects to host. The HTTP client keeps enough idle connections
// for the widest concurrency the bench uses: the moby default (6 in all)
// would make the API scenario measure connection setup, not the engine.
func newEngine(ctx context.Context, role, host string, runID string) (*engine, error) {
	hc := &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: client.CheckRedirect,
	}
	opts := []client.Opt{client.WithHTTPClient(hc), client.WithHost(host), client.WithUserAgent("arca-bench")}
	if unixPath(host) != "" {
		// With a caller's http.Client the moby client guesses https.
		opts = append(opts, client.WithScheme("http"))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", host, err)
	}
	e := &engine{role: role, host: host, cli: cli}
	vctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := cli.ServerVersion(vctx, client.ServerVersionOptions{})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("%s engine at %s: %w", role, host, err)
	}
	name := v.Platform.Name
	if name == "" {
		name = "Docker Engine"
	}
	e.info = EngineInfo{Role: role, Host: host, Name: name, Version: v.Version, APIVersion: v.APIVersion}
	return e, nil
}

func (e *engine) close() { _ = e.cli.Close() }

// label is the short name used in tables: "target (Arca 0.1)".
func (e *engine) label() string {
	return fmt.Sprintf("%s (%s %s)", e.role, shortName(e.info.Name), e.info.Version)
}

func shortName(name string) string {
	if f := strings.Fields(name); len(f) > 0 {
		return f[0]
	}
	return name
}

// containerSpec is a tiny container on no network: the same on every engine,
// so neither pays for a bridge, veth or iptables the other skips.
func containerSpec(image, runID string, cmd ...string) client.ContainerCreateOptions {
	return client.ContainerCreateOptions{
		Config: &container.Config{
			Image:  image,
			Cmd:    cmd,
			Labels: map[string]string{benchLabel: runID},
		},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	}
}

// onNetwork puts spec's container on network; "" leaves it on none.
func onNetwork(spec client.ContainerCreateOptions, network string) client.ContainerCreateOptions {
	if network != "" {
		spec.HostConfig.NetworkMode = container.NetworkMode(network)
	}
	return spec
}

// pullImage pulls ref and waits for the pull to end, reporting an error the
// engine put in the progress stream.
func (e *engine) pullImage(ctx context.Context, ref string) error {
	resp, err := e.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s on %s: %w", ref, e.role, err)
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("pull %s on %s: %w", ref, e.role, err)
		}
		if msg.Error != nil {
			return fmt.Errorf("pull %s on %s: %s", ref, e.role, msg.Error.Message)
		}
	}
	return nil
}

// removeImage removes ref and everything only it kept, as `docker rmi -f`.
func (e *engine) removeImage(ctx context.Context, ref string) error {
	if _, err := e.cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
		return fmt.Errorf("remove image %s on %s: %w", ref, e.role, err)
	}
	return nil
}

// removeContainers force-removes ids with a few requests in flight, so
// cleaning up after 50 starts does not take longer than the starts.
func (e *engine) removeContainers(ctx context.Context, ids []string) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
	)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("remove %.12s on %s: %w", id, e.role, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cleanup removes every container a bench run left on the engine (this run
// or an interrupted earlier one).
func (e *engine) cleanup(ctx context.Context) error {
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", benchLabel)})
	if err != nil {
		return fmt.Errorf("list bench containers on %s: %w", e.role, err)
	}
	ids := make([]string, 0, len(res.Items))
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return e.removeContainers(ctx, ids)
}

// createMany creates n containers with up to par requests in flight.
func (e *engine) createMany(ctx context.Context, n, par int, spec client.ContainerCreateOptions) ([]string, error) {
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := e.cli.ContainerCreate(ctx, spec)
			ids[i], errs[i] = res.ID, err
		}()
	}
	wg.Wait()
	var created []string
	for _, id := range ids {
		if id != "" {
			created = append(created, id)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return created, fmt.Errorf("create containers on %s: %w", e.role, err)
	}
	return created, nil
}

// startMany starts ids with up to par requests in flight.
func (e *engine) startMany(ctx context.Context, ids []string, par int) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
				errs[i] = fmt.Errorf("start %.12s on %s: %w", id, e.role, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "no such container")
}

// readFirstLine reads a non-TTY attach stream (8-byte frame headers: stream,
// three zero bytes, big-endian length) until a payload holds a newline.
func readFirstLine(r *bufio.Reader) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("read frame header: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		if strings.ContainsRune(string(payload), '\n') {
			return nil
		}
	}
}

// unixPath is the socket path of a unix:// host, or "" for other schemes.
func unixPath(host string) string {
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "unix" {
		return ""
	}
	return u.Path
}

// isArca tells an engine that serves Arca's own endpoints.
func (e *engine) isArca() bool { return e.info.Name == "Arca" && unixPath(e.host) != "" }

// startTimings reads container id's last start, step by step, from Arca's
// actor tree.
func (e *engine) startTimings(ctx context.Context, id string) (*messages.StartTimings, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", unixPath(e.host))
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://arca/arca/v1/actors", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("actor tree: %s", resp.Status)
	}
	var root messages.ActorNode
	if err := json.NewDecoder(resp.Body).Decode(&root); err != nil {
		return nil, fmt.Errorf("decode actor tree: %w", err)
	}
	var find func(n *messages.ActorNode) *messages.StartTimings
	find = func(n *messages.ActorNode) *messages.StartTimings {
		if n.Kind == "container" && strings.HasSuffix(n.Path, "/"+id) {
			return n.LastStart
		}
		for _, c := range n.Children {
			if t := find(c); t != nil {
				return t
			}
		}
		return nil
	}
	if t := find(&root); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("container %.12s has no start in the actor tree", id)
}
