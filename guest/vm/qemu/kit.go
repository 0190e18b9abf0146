package qemu

import "github.com/arcavm/arca/guest/vm/kit"

// DefaultKit is where `make kit` (scripts/kit.sh) leaves the current kit;
// DefaultARM64Kit is where `make kit-arm64` leaves the arm64 one.
const (
	DefaultKit      = "/var/cache/arca/kit/current"
	DefaultARM64Kit = "/var/cache/arca/kit-arm64/current"
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
