package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regclient/regclient/types/ref"
)

// The helpers in this file serve programs rather than tests (go run ./bench):
// they return errors instead of failing a testing.TB, and the caller owns
// what they start.

// StartRegistryServer starts Debian's docker-registry on a free 127.0.0.1
// port, storing under dir, as Registry does for tests. Stop it with Stop.
func StartRegistryServer(dir string) (*RegistryServer, error) {
	return startRegistry(dir, "")
}

// Stop stops the registry (SIGTERM, SIGKILL after 5 s) and waits for it.
func (r *RegistryServer) Stop() { r.stop() }

// PushBusyboxTo is PushBusyboxImage for programs.
func PushBusyboxTo(registry string) (Pushed, error) {
	return pushBusybox(registry)
}

// SetupDockerConfig makes dir a private DOCKER_CONFIG, as every test
// daemon has: an empty config.json and the user's CLI plugins
// (~/.docker/cli-plugins: buildx, compose) linked in, nothing else.
func SetupDockerConfig(dir string) error { return setupDockerConfig(dir) }

// RunDocker runs the docker CLI against host (a DOCKER_HOST) with the
// private configDir until it exits or ctx ends; then it and whatever it
// started (plugins) are killed and the result says TimedOut. c.Timeout is
// ignored: ctx bounds the run.
func RunDocker(ctx context.Context, host, configDir string, c Cmd, args ...string) Result {
	return runDockerContext(ctx, host, configDir, c, args)
}

// PushRandomImage pushes registry/repo:latest with layers layers, each one
// file of size bytes drawn from a PRNG seeded with seed, so the data does
// not compress and a pull moves about layers*size bytes. A new seed gives
// new digests: an engine that keeps blobs after rmi cannot serve the next
// pull from its cache. It also returns the compressed size of the layers,
// which is what a pull transfers.
func PushRandomImage(registry, repo string, layers, size int, seed uint64) (Pushed, int64, error) {
	s := imageSpec{
		arch:      runtime.GOARCH,
		config:    ocispec.ImageConfig{Env: []string{DefaultPath}, Cmd: []string{"sh"}},
		dockerMTs: true,
	}
	rng := rand.NewChaCha8(seedBytes(seed))
	for i := range layers {
		data := make([]byte, size)
		_, _ = rng.Read(data) // ChaCha8 never fails
		var l layerWriter
		l.file(fmt.Sprintf("data-%d.bin", i), 0o644, 0, data)
		built, err := l.finish()
		if err != nil {
			return Pushed{}, 0, fmt.Errorf("build layer %d: %w", i, err)
		}
		s.layers = append(s.layers, built)
		s.history = append(s.history, ocispec.History{Created: &imageCreated, CreatedBy: fmt.Sprintf("arca bench: random layer %d", i)})
	}
	b, err := s.build()
	if err != nil {
		return Pushed{}, 0, err
	}
	r, err := ref.New(registry + "/" + repo + ":latest")
	if err != nil {
		return Pushed{}, 0, fmt.Errorf("parse reference: %w", err)
	}
	p := newPusher(registry)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	defer p.rc.Close(ctx, r)
	md, err := p.pushImage(ctx, r, s, b, false)
	if err != nil {
		return Pushed{}, 0, err
	}
	var total int64
	for _, l := range s.layers {
		total += int64(len(l.gz))
	}
	return pushed(r, md, b.configDigest, s.layers), total, nil
}

func seedBytes(seed uint64) [32]byte {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
	}
	return b
}
