// Package builder is the classic builder of POST /build: a Dockerfile,
// parsed by BuildKit's parser as dockerd parses it, run step by step.
// Every RUN is a container of the daemon's (a machine with its agent),
// committed as a layer; COPY and ADD make their layer from the context
// here. The daemon's actors are reached through Backend, so the step
// loop runs on the caller's goroutine and never in an actor's mailbox.
package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/internal/commitconfig"
)

// Backend is what a build needs of the daemon.
type Backend interface {
	// Image finds name locally, pulling it when absent (or always, with
	// pull); it answers the image ID and its config.
	Image(ctx context.Context, name string, pull bool, out *Output) (string, container.Config, error)
	// Run creates a container of cfg (cfg.Image set), tells created its
	// ID, starts it, copies its output to out and waits for it to exit.
	// The container is left for Commit and RemoveContainer.
	Run(ctx context.Context, cfg *container.Config, created func(id string), out io.Writer) (code int64, err error)
	// Commit makes an image of parent plus the container's writable
	// layer, with cfg as its config. step is the config the step is
	// recorded with (dockerd's container_config, its Cmd what the step
	// did): the image's cache key, and its history line.
	Commit(ctx context.Context, containerID, parent string, cfg, step container.Config) (string, error)
	// AddLayer makes an image of parent (none: "") plus layer (nil: no
	// layer), with cfg as its config and step as Commit records it.
	AddLayer(ctx context.Context, parent string, layer io.Reader, cfg, step container.Config) (string, error)
	// CachedImage is the newest image made from parent by a step
	// recorded with a config that matches step, or "" (dockerd's local
	// image cache).
	CachedImage(ctx context.Context, parent string, step container.Config) (string, error)
	// ImageFiles calls fn with a tar of each of paths (absolute) in the
	// image, as docker cp makes one: the entries named from the path's
	// last element.
	ImageFiles(ctx context.Context, image string, paths []string, fn func(path string, tar io.Reader) error) error
	RemoveContainer(ctx context.Context, id string) error
	Tag(ctx context.Context, id, ref string) error
}

// Options are POST /build's parameters.
type Options struct {
	Dockerfile  string             // path in the context; "" is Dockerfile
	Tags        []string           // normalized references
	BuildArgs   map[string]*string // --build-arg
	Labels      map[string]string  // --label, on the final image
	Target      string
	Pull        bool
	NoCache     bool // build every step, probing no cache
	Remove      bool // remove RUN containers once committed
	ForceRemove bool // and also after a failure
}

// Error is a build failure caused by the Dockerfile or the context (the
// request's fault), as opposed to the daemon's.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func userError(format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...)}
}

// builder is one build's state.
type builder struct {
	be     Backend
	bctx   *Context
	opt    Options
	out    *Output
	lex    *shell.Lex
	meta   map[string]string // ARGs before the first FROM, with --build-arg
	step   int
	steps  int
	stages map[string]string // stage name (lower case) or index: image ID
}

// stage is the state of one stage's steps.
type stage struct {
	id     string
	cfg    container.Config
	args   map[string]string // declared ARGs, as RUN sees them
	argSeq []string
	cmdSet bool
	// cacheBusted is set at the stage's first cache miss: as on dockerd,
	// every later step of the stage is built.
	cacheBusted bool
}

