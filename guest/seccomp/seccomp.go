// Package seccomp turns a runtime-spec seccomp filter (Docker's default
// profile, a --security-opt seccomp=FILE profile, or the sandbox's Boundary)
// into BPF with github.com/elastic/go-seccomp-bpf and installs it in the
// calling process. The compiler is plain Go and runs on any OS, so the
// decisions a profile makes can be tested anywhere; Install is Linux only.
//
// go-seccomp-bpf assembles a filter for the architecture it runs on only (its
// Policy has no exported way to pick another), and that shapes the mapping:
//
//   - Only the native ABI is filtered by the rules: x86_64 on amd64, aarch64 on
//     arm64. The library answers every x32 call with ENOSYS, and every call
//     of a foreign ABI (i386 on x86_64, arm on aarch64) gets the filter's
//     default action. Docker's profile allows those ABIs with the same rules;
//     here 32-bit binaries are refused instead, the safe side of the
//     difference. When the default action would let a foreign ABI through
//     (ALLOW or LOG, as in Boundary), a second filter that allows every
//     native syscall and refuses everything else is loaded with it, so the
//     i386 or arm numbering is no way around the rules.
//   - The default action's errno is always EPERM (the library accepts no
//     other for it); Docker's profile asks for EPERM. Per-syscall errnos are
//     kept.
//   - After a failed argument comparison, the library's program goes on
//     comparing syscall numbers against the argument word it last loaded,
//     not the syscall number: with personality(EQ 0) followed by
//     socket(NE 40), personality(41) is allowed, 41 being socket on x86_64.
//     So argument comparisons are never followed by another syscall's test:
//     the main filter holds only unconditional decisions, and each syscall
//     with conditional rules gets small filters of its own, where its test
//     is the only one (see compile). The kernel combines the filters, most
//     restrictive answer first, which gives the profile's meaning back.
//
// Also: the profile's architectures list is not read (the native ABI is
// always filtered, the others refused as above); SCMP_ACT_NOTIFY is refused,
// nothing listens; syscall names are resolved with the library's table
// (Linux 6.15), unknown ones skipped.
package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"

	sbpf "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"

	"github.com/arcavm/arca/guest/wire"
)

// errnoEPERM and errnoENOSYS are spelled out so the compiler builds on
// every OS; they are the same numbers on every Linux architecture Arca runs.
const (
	errnoEPERM  = 1
	errnoENOSYS = 38
)

// Programs compiles f for the running architecture into the BPF programs
// Install loads, in load order. Each is a whole filter: the kernel runs all
// of them and keeps the most restrictive answer. A nil f compiles to none.
func Programs(f *specs.LinuxSeccomp) ([][]bpf.Instruction, error) {
	c, err := compile(f)
	if err != nil {
		return nil, err
	}
	progs := make([][]bpf.Instruction, 0, len(c.policies))
	for i := range c.policies {
		insts, err := c.policies[i].Assemble()
		if err != nil {
			return nil, fmt.Errorf("assemble seccomp filter: %w", err)
		}
		progs = append(progs, insts)
	}
	return progs, nil
}

// Compile compiles f for the running architecture into the program Load
// installs, in the form the wire carries. A nil f compiles to nil.
func Compile(f *specs.LinuxSeccomp) (*wire.SeccompProgram, error) {
	if f == nil {
		return nil, nil
	}
	c, err := compile(f)
	if err != nil {
		return nil, err
	}
	p := &wire.SeccompProgram{Arch: runtime.GOARCH, Flags: uint32(c.flags)}
	for i := range c.policies {
		insts, err := c.policies[i].Assemble()
		if err != nil {
			return nil, fmt.Errorf("assemble seccomp filter: %w", err)
		}
		raw, err := bpf.Assemble(insts)
		if err != nil {
			return nil, fmt.Errorf("assemble seccomp filter: %w", err)
		}
		b := make([]byte, 0, sockFilterSize*len(raw))
		for _, r := range raw {
			b = binary.LittleEndian.AppendUint16(b, r.Op)
			b = append(b, r.Jt, r.Jf)
			b = binary.LittleEndian.AppendUint32(b, r.K)
		}
		p.Filters = append(p.Filters, b)
	}
	return p, nil
}

// sockFilterSize is a struct sock_filter's size; maxFilterLen is the
// kernel's BPF_MAXINSNS.
const (
	sockFilterSize = 8
	maxFilterLen   = 4096
)

