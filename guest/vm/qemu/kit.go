package qemu

import "github.com/arcavm/arca/guest/vm/kit"

// DefaultKit is where `make kit` (scripts/kit.sh) leaves the current kit.
const DefaultKit = "/var/cache/arca/kit/current"

// Kit and LoadKit are the guest kit, which lives in guest/vm/kit so that
// the vz driver packs the same initramfs on macOS.
type Kit = kit.Kit

// LoadKit reads the kit in dir (see kit.Load).
func LoadKit(dir string) (*Kit, error) { return kit.Load(dir) }
