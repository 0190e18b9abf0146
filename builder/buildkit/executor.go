//go:build linux

package buildkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/continuity/fs"
	"github.com/moby/buildkit/executor"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	gatewayapi "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/snapshot"
	"github.com/moby/buildkit/solver/pb"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
)

// Steps runs build steps in machines of the daemon's driver.
type Steps interface {
	RunBuildStep(ctx context.Context, step messages.BuildStep) (exitCode int, err error)
}

// defaultHostname is what a RUN sees as its hostname, as in BuildKit.
const defaultHostname = "buildkitsandbox"

// stepExecutor is BuildKit's executor for Arca: each process runs in a
// machine of its own, over the step's snapshot mounted on the host.
type stepExecutor struct {
	steps Steps
}

var _ executor.Executor = (*stepExecutor)(nil)

// Run implements executor.Executor.
func (x *stepExecutor) Run(ctx context.Context, id string, root executor.Mount, mounts []executor.Mount, p executor.ProcessInfo, started chan<- struct{}) (resourcestypes.Recorder, error) {
	if id == "" {
		id = identity.NewID()
	}
	rootRef, err := root.Src.Mount(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("mount step root: %w", err)
	}
	lm := snapshot.LocalMounter(rootRef)
	rootPath, err := lm.Mount()
	if err != nil {
		return nil, fmt.Errorf("mount step root: %w", err)
	}
	defer lm.Unmount()
	if root.Selector != "" {
		if rootPath, err = fs.RootPath(rootPath, root.Selector); err != nil {
			return nil, fmt.Errorf("step root: %w", err)
		}
	}
	// Mount points the step needed but its image lacked are removed
	// again, as runc's executor does.
	defer executor.MountStubsCleaner(context.WithoutCancel(ctx), rootPath, mounts, p.Meta.RemoveMountStubsRecursive)()

	hm := &hostMounts{}
	defer hm.release()
	var wm []wire.Mount
	for _, m := range mounts {
		ms, err := hm.add(ctx, m)
		if err != nil {
			return nil, err
		}
		wm = append(wm, ms...)
	}
	step := stepOf(p, rootPath, wm)
	step.Started = started
	code, err := x.steps.RunBuildStep(ctx, step)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	return nil, exitError(code, p.Meta.ValidExitCodes)
}

// Exec implements executor.Executor: a second process in a running step
// (interactive debugging of a build) is not offered yet.
func (x *stepExecutor) Exec(ctx context.Context, id string, p executor.ProcessInfo) error {
	return errors.New("exec into a build step is not supported by Arca yet")
}

// exitError is BuildKit's error for an exit code that is not valid.
func exitError(code int, valid []int) error {
	if valid == nil {
		valid = []int{0}
	}
	if slices.Contains(valid, code) {
		return nil
	}
	return &gatewayapi.ExitError{ExitCode: uint32(code)}
}

// stepOf is the step message for p over rootPath.
func stepOf(p executor.ProcessInfo, rootPath string, mounts []wire.Mount) messages.BuildStep {
	meta := p.Meta
	hostname := meta.Hostname
	if hostname == "" {
		hostname = defaultHostname
	}
	step := messages.BuildStep{
		RootDir:        rootPath,
		Mounts:         mounts,
		Hostname:       hostname,
		Hosts:          hostsFile(hostname, meta.ExtraHosts),
		Args:           meta.Args,
		Env:            meta.Env,
		User:           meta.User,
		Cwd:            meta.Cwd,
		Tty:            meta.Tty,
		Privileged:     meta.SecurityMode == pb.SecurityMode_INSECURE,
		ReadonlyRootfs: meta.ReadonlyRootFS,
		Stdin:          p.Stdin,
		Stdout:         p.Stdout,
		Stderr:         p.Stderr,
		Signal:         p.Signal,
	}
	if meta.NetMode == pb.NetMode_NONE {
		step.Network = "none"
	}
	if p.Resize != nil {
		resize := make(chan wire.WindowSize)
		go func() {
			defer close(resize)
			for sz := range p.Resize {
				resize <- wire.WindowSize{Height: uint16(sz.Rows), Width: uint16(sz.Cols)}
			}
		}()
		step.Resize = resize
	}
	return step
}

// hostsFile is a step's /etc/hosts: loopback under its hostname and the
// build's --add-host entries.
func hostsFile(hostname string, extra []executor.HostIP) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", hostname)
	for _, h := range extra {
		fmt.Fprintf(&b, "%s\t%s\n", h.IP, h.Host)
	}
	return []byte(b.String())
}

// hostMounts are a step's mounts made on the host, to be given to its
// machine as binds (shares in a VM), undone when the step ends.
type hostMounts struct {
	undo []func() error
}

// add mounts m on the host and returns it as the machine's mounts.
func (h *hostMounts) add(ctx context.Context, m executor.Mount) ([]wire.Mount, error) {
	if m.Src == nil {
		return nil, fmt.Errorf("mount %s has no source", m.Dest)
	}
	ref, err := m.Src.Mount(ctx, m.Readonly)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", m.Dest, err)
	}
	mounts, release, err := ref.Mount()
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", m.Dest, err)
	}
	if release != nil {
		h.undo = append(h.undo, release)
	}
	dest := path.Join("/", m.Dest)
	var out []wire.Mount
	for _, mnt := range mounts {
		ro := m.Readonly || mnt.ReadOnly()
		switch mnt.Type {
		case "tmpfs":
			out = append(out, wire.Mount{Type: "tmpfs", Target: dest, ReadOnly: ro, Options: tmpfsOptions(mnt.Options)})
			continue
		case "bind", "rbind":
		default:
			// An overlay (a snapshot with parents): assembled here, bound
			// there.
			lm := snapshot.LocalMounterWithMounts([]mount.Mount{mnt})
			dir, err := lm.Mount()
			if err != nil {
				return nil, fmt.Errorf("mount %s: %w", m.Dest, err)
			}
			h.undo = append(h.undo, lm.Unmount)
			mnt = mount.Mount{Type: "bind", Source: dir}
		}
		src := mnt.Source
		if m.Selector != "" {
			if src, err = fs.RootPath(src, m.Selector); err != nil {
				return nil, fmt.Errorf("mount %s: %w", m.Dest, err)
			}
			if _, err := os.Lstat(src); err != nil {
				return nil, fmt.Errorf("mount %s: %w", m.Dest, err)
			}
		}
		out = append(out, wire.Mount{Type: "bind", Source: src, Target: dest, ReadOnly: ro})
	}
	return out, nil
}

// tmpfsOptions keeps a tmpfs mount's data options (size, mode), dropping
// the flags the agent sets itself.
func tmpfsOptions(opts []string) string {
	var keep []string
	for _, o := range opts {
		switch o {
		case "ro", "rw", "nosuid", "nodev", "noexec", "strictatime", "relatime", "noatime":
			continue
		}
		keep = append(keep, o)
	}
	return strings.Join(keep, ",")
}

func (h *hostMounts) release() {
	for i := len(h.undo) - 1; i >= 0; i-- {
		h.undo[i]()
	}
	h.undo = nil
}