// decode checks p and gives each of its filters back as instructions.
func decode(p *wire.SeccompProgram) ([][]bpf.RawInstruction, error) {
	if p.Arch != runtime.GOARCH {
		return nil, fmt.Errorf("seccomp program for %s, not %s", p.Arch, runtime.GOARCH)
	}
	out := make([][]bpf.RawInstruction, 0, len(p.Filters))
	for i, b := range p.Filters {
		n := len(b) / sockFilterSize
		if len(b)%sockFilterSize != 0 || n == 0 || n > maxFilterLen {
			return nil, fmt.Errorf("seccomp program: filter %d is %d bytes", i, len(b))
		}
		raw := make([]bpf.RawInstruction, n)
		for j := range raw {
			at := b[j*sockFilterSize:]
			raw[j] = bpf.RawInstruction{Op: binary.LittleEndian.Uint16(at), Jt: at[2], Jf: at[3], K: binary.LittleEndian.Uint32(at[4:])}
		}
		out = append(out, raw)
	}
	return out, nil
}

// compiled is what Install loads: the policies, and the flags each is
// loaded with (TSYNC is added by Install).
type compiled struct {
	policies []sbpf.Policy
	flags    sbpf.FilterFlag
}

// compile turns f into filters whose combination (the kernel's: the most
// restrictive answer of all) is f's meaning, where a syscall gets the most
// restrictive action among the rules that match it, or the default when
// none does:
//
//   - main: the default action, and for each syscall with an unconditional
//     rule the most restrictive of those; a syscall with only conditional
//     rules is ALLOW here (the neutral answer), its filters below decide.
//   - for each syscall and each action of its conditional rules (unless
//     ALLOW, or no more restrictive than its unconditional answer): that
//     action when one of the rules' comparisons holds, else ALLOW.
//   - for each syscall with only conditional rules: the default action when
//     none of them holds, else ALLOW. "None holds" is the negation of the
//     rules' comparisons, which the library can express: each comparison
//     has its opposite, and the negated OR of ANDs is multiplied out.
//
// A permissive default (ALLOW, LOG) adds nativeOnly in front.
func compile(f *specs.LinuxSeccomp) (compiled, error) {
	if f == nil {
		return compiled{}, nil
	}
	native, err := arch.GetInfo("")
	if err != nil {
		return compiled{}, fmt.Errorf("compile seccomp: %w", err)
	}
	def, err := action(f.DefaultAction, f.DefaultErrnoRet)
	if err != nil {
		return compiled{}, fmt.Errorf("compile seccomp: default action: %w", err)
	}
	if def&actionMask == sbpf.ActionErrno {
		// The library's default action carries no errno of its own: it
		// always returns EPERM.
		def = sbpf.ActionErrno
	}
	flags, err := filterFlags(f.Flags)
	if err != nil {
		return compiled{}, fmt.Errorf("compile seccomp: %w", err)
	}

	var order []string
	calls := map[string]*syscallRules{}
	for i, rule := range f.Syscalls {
		act, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return compiled{}, fmt.Errorf("compile seccomp: rule %d (%v): %w", i, rule.Names, err)
		}
		if act == def || (def == sbpf.ActionErrno && act == sbpf.ActionErrno|errnoEPERM) {
			// Same as the default: libseccomp refuses such a rule and
			// runc drops it; it changes nothing.
			continue
		}
		conds, matchable, err := conditions(rule.Args)
		if err != nil {
			return compiled{}, fmt.Errorf("compile seccomp: rule %d (%v): %w", i, rule.Names, err)
		}
		if !matchable {
			continue
		}
		for _, name := range rule.Names {
			if _, ok := native.SyscallNames[name]; !ok {
				// Unknown to this architecture (or newer than the
				// library's table): skipped, as libseccomp does.
				continue
			}
			r := calls[name]
			if r == nil {
				r = &syscallRules{}
				calls[name] = r
				order = append(order, name)
			}
			r.add(act, conds)
		}
	}

	c := compiled{flags: flags}
	if permissive(def) {
		c.policies = append(c.policies, nativeOnly(native))
	}
	main := sbpf.Policy{DefaultAction: def}
	groups := map[sbpf.Action]int{}
	put := func(act sbpf.Action, name string) {
		if act == def {
			return
		}
		i, ok := groups[act]
		if !ok {
			i = len(main.Syscalls)
			groups[act] = i
			main.Syscalls = append(main.Syscalls, sbpf.SyscallGroup{Action: act})
		}
		main.Syscalls[i].Names = append(main.Syscalls[i].Names, name)
	}
	var extra []sbpf.Policy
	for _, name := range order {
		r := calls[name]
		if r.hasUncond {
			put(r.uncond, name)
		} else {
			put(sbpf.ActionAllow, name)
		}
		for _, act := range r.condOrder {
			if act == sbpf.ActionAllow || (r.hasUncond && rank(act) >= rank(r.uncond)) {
				continue
			}
			extra = append(extra, only(name, r.conds[act], act))
		}
		if !r.hasUncond && def != sbpf.ActionAllow {
			var all []sbpf.ArgumentConditions
			for _, act := range r.condOrder {
				all = append(all, r.conds[act]...)
			}
			none, err := negate(all)
			if err != nil {
				return compiled{}, fmt.Errorf("compile seccomp: %s: %w", name, err)
			}
			extra = append(extra, only(name, none, def))
		}
	}
	if len(main.Syscalls) == 0 {
		// The library wants at least one group; one that answers as the
		// default does changes nothing.
		main.Syscalls = []sbpf.SyscallGroup{{Names: []string{"restart_syscall"}, Action: def}}
	}
	c.policies = append(c.policies, main)
	c.policies = append(c.policies, extra...)
	return c, nil
}

