package security

import (
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/guest/seccomp"
	"github.com/arcavm/arca/guest/wire"
)

// FuzzSecurityOpt feeds --security-opt values (a seccomp profile's JSON
// above all: the CLI sends the file's text) through what create and start
// do with them: Check, then Apply, then the agent's compiler. Each either
// refuses the input with an error or yields a filter that compiles; a
// profile Check accepts never fails Apply.
func FuzzSecurityOpt(f *testing.F) {
	f.Add("seccomp=unconfined", "")
	f.Add("no-new-privileges", "seccomp=builtin")
	f.Add("seccomp="+`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`, "")
	f.Add("seccomp="+`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"},{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}`, "no-new-privileges=false")
	f.Add("seccomp="+`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}],"excludes":{"caps":["CAP_SYS_ADMIN"]}}]}`, "")
	f.Add("seccomp={", "")
	f.Add("apparmor=unconfined", "label=disable")
	f.Fuzz(func(t *testing.T, a, b string) {
		hc := &container.HostConfig{SecurityOpt: []string{a, b}}
		if b == "" {
			hc.SecurityOpt = hc.SecurityOpt[:1]
		}
		if err := Check(hc); err != nil {
			return
		}
		for _, caps := range [][]string{nil, {"ALL"}, {}} {
			var p wire.ProcessSpec
			if err := Apply(&p, hc, caps, true); err != nil {
				t.Fatalf("Check accepted %q but Apply refused it: %v", hc.SecurityOpt, err)
			}
			if !p.Confine {
				t.Fatalf("a sandbox process is not confined: %q", hc.SecurityOpt)
			}
			// Errors are fine (an action the compiler refuses); panics
			// and endless loops are not.
			seccomp.Programs(p.Seccomp)
		}
	})
}
