package qemu

import "github.com/arcavm/arca/guest/vm/kit"

// DefaultKit is the kit root `make kit` fills (scripts/kernel.sh the
// compiled kernel's kit, scripts/kit.sh Debian's); DefaultARM64Kit is the
// one `make kit-arm64` fills. Loading a root takes the compiled kernel's
// kit when it is there, else Debian's (see kit.Load).
const (
	DefaultKit      = "/var/cache/arca/kit"
	DefaultARM64Kit = "/var/cache/arca/kit-arm64"
)

// Guest architectures, as Debian and GOARCH name them.
const (
	ArchAMD64 = kit.ArchAMD64
	ArchARM64 = kit.ArchARM64
)

// Kit and LoadKit are the guest kit, which lives in guest/vm/kit so that
// the vz driver packs the same initramfs on macOS.
type Kit = kit.Kit

// LoadKit reads the kit in dir (see kit.Load).
func LoadKit(dir string) (*Kit, error) { return kit.Load(dir) }