func permissive(a sbpf.Action) bool { return a == sbpf.ActionAllow || a == sbpf.ActionLog }

// only is a filter about one syscall: act when one of sets holds, ALLOW
// otherwise and for every other syscall. The syscall's test is the last
// one in the program, so the library's reuse of the loaded argument word
// (see the package comment) cannot mislead a later test.
func only(name string, sets []sbpf.ArgumentConditions, act sbpf.Action) sbpf.Policy {
	g := sbpf.SyscallGroup{Action: act}
	for _, set := range sets {
		g.NamesWithCondtions = append(g.NamesWithCondtions, sbpf.NameWithConditions{Name: name, Conditions: set})
	}
	return sbpf.Policy{DefaultAction: sbpf.ActionAllow, Syscalls: []sbpf.SyscallGroup{g}}
}

// nativeOnly allows every syscall of the native ABI the library knows and
// refuses the rest with EPERM: foreign ABIs (i386, arm) above all, which a
// permissive filter from the library would let through unfiltered.
func nativeOnly(native *arch.Info) sbpf.Policy {
	names := make([]string, 0, len(native.SyscallNames))
	for name := range native.SyscallNames {
		names = append(names, name)
	}
	slices.Sort(names)
	return sbpf.Policy{
		DefaultAction: sbpf.ActionErrno,
		Syscalls:      []sbpf.SyscallGroup{{Names: names, Action: sbpf.ActionAllow}},
	}
}

// maxNegated bounds the multiplied-out negation of a syscall's rules.
// Docker's profile needs one set per syscall (each rule has one
// comparison).
const maxNegated = 256

// negate returns NOT (s1 OR s2 ...) as an OR of ANDs: NOT of an AND is the
// OR of the opposite comparisons, and the AND of those ORs is multiplied
// out.
func negate(sets []sbpf.ArgumentConditions) ([]sbpf.ArgumentConditions, error) {
	out := []sbpf.ArgumentConditions{nil}
	for _, set := range sets {
		if len(out)*len(set) > maxNegated {
			return nil, fmt.Errorf("argument conditions too complex to negate (over %d sets)", maxNegated)
		}
		var next []sbpf.ArgumentConditions
		for _, prefix := range out {
			for _, c := range set {
				n := c
				n.Operation = opposite[c.Operation]
				next = append(next, append(slices.Clip(prefix), n))
			}
		}
		out = next
	}
	return out, nil
}

// opposite is each library comparison's negation, exact on 64 bits.
var opposite = map[sbpf.Operation]sbpf.Operation{
	sbpf.Equal:          sbpf.NotEqual,
	sbpf.NotEqual:       sbpf.Equal,
	sbpf.LessThan:       sbpf.GreaterOrEqual,
	sbpf.GreaterOrEqual: sbpf.LessThan,
	sbpf.LessOrEqual:    sbpf.GreaterThan,
	sbpf.GreaterThan:    sbpf.LessOrEqual,
	sbpf.BitsSet:        sbpf.BitsNotSet,
	sbpf.BitsNotSet:     sbpf.BitsSet,
}

// syscallRules are one syscall's rules: the most restrictive unconditional
// action, and the conditional ones by action (their sets OR'ed).
type syscallRules struct {
	hasUncond bool
	uncond    sbpf.Action
	condOrder []sbpf.Action
	conds     map[sbpf.Action][]sbpf.ArgumentConditions
}

func (r *syscallRules) add(act sbpf.Action, conds sbpf.ArgumentConditions) {
	if len(conds) == 0 {
		if !r.hasUncond || rank(act) < rank(r.uncond) {
			r.hasUncond, r.uncond = true, act
		}
		return
	}
	if r.conds == nil {
		r.conds = map[sbpf.Action][]sbpf.ArgumentConditions{}
	}
	if _, ok := r.conds[act]; !ok {
		r.condOrder = append(r.condOrder, act)
	}
	r.conds[act] = append(r.conds[act], conds)
}

// actionMask keeps the action of a seccomp return value, without its data
// (SECCOMP_RET_ACTION_FULL).
const actionMask sbpf.Action = 0xffff0000

