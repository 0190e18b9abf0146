package testenv

import (
	"os"
	"testing"

	"github.com/arcavm/arca/internal/prereq"
)

// BuildkitVersion is the BuildKit the test builder image carries: the one
// buildx v0.38.2 uses.
const BuildkitVersion = "v0.34.2"

// BuildkitImageCommand is the test BuildKit image's config, as `docker
// import -c` takes it: buildkitd as the entrypoint, Docker's usual PATH.
var BuildkitImageCommand = []string{`ENTRYPOINT ["buildkitd"]`, "ENV " + DefaultPath}

// BuildkitRootfs returns the root filesystem tarball of a BuildKit image
// (buildkitd and buildctl from the Go module proxy, Debian's runc,
// busybox) that `make buildkit-image` leaves in /var/cache/arca/buildkit
// (or $ARCA_BUILDKIT_ROOTFS), for tests of buildx's docker-container
// builder: there is no Docker Hub to pull moby/buildkit from. It skips
// the test without one, or fails it in CI.
func BuildkitRootfs(t testing.TB) string {
	t.Helper()
	p := os.Getenv("ARCA_BUILDKIT_ROOTFS")
	if p == "" {
		p = "/var/cache/arca/buildkit/" + BuildkitVersion + "/rootfs.tar"
	}
	if _, err := os.Stat(p); err != nil {
		prereq.Missing(t, "testenv: no BuildKit image rootfs (%v); `make buildkit-image` builds it", err)
	}
	return p
}
