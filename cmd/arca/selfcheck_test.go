package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSelfCheckRunner: steps run in order, one whose needs did not pass
// is skipped, a failure's error is printed under its line, what the steps
// made is undone last first (a failed undo is a line of its own), and the
// summary counts it all.
func TestSelfCheckRunner(t *testing.T) {
	var undone []string
	undo := func(name string, err error) func(context.Context) error {
		return func(context.Context) error { undone = append(undone, name); return err }
	}
	steps := []checkStep{
		{name: "first", run: func(ctx context.Context, c *selfCheck) (string, error) {
			c.later(undo("first", nil))
			return "fine", nil
		}},
		{name: "broken", needs: []string{"first"}, run: func(ctx context.Context, c *selfCheck) (string, error) {
			c.later(undo("broken", errors.New("network rm x: in use")))
			return "", errors.New("docker run: exit status 125:\nError: no such image")
		}},
		{name: "after", needs: []string{"broken"}, run: func(ctx context.Context, c *selfCheck) (string, error) {
			t.Error("a step whose need failed ran")
			return "", nil
		}},
		{name: "slow", needs: []string{"first"}, timeout: 50 * time.Millisecond, run: func(ctx context.Context, c *selfCheck) (string, error) {
			<-ctx.Done()
			return "", ctx.Err()
		}},
		{name: "last", needs: []string{"first"}, run: func(ctx context.Context, c *selfCheck) (string, error) {
			c.later(undo("last", nil))
			return "", nil
		}},
	}
	c := newSelfCheck(dockerCLI{}, "busybox")
	if !regexp.MustCompile(`^arca-check-[0-9a-f]{6}$`).MatchString(c.prefix) || c.name("a") != c.prefix+"-a" {
		t.Errorf("names %q %q", c.prefix, c.name("a"))
	}
	var out bytes.Buffer
	rs := c.runSteps(context.Background(), &out, steps)

	var got []string
	for _, r := range rs {
		got = append(got, r.name+"="+r.status.String())
	}
	want := []string{"first=OK", "broken=FAIL", "after=SKIP", "slow=FAIL", "last=OK", "cleanup=FAIL"}
	if !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if !slices.Equal(undone, []string{"last", "broken", "first"}) {
		t.Errorf("undone in order %v, want the last made first", undone)
	}
	if rs[3].err == nil || !strings.Contains(rs[3].err.Error(), "ran out") {
		t.Errorf("a step past its time: %v", rs[3].err)
	}

	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	for i, re := range []string{
		`^OK    first    +\d+\.\d\ds  fine$`,
		`^FAIL  broken   +\d+\.\d\ds$`,
		`^ {24}docker run: exit status 125:$`,
		`^ {24}Error: no such image$`,
		`^SKIP  after +needs broken$`,
		`^FAIL  slow +\d+\.\d\ds$`,
		`^ {24}context deadline exceeded \(the step's 50ms ran out\)$`,
		`^OK    last +\d+\.\d\ds$`,
		`^FAIL  cleanup +remove what is left: .*` + c.prefix + `-\*$`,
		`^ {24}network rm x: in use$`,
	} {
		if i >= len(lines) || !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("report line %d does not match %s:\n%s", i, re, out.String())
			break
		}
	}

	var sum bytes.Buffer
	if !writeSummary(&sum, rs, 83*time.Second) || sum.String() != "\n6 steps: 2 OK, 3 FAIL, 1 SKIP in 83.0s\n" {
		t.Errorf("summary %q", sum.String())
	}
	sum.Reset()
	if writeSummary(&sum, rs[:1], 1500*time.Millisecond) || !strings.Contains(sum.String(), "1 steps: 1 OK, 0 FAIL, 0 SKIP in 1.50s") {
		t.Errorf("summary of a pass %q", sum.String())
	}
}