// rank orders actions as the kernel does when filters disagree: the lower,
// the more restrictive.
func rank(a sbpf.Action) int {
	switch a & actionMask {
	case sbpf.ActionKillProcess:
		return 0
	case sbpf.ActionKillThread:
		return 1
	case sbpf.ActionTrap:
		return 2
	case sbpf.ActionErrno:
		return 3
	case sbpf.ActionTrace:
		return 4
	case sbpf.ActionLog:
		return 5
	default:
		return 6
	}
}

// action maps a runtime-spec action to the library's, with the errno (or
// trace message) in its data bits. ERRNO without errnoRet is EPERM, as in
// runc.
func action(a specs.LinuxSeccompAction, ret *uint) (sbpf.Action, error) {
	data := func(def uint) (sbpf.Action, error) {
		v := def
		if ret != nil {
			v = *ret
		}
		if v > 0xffff {
			return 0, fmt.Errorf("errnoRet %d out of range", v)
		}
		return sbpf.Action(v), nil
	}
	switch a {
	case specs.ActAllow:
		return sbpf.ActionAllow, nil
	case specs.ActLog:
		return sbpf.ActionLog, nil
	case specs.ActKill, specs.ActKillThread:
		return sbpf.ActionKillThread, nil
	case specs.ActKillProcess:
		return sbpf.ActionKillProcess, nil
	case specs.ActTrap:
		return sbpf.ActionTrap, nil
	case specs.ActErrno:
		d, err := data(errnoEPERM)
		return sbpf.ActionErrno | d, err
	case specs.ActTrace:
		d, err := data(0)
		return sbpf.ActionTrace | d, err
	case specs.ActNotify:
		// Nothing in the agent listens for notifications.
		return 0, errors.New("SCMP_ACT_NOTIFY is not supported")
	case "":
		return 0, errors.New("no action")
	default:
		return 0, fmt.Errorf("unknown action %q", a)
	}
}

// conditions maps a rule's argument comparisons, all of which must hold, to
// the library's. matchable is false when a comparison can never hold
// (MASKED_EQ asking for bits outside its mask): the rule is then dropped.
//
// The library has no masked comparison; SCMP_CMP_MASKED_EQ, (arg & mask) ==
// want, is the same as: no bit of mask&^want is set, and every bit of want
// is set. The first is one BitsNotSet; the second one BitsSet per bit of
// want, since BitsSet means "any of these bits". Docker's profile uses it
// with want 0 (clone without namespace flags): a single BitsNotSet.
func conditions(args []specs.LinuxSeccompArg) (conds sbpf.ArgumentConditions, matchable bool, err error) {
	for _, a := range args {
		if a.Index > 5 {
			return nil, false, fmt.Errorf("argument index %d out of range", a.Index)
		}
		c := sbpf.Condition{Argument: uint32(a.Index), Value: a.Value}
		switch a.Op {
		case specs.OpEqualTo:
			c.Operation = sbpf.Equal
		case specs.OpNotEqual:
			c.Operation = sbpf.NotEqual
		case specs.OpLessThan:
			c.Operation = sbpf.LessThan
		case specs.OpLessEqual:
			c.Operation = sbpf.LessOrEqual
		case specs.OpGreaterThan:
			c.Operation = sbpf.GreaterThan
		case specs.OpGreaterEqual:
			c.Operation = sbpf.GreaterOrEqual
		case specs.OpMaskedEqual:
			mask, want := a.Value, a.ValueTwo
			if want&^mask != 0 {
				return nil, false, nil
			}
			if clear := mask &^ want; clear != 0 {
				conds = append(conds, sbpf.Condition{Argument: uint32(a.Index), Operation: sbpf.BitsNotSet, Value: clear})
			}
			for bit := uint64(1); bit != 0; bit <<= 1 {
				if want&bit != 0 {
					conds = append(conds, sbpf.Condition{Argument: uint32(a.Index), Operation: sbpf.BitsSet, Value: bit})
				}
			}
			if mask == 0 {
				// (arg & 0) == 0 always holds; a rule needs some
				// condition to stay conditional, and this one is true.
				conds = append(conds, sbpf.Condition{Argument: uint32(a.Index), Operation: sbpf.BitsNotSet, Value: 0})
			}
			continue
		default:
			return nil, false, fmt.Errorf("unknown comparison %q", a.Op)
		}
		conds = append(conds, c)
	}
	return conds, true, nil
}

// filterFlags maps the runtime-spec flags the kernel offers to the
// library's; TSYNC is Install's to add.
func filterFlags(flags []specs.LinuxSeccompFlag) (sbpf.FilterFlag, error) {
	var out sbpf.FilterFlag
	for _, f := range flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			out |= sbpf.FilterFlagLog
		case specs.LinuxSeccompFlagSpecAllow:
			out |= 1 << 2 // SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			// Only meaningful with SCMP_ACT_NOTIFY, which is refused.
		default:
			return 0, fmt.Errorf("unknown flag %q", f)
		}
	}
	return out, nil
}
