# The qemu driver's guest kits (kernel + boot modules from Debian packages):
# see scripts/kit.sh and docs/qemu.md. Rebuilt when the Debian kernel
# changes or the kit directory is removed; a no-op otherwise.
KIT_ROOT       ?= /var/cache/arca/kit
KIT_ARM64_ROOT ?= /var/cache/arca/kit-arm64

.PHONY: kit kit-arm64
kit:
	@KIT_ROOT=$(KIT_ROOT) bash scripts/kit.sh

# The arm64 kit (a plain Image, for vz and qemu-system-aarch64 -M virt) and
# the arm64 busybox its boot test runs.
kit-arm64:
	@KIT_ARCH=arm64 KIT_ROOT=$(KIT_ARM64_ROOT) bash scripts/kit.sh

# The qemu tests boot the kits: build them before them.
test: kit kit-arm64
