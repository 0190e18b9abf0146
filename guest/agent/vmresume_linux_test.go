package agent

import (
	"crypto/rand"
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
