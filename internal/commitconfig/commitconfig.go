// Package commitconfig makes the config of an image that docker commit or
// docker import creates: the `--change` Dockerfile instructions applied
// as dockerd's BuildFromConfig applies them (parsed by BuildKit's
// Dockerfile parser, as dockerd does), and the container's config merged
// in as dockerd's commit merges it.
package commitconfig

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/sys/signal"
)

// validCommit are the instructions dockerd accepts as changes.
var validCommit = map[string]bool{
	"cmd": true, "entrypoint": true, "healthcheck": true, "env": true, "expose": true,
	"label": true, "onbuild": true, "stopsignal": true, "user": true, "volume": true, "workdir": true,
}

// InvalidError is a change that cannot be applied: the request's fault.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return &InvalidError{Err: fmt.Errorf(format, args...)}
}

// Apply applies changes (one instruction each, as `docker commit -c`
// sends them) to cfg, in order. Every error is an *InvalidError.
func Apply(cfg *container.Config, changes []string) error {
	if len(changes) == 0 {
		return nil
	}
	res, err := parser.Parse(strings.NewReader(strings.Join(changes, "\n")))
	if err != nil {
		return &InvalidError{Err: err}
	}
	var cmds []any
	for _, n := range res.AST.Children {
		if !validCommit[strings.ToLower(n.Value)] {
			return invalid("%s is not a valid change command", n.Value)
		}
		c, err := instructions.ParseInstruction(n)
		if err != nil {
			return &InvalidError{Err: err}
		}
		cmds = append(cmds, c)
	}
	lex := shell.NewLex(res.EscapeToken)
	cmdSet := false
	for _, c := range cmds {
		if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
			err := ex.Expand(func(word string) (string, error) {
				out, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(cfg.Env))
				return out, err
			})
			if err != nil {
				return &InvalidError{Err: err}
			}
		}
		if err := apply(cfg, c, &cmdSet); err != nil {
			return err
		}
	}
	return nil
}

func apply(cfg *container.Config, c any, cmdSet *bool) error {
	shellCmd := func(line instructions.ShellDependantCmdLine) []string {
		if !line.PrependShell {
			return slices.Clone(line.CmdLine)
		}
		sh := cfg.Shell
		if len(sh) == 0 {
			sh = []string{"/bin/sh", "-c"}
		}
		return append(slices.Clone(sh), line.CmdLine...)
	}
	switch c := c.(type) {
	case *instructions.CmdCommand:
		cfg.Cmd, *cmdSet = shellCmd(c.ShellDependantCmdLine), true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = shellCmd(c.ShellDependantCmdLine)
		if !*cmdSet {
			cfg.Cmd = nil // an ENTRYPOINT resets the CMD it did not come with
		}
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		for _, spec := range c.Ports {
			for _, s := range strings.Fields(spec) {
				r, err := network.ParsePortRange(s)
				if err != nil {
					return invalid("invalid port %q: %v", s, err)
				}
				for p := range r.All() {
					cfg.ExposedPorts[p] = struct{}{}
				}
			}
		}
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v = strings.TrimSpace(v); v == "" {
				return invalid("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.WorkdirCommand:
		p := c.Path
		if !path.IsAbs(p) {
			p = path.Join("/", cfg.WorkingDir, p)
		}
		cfg.WorkingDir = p
	case *instructions.StopSignalCommand:
		if _, err := signal.ParseSignal(c.Signal); err != nil {
			return &InvalidError{Err: err}
		}
		cfg.StopSignal = c.Signal
	case *instructions.HealthCheckCommand:
		h := c.Health
		cfg.Healthcheck = &container.HealthConfig{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod,
			StartInterval: h.StartInterval, Retries: h.Retries,
		}
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	default:
		return invalid("%T is not a valid change command", c)
	}
	return nil
}

// setEnv sets key in env, in place of an existing entry.
func setEnv(env []string, key, value string) []string {
	kv := key + "=" + value
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env = slices.Clone(env)
			env[i] = kv
			return env
		}
	}
	return append(slices.Clone(env), kv)
}

