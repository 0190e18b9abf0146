package agent

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/arcavm/arca/internal/prereq"
)

// reseed credits the host's bytes to the kernel and makes its generator
// reseed at once: the generation of the kernel's crng moves on, so no
// machine restored from a template keeps drawing from the template's
// state. (A VM test cannot tell: a guest a second into its boot also
// reseeds from interrupt timings on its own, later and without credit.)
// Run on the host's kernel, which this only gives entropy to.
func TestReseed(t *testing.T) {
	prereq.Root(t, "RNDADDENTROPY and RNDRESEEDCRNG need CAP_SYS_ADMIN")
	seed := make([]byte, 32)
	rand.Read(seed)
	if err := reseed(seed); err != nil {
		t.Fatal(err)
	}
}

// A template whose kernel has the block driver built in gives its
// placeholder disks back to nothing, and binds them again when restored;
// with no driver loaded there is nothing to park.
func TestParkDisks(t *testing.T) {
	drv := filepath.Join(t.TempDir(), "virtio_blk")
	if parked, err := parkDisks(drv); err != nil || parked != nil {
		t.Fatalf("no driver: %v, %v", parked, err)
	}
	os.MkdirAll(drv, 0o755)
	for _, f := range []string{"bind", "unbind", "uevent", "module"} {
		os.WriteFile(filepath.Join(drv, f), nil, 0o200)
	}
	for _, dev := range []string{"virtio1", "virtio2"} {
		os.Symlink("../../../devices/"+dev, filepath.Join(drv, dev))
	}
	parked, err := parkDisks(drv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(parked, []string{"virtio1", "virtio2"}) {
		t.Errorf("parked %q", parked)
	}
	// Each write names one device (the file keeps the last).
	if b, _ := os.ReadFile(filepath.Join(drv, "unbind")); string(b) != "virtio2" {
		t.Errorf("unbind got %q", b)
	}
	if err := unparkDisks(drv, parked); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(drv, "bind")); string(b) != "virtio2" {
		t.Errorf("bind got %q", b)
	}
}
