package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// TestBuildxDockerContainer drives buildx's docker-container builder the
// way the seed project's builder script makes it (`--driver-opt
// network=host --driver-opt default-load=true`, `--use`): buildkitd runs in
// a privileged Arca container of a BuildKit image the test imports (from
// make buildkit-image), buildx reaches it through `docker exec buildctl
// dial-stdio`, each RUN step is a runc container nested in it, the base
// image comes from the test registry (the builder pulls it itself, over
// its host network: the host's loopback is host.docker.internal there),
// and `--load` hands the result to Arca. buildx rm removes the container
// and its state volume.
func TestBuildxDockerContainer(t *testing.T) {
	checkBuildxDockerContainer(t, testenv.SharedDaemon(t))
}

// checkBuildxDockerContainer is TestBuildxDockerContainer on d (the qemu
// test runs it in VMs).
func checkBuildxDockerContainer(t *testing.T, d *testenv.Daemon) {
	t.Helper()
	if r := d.Docker(t, "buildx", "version"); r.Code != 0 {
		t.Fatalf("the docker buildx plugin is missing (make buildx builds it; make test does so first): %s", r.Stderr)
	}
	rootfs := testenv.BuildkitRootfs(t)
	name := strings.ToLower(testenv.Name(t))
	bkImage := "arca-test/buildkit:" + name
	imp := []string{"import"}
	for _, c := range testenv.BuildkitImageCommand {
		imp = append(imp, "-c", c)
	}
	d.DockerCmd(t, testenv.Cmd{Timeout: 5 * time.Minute}, append(imp, rootfs, bkImage)...).Must(t)
	defer d.Docker(t, "rmi", bkImage)

	// FROM names the test registry as the builder reaches it.
	base := testenv.SharedBusybox(t).Ref
	registry, _, _ := strings.Cut(base, "/")
	fromHost := strings.Replace(registry, "127.0.0.1:", "host.docker.internal:", 1)
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("buildkitd.toml", fmt.Sprintf("[registry.%q]\n  http = true\n", fromHost))
	write("Dockerfile", "FROM "+fromHost+strings.TrimPrefix(base, registry)+"\n"+
		"RUN echo \"made by RUN in $(hostname)\" > /made.txt\n"+
		"CMD [\"cat\", \"/made.txt\"]\n")

	// buildx keeps its builders, and which one is in use, in the CLI's
	// config: a config of the test's own, so that --use changes nothing
	// for other tests of the shared daemon.
	buildx := buildxConfig(t)
	builder := name
	ctr := "buildx_buildkit_" + builder + "0"
	d.DockerCmd(t, buildx, "buildx", "create", "--name", builder, "--driver", "docker-container",
		"--driver-opt", "image="+bkImage, "--driver-opt", "network=host", "--driver-opt", "default-load=true",
		"--buildkitd-config", filepath.Join(dir, "buildkitd.toml"), "--use").Must(t)
	removed := false
	defer func() {
		if !removed {
			d.DockerCmd(t, buildx, "buildx", "rm", "--force", builder)
		}
	}()

	tag := name + ":built"
	slow := buildx
	slow.Timeout = 5 * time.Minute
	if r := d.DockerCmd(t, slow, "buildx", "build", "--progress=plain", "--load", "-t", tag, dir); r.Code != 0 {
		// What the builder saw, for a failure that is not the build's.
		logs := d.Docker(t, "logs", "--tail", "50", ctr)
		reach := d.Docker(t, "exec", ctr, "sh", "-c", "cat /etc/hosts /etc/resolv.conf; ip addr; timeout 10 wget -q -O - http://"+fromHost+"/v2/; echo \" wget: $?\"")
		t.Fatalf("buildx build: exit %d\n%s\nbuilder logs:\n%s%s\nfrom the builder:\n%s%s", r.Code, r.Stderr, logs.Stdout, logs.Stderr, reach.Stdout, reach.Stderr)
	}
	defer d.Docker(t, "rmi", tag)
	if out := d.Docker(t, "run", "--rm", tag).Must(t).Stdout; out != "made by RUN in buildkitsandbox\n" {
		t.Errorf("docker run of the built image: %q", out)
	}
	got := d.Docker(t, "inspect", "--format", "{{.HostConfig.Privileged}} {{.HostConfig.NetworkMode}} {{.State.Running}}", ctr).Must(t).Stdout
	if strings.TrimSpace(got) != "true host true" {
		t.Errorf("builder container %s: %q, want privileged, host network, running", ctr, got)
	}
	if out := d.DockerCmd(t, buildx, "buildx", "ls").Must(t).Stdout; !strings.Contains(out, builder+"*") {
		t.Errorf("buildx ls does not show %s in use:\n%s", builder, out)
	}

	d.DockerCmd(t, buildx, "buildx", "rm", builder).Must(t)
	removed = true
	if out := d.Docker(t, "ps", "-a", "--filter", "name="+ctr, "--format", "{{.Names}}").Must(t).Stdout; out != "" {
		t.Errorf("buildx rm left the container: %q", out)
	}
	if out := d.Docker(t, "volume", "ls", "--filter", "name="+ctr, "--format", "{{.Name}}").Must(t).Stdout; out != "" {
		t.Errorf("buildx rm left the state volume: %q", out)
	}
}

// buildxConfig is a CLI config of the test's own with the user's buildx
// plugin in it, as the options of the docker commands that use it.
func buildxConfig(t *testing.T) testenv.Cmd {
	t.Helper()
	dir := t.TempDir()
	plugins := filepath.Join(dir, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	if err := os.Symlink(filepath.Join(home, ".docker", "cli-plugins", "docker-buildx"), filepath.Join(plugins, "docker-buildx")); err != nil {
		t.Fatal(err)
	}
	return testenv.Cmd{Env: []string{"DOCKER_CONFIG=" + dir}}
}
