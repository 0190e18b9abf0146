package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// A step is recorded with, and probed in the cache by, the stage's config
// with a Cmd saying what the step did (dockerd's container_config): the
// functions here make that Cmd as dockerd does, so the cache hits when a
// step would do the same again and misses when its sources, its command
// or a build arg it sees changed.

// nopStep is the record of a step that runs nothing: the stage's shell,
// "#(nop) " and the instruction, as two words the way dockerd's config
// instructions write it, or as one (oneWord) the way its COPY, ADD and
// WORKDIR do.
func nopStep(cfg container.Config, instruction string, oneWord bool) container.Config {
	cmd := slices.Clone(cfg.Shell)
	if len(cmd) == 0 {
		cmd = []string{"/bin/sh", "-c"}
	}
	if oneWord {
		cmd = append(cmd, "#(nop) "+instruction)
	} else {
		cmd = append(cmd, "#(nop) ", instruction)
	}
	cfg.Cmd = cmd
	return cfg
}

// runStepConfig is the record of a RUN of cmd: the command with the build
// args it sees in front (so a changed --build-arg runs it again), and no
// entrypoint, as dockerd probes with.
func runStepConfig(cfg container.Config, cmd, args []string) container.Config {
	cfg.Cmd = withBuildArgs(cmd, args)
	cfg.Entrypoint = nil
	return cfg
}

// withBuildArgs is dockerd's form of a RUN's command with build args:
// "|<n>", the n args sorted as "k=v", then the command ("|" starts no
// command, so none is mistaken for one with args).
func withBuildArgs(cmd, args []string) []string {
	if len(args) == 0 {
		return slices.Clone(cmd)
	}
	sorted := slices.Sorted(slices.Values(args))
	out := append([]string{fmt.Sprintf("|%d", len(sorted))}, sorted...)
	return append(out, cmd...)
}

// copyInstruction is how a COPY or ADD is recorded: its sources by hash,
// its options, its destination as written ("COPY --chown=1:1
// file:<hash> in /app "), as dockerd writes it. --chmod, which dockerd's
// classic builder refuses, is written beside --chown.
func copyInstruction(spec copySpec, sourceHash string) string {
	var opts strings.Builder
	if spec.chown != "" {
		fmt.Fprintf(&opts, "--chown=%s ", spec.chown)
	}
	if spec.chmod != "" {
		fmt.Fprintf(&opts, "--chmod=%s ", spec.chmod)
	}
	return fmt.Sprintf("%s %s%s in %s ", cmdName(spec.add), opts.String(), sourceHash, spec.dest)
}

// sourceHash names the matched sources of a COPY or ADD by content, as
// dockerd does: "file:<sha256>" for a file, "dir:<sha256>" for a
// directory (of its entries' hashes, sorted), "multi:<sha256>" for
// several (of theirs, in order).
func (c *Context) sourceHash(matched []string) string {
	hashes := make([]string, 0, len(matched))
	for _, m := range matched {
		if c.isDir(m) {
			hashes = append(hashes, "dir:"+c.dirHash(m))
		} else {
			hashes = append(hashes, "file:"+c.entryHash(m))
		}
	}
	if len(hashes) == 1 {
		return hashes[0]
	}
	return "multi:" + hashJoined(hashes)
}

func (c *Context) dirHash(dir string) string {
	var sums []string
	if _, listed := c.files[dir]; listed && dir != "." {
		sums = append(sums, c.entryHash(dir))
	}
	for _, rel := range c.under(dir) {
		name := rel
		if dir != "." {
			name = path.Join(dir, rel)
		}
		sums = append(sums, c.entryHash(name))
	}
	slices.Sort(sums)
	return hashJoined(sums)
}

// entryHash is one entry's hash: its path in the context, type, mode,
// owner and link target, then its content (a hard link's, its target's).
// The modification time is left out, as dockerd leaves it out: a file
// touched but unchanged keeps the cache.
func (c *Context) entryHash(name string) string {
	e := c.resolve(c.files[name])
	h := sha256.New()
	hd := e.hdr
	fmt.Fprintf(h, "%s\x00%c\x00%o\x00%d:%d\x00%s:%s\x00%s\x00%d\x00", name, hd.Typeflag, hd.Mode, hd.Uid, hd.Gid, hd.Uname, hd.Gname, hd.Linkname, len(e.data))
	h.Write(e.data)
	return hex.EncodeToString(h.Sum(nil))
}

func hashJoined(parts []string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, ",")))
	return hex.EncodeToString(sum[:])
}