// Build runs the Dockerfile of bctx and tags the result; it answers the
// image ID. Progress, RUN output and the image ID go to out; the caller
// writes the error.
func Build(ctx context.Context, be Backend, bctx *Context, opt Options, out *Output) (id string, err error) {
	name := opt.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	df, ok := bctx.File(name)
	if !ok {
		return "", userError("Cannot locate specified Dockerfile: %s", name)
	}
	if err := bctx.Ignore(name); err != nil {
		return "", &Error{Err: err}
	}
	res, err := parser.Parse(bytes.NewReader(df))
	if err != nil {
		return "", &Error{Err: err}
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return "", &Error{Err: err}
	}
	if len(stages) == 0 {
		return "", userError("file with no instructions")
	}
	last := len(stages) - 1
	if opt.Target != "" {
		i := slices.IndexFunc(stages, func(s instructions.Stage) bool { return strings.EqualFold(s.Name, opt.Target) })
		if i < 0 {
			return "", userError("failed to reach build target %s in Dockerfile", opt.Target)
		}
		last = i
	}
	stages = stages[:last+1]
	b := &builder{be: be, bctx: bctx, opt: opt, out: out, lex: shell.NewLex(res.EscapeToken), meta: map[string]string{}, stages: map[string]string{}}
	for _, s := range stages {
		b.steps += 1 + len(s.Commands)
	}
	for _, a := range metaArgs {
		if err := a.Expand(b.expander(envOf(b.meta))); err != nil {
			return "", &Error{Err: err}
		}
		for _, kv := range a.Args {
			if v, ok := opt.BuildArgs[kv.Key]; ok && v != nil {
				b.meta[kv.Key] = *v
			} else if kv.Value != nil {
				b.meta[kv.Key] = *kv.Value
			}
		}
	}
	var st *stage
	for i, s := range stages {
		if st, err = b.from(ctx, s); err != nil {
			return "", err
		}
		for _, c := range s.Commands {
			if err := b.dispatch(ctx, st, c); err != nil {
				return "", err
			}
			if err := out.Gone(); err != nil {
				return "", fmt.Errorf("client went away: %w", err)
			}
		}
		b.stages[fmt.Sprint(i)] = st.id
		if s.Name != "" {
			b.stages[strings.ToLower(s.Name)] = st.id
		}
	}
	if len(opt.Labels) > 0 {
		if st.cfg.Labels == nil {
			st.cfg.Labels = map[string]string{}
		}
		keys := make([]string, 0, len(opt.Labels))
		for k, v := range opt.Labels {
			st.cfg.Labels[k] = v
			keys = append(keys, k+"="+v)
		}
		slices.Sort(keys)
		if err := b.configStep(ctx, st, "LABEL "+strings.Join(keys, " ")); err != nil {
			return "", err
		}
	}
	if st.id == "" {
		// FROM scratch and nothing else: an image of no layers.
		if err := b.configStep(ctx, st, ""); err != nil {
			return "", err
		}
	}
	out.Aux(st.id)
	out.Stream("Successfully built " + short(st.id) + "\n")
	for _, t := range opt.Tags {
		if err := be.Tag(ctx, st.id, t); err != nil {
			return "", err
		}
		out.Stream("Successfully tagged " + familiar(t) + "\n")
	}
	return st.id, nil
}

func (b *builder) printStep(code string) {
	b.step++
	b.out.Stream(fmt.Sprintf("Step %d/%d : %s\n", b.step, b.steps, code))
}

func (b *builder) expander(env []string) instructions.SingleWordExpander {
	return func(word string) (string, error) {
		out, _, err := b.lex.ProcessWord(word, shell.EnvsFromSlice(env))
		return out, err
	}
}