// Merge fills what user leaves unset from ctr, the committed container's
// config, as dockerd's commit does (daemon/commit.go merge).
func Merge(user, ctr *container.Config) {
	if user.User == "" {
		user.User = ctr.User
	}
	if len(user.ExposedPorts) == 0 {
		user.ExposedPorts = ctr.ExposedPorts
	} else {
		for p := range ctr.ExposedPorts {
			user.ExposedPorts[p] = struct{}{}
		}
	}
	if len(user.Env) == 0 {
		user.Env = ctr.Env
	} else {
		for _, e := range ctr.Env {
			k, _, _ := strings.Cut(e, "=")
			if !slices.ContainsFunc(user.Env, func(u string) bool { uk, _, _ := strings.Cut(u, "="); return uk == k }) {
				user.Env = append(user.Env, e)
			}
		}
	}
	if user.Labels == nil {
		user.Labels = map[string]string{}
	}
	for k, v := range ctr.Labels {
		if _, ok := user.Labels[k]; !ok {
			user.Labels[k] = v
		}
	}
	if len(user.Entrypoint) == 0 {
		if len(user.Cmd) == 0 {
			user.Cmd, user.ArgsEscaped = ctr.Cmd, ctr.ArgsEscaped
		}
		if user.Entrypoint == nil {
			user.Entrypoint = ctr.Entrypoint
		}
	}
	if h := ctr.Healthcheck; h != nil {
		if user.Healthcheck == nil {
			user.Healthcheck = h
		} else {
			u := user.Healthcheck
			if len(u.Test) == 0 {
				u.Test = h.Test
			}
			if u.Interval == 0 {
				u.Interval = h.Interval
			}
			if u.Timeout == 0 {
				u.Timeout = h.Timeout
			}
			if u.StartPeriod == 0 {
				u.StartPeriod = h.StartPeriod
			}
			if u.StartInterval == 0 {
				u.StartInterval = h.StartInterval
			}
			if u.Retries == 0 {
				u.Retries = h.Retries
			}
		}
	}
	if user.WorkingDir == "" {
		user.WorkingDir = ctr.WorkingDir
	}
	if len(user.Volumes) == 0 {
		user.Volumes = ctr.Volumes
	} else {
		for k, v := range ctr.Volumes {
			user.Volumes[k] = v
		}
	}
	if user.StopSignal == "" {
		user.StopSignal = ctr.StopSignal
	}
	if user.OnBuild == nil {
		user.OnBuild = ctr.OnBuild
	}
	if user.Shell == nil {
		user.Shell = ctr.Shell
	}
}

// ImageConfig is cfg as an image's config holds it.
func ImageConfig(cfg *container.Config) dockerspec.DockerOCIImageConfig {
	var out dockerspec.DockerOCIImageConfig
	out.User = cfg.User
	if len(cfg.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for p := range cfg.ExposedPorts {
			out.ExposedPorts[p.String()] = struct{}{}
		}
	}
	out.Env = cfg.Env
	out.Entrypoint = cfg.Entrypoint
	out.Cmd = cfg.Cmd
	out.Volumes = cfg.Volumes
	out.WorkingDir = cfg.WorkingDir
	out.Labels = cfg.Labels
	out.StopSignal = cfg.StopSignal
	out.ArgsEscaped = cfg.ArgsEscaped
	out.OnBuild = cfg.OnBuild
	out.Shell = cfg.Shell
	if h := cfg.Healthcheck; h != nil {
		out.Healthcheck = &dockerspec.HealthcheckConfig{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod,
			StartInterval: h.StartInterval, Retries: h.Retries,
		}
	}
	return out
}

// Instruction applies one parsed config instruction (CMD, ENV, LABEL…,
// as Apply accepts them) to cfg, for a build's step; cmdSet tells an
// ENTRYPOINT whether the same build set the CMD. Errors are *InvalidError.
func Instruction(cfg *container.Config, c any, cmdSet *bool) error {
	return apply(cfg, c, cmdSet)
}

// FromImage is an image's config as a container config, the start of a
// build stage.
func FromImage(img dockerspec.DockerOCIImageConfig) container.Config {
	cfg := container.Config{
		User: img.User, Env: slices.Clone(img.Env), Entrypoint: slices.Clone(img.Entrypoint),
		Cmd: slices.Clone(img.Cmd), WorkingDir: img.WorkingDir, StopSignal: img.StopSignal,
		ArgsEscaped: img.ArgsEscaped, OnBuild: slices.Clone(img.OnBuild), Shell: slices.Clone(img.Shell),
	}
	if len(img.Labels) > 0 {
		cfg.Labels = map[string]string{}
		for k, v := range img.Labels {
			cfg.Labels[k] = v
		}
	}
	if len(img.Volumes) > 0 {
		cfg.Volumes = map[string]struct{}{}
		for k := range img.Volumes {
			cfg.Volumes[k] = struct{}{}
		}
	}
	for p := range img.ExposedPorts {
		if port, err := network.ParsePort(p); err == nil {
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = network.PortSet{}
			}
			cfg.ExposedPorts[port] = struct{}{}
		}
	}
	if h := img.Healthcheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod,
			StartInterval: h.StartInterval, Retries: h.Retries,
		}
	}
	return cfg
}
