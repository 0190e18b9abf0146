package agent

import (
	"strings"

	"github.com/arcavm/arca/guest/wire"
)

// capNames are the kernel's capability numbers by name.
var capNames = map[string]int{
	"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4,
	"KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9,
	"NET_BIND_SERVICE": 10, "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13,
	"IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18,
	"SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
	"SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28,
	"AUDIT_WRITE": 29, "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32,
	"MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35, "BLOCK_SUSPEND": 36, "AUDIT_READ": 37,
	"PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

// defaultCaps is Docker's default capability set, shared with the host,
// which folds CapAdd and CapDrop into it.
var defaultCaps = wire.DefaultCapabilities

// capSet is a set of capability numbers.
type capSet uint64

func (s capSet) has(c int) bool { return c < 64 && s&(1<<c) != 0 }

// parseCaps reads names as Docker writes them ("CAP_NET_ADMIN", "net_admin"
// or "ALL"); nil means Docker's default set.
func parseCaps(names []string) (capSet, error) {
	if names == nil {
		names = defaultCaps
	}
	var s capSet
	for _, n := range names {
		key := strings.TrimPrefix(strings.ToUpper(n), "CAP_")
		if key == "ALL" {
			s = ^capSet(0)
			continue
		}
		c, ok := capNames[key]
		if !ok {
			return 0, wire.Errorf(wire.KindInvalid, "unknown capability: %q", n)
		}
		s |= 1 << c
	}
	return s, nil
}
