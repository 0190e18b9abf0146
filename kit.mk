# The qemu driver's guest kit (kernel + boot modules from Debian packages):
# see scripts/kit.sh and docs/qemu.md. Rebuilt when the Debian kernel
# changes or the kit directory is removed; a no-op otherwise.
KIT_ROOT ?= /var/cache/arca/kit

.PHONY: kit
kit:
	@KIT_ROOT=$(KIT_ROOT) bash scripts/kit.sh

# The qemu tests boot the kit: build it before them.
test: kit