func envOf(m map[string]string) []string {
	var env []string
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// from starts a stage: an earlier stage's image, scratch, or an image
// found or pulled.
func (b *builder) from(ctx context.Context, s instructions.Stage) (*stage, error) {
	b.printStep(s.SourceCode)
	base, err := b.expander(envOf(b.meta))(s.BaseName)
	if err != nil {
		return nil, &Error{Err: err}
	}
	st := &stage{args: map[string]string{}}
	switch {
	case b.stages[strings.ToLower(base)] != "":
		st.id = b.stages[strings.ToLower(base)]
		if _, st.cfg, err = b.be.Image(ctx, st.id, false, b.out); err != nil {
			return nil, err
		}
	case base == "scratch":
		b.out.Stream(" ---> \n")
		return st, nil
	default:
		if st.id, st.cfg, err = b.be.Image(ctx, base, b.opt.Pull, b.out); err != nil {
			return nil, err
		}
	}
	b.out.Stream(" ---> " + short(st.id) + "\n")
	if triggers := st.cfg.OnBuild; len(triggers) > 0 {
		st.cfg.OnBuild = nil
		plural := ""
		if len(triggers) > 1 {
			plural = "s"
		}
		b.out.Stream(fmt.Sprintf("# Executing %d build trigger%s\n", len(triggers), plural))
		for _, t := range triggers {
			res, err := parser.Parse(strings.NewReader(t))
			if err != nil {
				return nil, &Error{Err: err}
			}
			for _, n := range res.AST.Children {
				c, err := instructions.ParseCommand(n)
				if err != nil {
					return nil, &Error{Err: err}
				}
				if err := b.run1(ctx, st, c); err != nil {
					return nil, err
				}
			}
		}
	}
	return st, nil
}

// dispatch runs one step and prints its progress.
func (b *builder) dispatch(ctx context.Context, st *stage, c instructions.Command) error {
	b.printStep(code(c))
	if err := b.run1(ctx, st, c); err != nil {
		return err
	}
	b.out.Stream(" ---> " + short(st.id) + "\n")
	return nil
}

// env is what words expand against and RUN sees: the stage's ENV, then
// its ARGs.
func (st *stage) env() []string {
	return append(slices.Clone(st.cfg.Env), st.runArgs()...)
}

// runArgs are the stage's ARGs with a value as "k=v", in the order
// declared, less those its ENV sets (ENV wins).
func (st *stage) runArgs() []string {
	var args []string
	for _, k := range st.argSeq {
		if !slices.ContainsFunc(st.cfg.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") }) {
			args = append(args, k+"="+st.args[k])
		}
	}
	return args
}

func (b *builder) run1(ctx context.Context, st *stage, c instructions.Command) error {
	if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(b.expander(st.env())); err != nil {
			return &Error{Err: err}
		}
	}
	switch c := c.(type) {
	case *instructions.RunCommand:
		return b.runStep(ctx, st, c)
	case *instructions.CopyCommand:
		spec := copySpec{srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown, chmod: c.Chmod}
		if c.From != "" {
			return b.copyFrom(ctx, st, c.From, spec)
		}
		return b.copyStep(ctx, b.bctx, st, spec)
	case *instructions.AddCommand:
		return b.copyStep(ctx, b.bctx, st, copySpec{srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown, chmod: c.Chmod, add: true})
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			v, given := b.opt.BuildArgs[kv.Key]
			switch {
			case given && v != nil:
				st.args[kv.Key] = *v
			case kv.Value != nil:
				st.args[kv.Key] = *kv.Value
			default:
				mv, ok := b.meta[kv.Key]
				if !ok {
					continue
				}
				st.args[kv.Key] = mv
			}
			if !slices.Contains(st.argSeq, kv.Key) {
				st.argSeq = append(st.argSeq, kv.Key)
			}
		}
		return b.configStep(ctx, st, code(c))
	case *instructions.ShellCommand:
		st.cfg.Shell = slices.Clone(c.Shell)
		return b.configStep(ctx, st, code(c))
	case *instructions.MaintainerCommand:
		return b.configStep(ctx, st, code(c))
	default:
		if err := commitconfig.Instruction(&st.cfg, c, &st.cmdSet); err != nil {
			var inv *commitconfig.InvalidError
			if errors.As(err, &inv) {
				return userError("%s: %v", c.Name(), inv.Err)
			}
			return err
		}
		if _, ok := c.(*instructions.WorkdirCommand); ok {
			// dockerd records the directory as resolved, in its older
			// one-word form.
			return b.nopImage(ctx, st, nopStep(st.cfg, "WORKDIR "+st.cfg.WorkingDir, true))
		}
		return b.configStep(ctx, st, code(c))
	}
}

