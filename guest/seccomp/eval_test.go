package seccomp

import (
	"encoding/binary"
	"testing"

	sbpf "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// call is one synthetic syscall: a name in an ABI, and its arguments.
type call struct {
	abi  *arch.Info // nil is the native one
	name string
	args [6]uint64
}

// seccompData lays out struct seccomp_data as a little-endian kernel would
// (nr, arch, ip, args; an argument's low word first), each 32-bit word
// written big-endian because x/net/bpf's VM loads words in network order.
// go-seccomp-bpf only loads whole words, so the two agree.
func seccompData(t *testing.T, c call) []byte {
	t.Helper()
	abi := c.abi
	if abi == nil {
		native, err := arch.GetInfo("")
		if err != nil {
			t.Fatal(err)
		}
		abi = native
	}
	nr, ok := abi.SyscallNames[c.name]
	if !ok {
		t.Fatalf("%s has no syscall %s", abi.Name, c.name)
	}
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], uint32(nr|abi.SeccompMask))
	binary.BigEndian.PutUint32(b[4:], uint32(abi.ID))
	for i, a := range c.args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[16+8*i+4:], uint32(a>>32))
	}
	return b
}

// decide runs every program f compiles to on c and returns the kernel's
// answer: the most restrictive, the latest loaded first among equals.
func decide(t *testing.T, f *specs.LinuxSeccomp, c call) sbpf.Action {
	t.Helper()
	progs, err := Programs(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(progs) == 0 {
		return sbpf.ActionAllow
	}
	in := seccompData(t, c)
	var out sbpf.Action
	for i := len(progs) - 1; i >= 0; i-- {
		vm, err := bpf.NewVM(progs[i])
		if err != nil {
			t.Fatalf("program %d: %v", i, err)
		}
		r, err := vm.Run(in)
		if err != nil {
			t.Fatalf("program %d: %v", i, err)
		}
		got := sbpf.Action(uint32(r))
		if i == len(progs)-1 || rank(got) < rank(out) {
			out = got
		}
	}
	return out
}

const (
	allow = sbpf.ActionAllow
	eperm = sbpf.ActionErrno | errnoEPERM
)

func errno(n uint) sbpf.Action { return sbpf.ActionErrno | sbpf.Action(n) }

func uptr(v uint) *uint { return &v }
