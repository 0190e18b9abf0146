package seccomp

import (
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/arcavm/arca/guest/wire"
)

// TestProgramRoundTrip: what Compile writes, carried as JSON over the wire,
// decodes to the very instructions the compiler assembled, filter by
// filter; Load gets exactly what Install used to load.
func TestProgramRoundTrip(t *testing.T) {
	if p, err := Compile(nil); p != nil || err != nil {
		t.Fatalf("nil profile: %v, %v", p, err)
	}
	f := Boundary()
	p, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back wire.SeccompProgram
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got, err := decode(&back)
	if err != nil {
		t.Fatal(err)
	}
	progs, err := Programs(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(progs) {
		t.Fatalf("%d filters, want %d", len(got), len(progs))
	}
	for i, insts := range progs {
		want, err := bpf.Assemble(insts)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("filter %d differs after the round trip", i)
		}
	}
}

// TestProgramRefused: a program for another architecture, or whose
// filters are not whole instructions or too long for the kernel, is
// refused before anything is loaded.
func TestProgramRefused(t *testing.T) {
	foreign := "arm64"
	if runtime.GOARCH == "arm64" {
		foreign = "amd64"
	}
	for _, tc := range []struct {
		name string
		p    wire.SeccompProgram
		want string
	}{
		{"other architecture", wire.SeccompProgram{Arch: foreign, Filters: [][]byte{make([]byte, 8)}}, "seccomp program for " + foreign},
		{"partial instruction", wire.SeccompProgram{Arch: runtime.GOARCH, Filters: [][]byte{make([]byte, 12)}}, "filter 0 is 12 bytes"},
		{"empty filter", wire.SeccompProgram{Arch: runtime.GOARCH, Filters: [][]byte{make([]byte, 8), {}}}, "filter 1 is 0 bytes"},
		{"too long", wire.SeccompProgram{Arch: runtime.GOARCH, Filters: [][]byte{make([]byte, 8*4097)}}, "filter 0 is 32776 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decode(&tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