// An interrupted run (Ctrl-C) skips what is left and still undoes what
// was made.
func TestSelfCheckInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	undone := false
	steps := []checkStep{
		{name: "a", run: func(ctx context.Context, c *selfCheck) (string, error) {
			c.later(func(ctx context.Context) error {
				if ctx.Err() != nil {
					t.Error("cleanup ran on the cancelled context")
				}
				undone = true
				return nil
			})
			cancel()
			return "", nil
		}},
		{name: "b", run: func(ctx context.Context, c *selfCheck) (string, error) {
			t.Error("ran after interrupt")
			return "", nil
		}},
	}
	var out bytes.Buffer
	rs := newSelfCheck(dockerCLI{}, "x").runSteps(ctx, &out, steps)
	if len(rs) != 2 || rs[1].status != stepSkip || rs[1].detail != "interrupted" || !undone {
		t.Errorf("results %+v, undone %v", rs, undone)
	}
}

func TestWriteHeader(t *testing.T) {
	var b bytes.Buffer
	writeHeader(&b, reportHeader{when: time.Date(2026, 12, 7, 4, 5, 6, 0, time.UTC), arca: "0.1.0 (commit x)", host: "macOS 14.5 (23F79), Apple M2, 8 cores, 16.0 GiB memory", docker: "docker 28.2.2, context arca", image: "busybox"})
	want := `arca self-check
date     2026-12-07 04:05:06 UTC
arca     0.1.0 (commit x)
host     macOS 14.5 (23F79), Apple M2, 8 cores, 16.0 GiB memory
docker   docker 28.2.2, context arca
image    busybox
`
	if b.String() != want {
		t.Errorf("header\n%s\nwant\n%s", b.String(), want)
	}
	if got := formatHost("Debian 12", "kernel 6.1", "", 2, 8<<30); got != "Debian 12, kernel 6.1, 2 cores, 8.0 GiB memory" {
		t.Errorf("host %q", got)
	}
	if got := hostSummary(); !strings.Contains(got, "cores") {
		t.Errorf("this host: %q", got)
	}
}

// The docker CLI's errors name the command and end with what it printed.
func TestDockerCLIErrors(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "docker")
	script := "#!/bin/sh\n[ \"$1 $2\" = '--host unix:///s' ] || { echo bad global args: $@ >&2; exit 9; }\n" +
		"[ \"$3\" = ok ] && { echo '  fine  '; exit 0; }\n" +
		"for i in 1 2 3 4 5 6 7 8; do echo line$i >&2; done; exit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := dockerCLI{path: fake, global: []string{"--host", "unix:///s"}}
	if out, err := d.run(context.Background(), "ok"); err != nil || out != "fine" {
		t.Errorf("ok: %q %v", out, err)
	}
	_, err := d.run(context.Background(), "run", "x")
	if err == nil || !strings.HasPrefix(err.Error(), "docker run x: exit status 3: ...\nline3\n") || !strings.HasSuffix(err.Error(), "line8") {
		t.Errorf("error %v", err)
	}
}

func TestSelfCheckParsing(t *testing.T) {
	if got := imageSummary("sha256:0123456789abcdef0123 arm64\n"); got != "0123456789ab arm64" {
		t.Errorf("image %q", got)
	}
	if got := pingedAddr("PING arca-check-1-b (10.0.1.3): 56 data bytes\n64 bytes from 10.0.1.3"); got != " (10.0.1.3)" {
		t.Errorf("ping %q", got)
	}
	if got := pingedAddr("nothing"); got != "" {
		t.Errorf("ping without an address %q", got)
	}
	steps := selfCheckSteps()
	var names []string
	for i, s := range steps {
		names = append(names, s.name)
		for _, n := range s.needs {
			if !slices.Contains(names[:i], n) {
				t.Errorf("step %s needs %s, which does not come before it", s.name, n)
			}
		}
	}
	if !slices.Equal(names, []string{"daemon", "pull", "run", "exec", "network", "volume", "block", "port"}) {
		t.Errorf("steps %v", names)
	}
}