// code is an instruction's source text.
func code(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

// configStep makes (or finds in the cache) the image of a step that only
// changes the config; instruction is what it records.
func (b *builder) configStep(ctx context.Context, st *stage, instruction string) error {
	return b.nopImage(ctx, st, nopStep(st.cfg, instruction, false))
}

// nopImage is the image of a step with no layer, recorded as step.
func (b *builder) nopImage(ctx context.Context, st *stage, step container.Config) error {
	if hit, err := b.probe(ctx, st, step); err != nil || hit {
		return err
	}
	id, err := b.be.AddLayer(ctx, st.id, nil, st.cfg, step)
	if err != nil {
		return err
	}
	st.id = id
	return nil
}

// probe is dockerd's cache probe before a step: an image made from the
// current one by a step recorded as step becomes the current one, and the
// progress says " ---> Using cache". --no-cache, a miss earlier in the
// stage and FROM scratch (no image whose children could match, as on
// dockerd) build the step instead.
func (b *builder) probe(ctx context.Context, st *stage, step container.Config) (bool, error) {
	if b.opt.NoCache || st.cacheBusted || st.id == "" {
		st.cacheBusted = true
		return false, nil
	}
	id, err := b.be.CachedImage(ctx, st.id, step)
	if err != nil {
		return false, err
	}
	if id == "" {
		st.cacheBusted = true
		return false, nil
	}
	b.out.Stream(" ---> Using cache\n")
	st.id = id
	return true, nil
}

// copyFrom is COPY --from: the files of an earlier stage's image (by
// name or index) or of an image, read by an agent, copied as from the
// context.
func (b *builder) copyFrom(ctx context.Context, st *stage, from string, spec copySpec) error {
	img := b.stages[strings.ToLower(from)]
	if img == "" {
		id, _, err := b.be.Image(ctx, from, false, b.out)
		if err != nil {
			return err
		}
		img = id
	}
	var paths []string
	for i, s := range spec.srcs {
		if strings.ContainsAny(s, "*?[") {
			return userError("COPY --from=%s %s: wildcards in a source of another image are not supported by Arca yet", from, s)
		}
		p := path.Join("/", s)
		paths = append(paths, p)
		spec.srcs[i] = p
	}
	files := &Context{files: map[string]*entry{}}
	err := b.be.ImageFiles(ctx, img, paths, func(p string, tr io.Reader) error {
		c, err := ReadContext(tr)
		if err != nil {
			return err
		}
		dir := clean(path.Dir(p))
		for name, e := range c.files {
			n := clean(path.Join(dir, name))
			e.hdr.Name = n
			if e.hdr.Typeflag == tar.TypeLink {
				e.hdr.Linkname = clean(path.Join(dir, e.hdr.Linkname))
			}
			files.files[n] = e
		}
		return nil
	})
	if err != nil {
		return err
	}
	return b.copyStep(ctx, files, st, spec)
}

// copyStep is a COPY or ADD of files: the sources' hash in the step's
// Cmd decides whether the cache has it, as on dockerd (whose files of
// another image are read for the hash too).
func (b *builder) copyStep(ctx context.Context, files *Context, st *stage, spec copySpec) error {
	spec.workdir = st.cfg.WorkingDir
	matched, err := files.sources(spec)
	if err != nil {
		return &Error{Err: err}
	}
	step := nopStep(st.cfg, copyInstruction(spec, files.sourceHash(matched)), true)
	if hit, err := b.probe(ctx, st, step); err != nil || hit {
		return err
	}
	layer, err := files.layer(spec, matched)
	if err != nil {
		return &Error{Err: err}
	}
	id, err := b.be.AddLayer(ctx, st.id, bytes.NewReader(layer), st.cfg, step)
	if err != nil {
		return err
	}
	st.id = id
	return nil
}

// runCmd is a RUN's command line: the shell form through the stage's
// SHELL (by default /bin/sh -c).
func runCmd(cfg *container.Config, c *instructions.RunCommand) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	sh := cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
}

func (b *builder) runStep(ctx context.Context, st *stage, c *instructions.RunCommand) error {
	if st.id == "" {
		return userError("RUN in an empty (scratch) image: there is nothing to run")
	}
	if len(c.FlagsUsed) > 0 {
		return userError("RUN --%s is not supported by the classic builder", c.FlagsUsed[0])
	}
	cmd := runCmd(&st.cfg, c)
	step := runStepConfig(st.cfg, cmd, st.runArgs())
	if hit, err := b.probe(ctx, st, step); err != nil || hit {
		return err
	}
	rc := st.cfg
	rc.Image = st.id
	rc.Cmd = cmd
	rc.Entrypoint = []string{""} // none, not the image's
	rc.Env = st.env()
	rc.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	rc.AttachStdout, rc.AttachStderr = true, true
	var ctrID string
	code, err := b.be.Run(ctx, &rc, func(id string) {
		ctrID = id
		b.out.Stream(" ---> Running in " + short(id) + "\n")
	}, b.out.Writer())
	failed := err != nil || code != 0
	if ctrID != "" && (b.opt.ForceRemove || (failed && b.opt.Remove)) {
		defer b.removeContainer(ctx, ctrID)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &Error{Err: fmt.Errorf("The command '%s' returned a non-zero code: %d", strings.Join(cmd, " "), code)}
	}
	id, err := b.be.Commit(ctx, ctrID, st.id, st.cfg, step)
	if err != nil {
		return err
	}
	st.id = id
	if b.opt.Remove && !b.opt.ForceRemove {
		b.removeContainer(ctx, ctrID)
	}
	return nil
}

func (b *builder) removeContainer(ctx context.Context, id string) {
	if err := b.be.RemoveContainer(ctx, id); err == nil {
		b.out.Stream("Removing intermediate container " + short(id) + "\n")
	}
}

// short is an ID as docker shows it: 12 hex digits.
func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// familiar is a normalized reference as docker shows it.
func familiar(ref string) string {
	ref = strings.TrimPrefix(ref, "docker.io/")
	return strings.TrimPrefix(ref, "library/")
}
