# The qemu driver's guest kits. Each kit root holds two: Debian's generic
# kernel with the few modules the agent loads (scripts/kit.sh, the link
# "current"), and Arca's own kernel compiled from Debian's linux-source-6.1
# with guest/kernel's config, everything built in (scripts/kernel.sh, the
# link "arca"), which the drivers prefer; Debian's is the fallback. See
# docs/qemu.md. A no-op when both are up to date; the compile (~10 min on
# 2 cores per architecture) happens when the config or the source package
# changes, its result cached under KERNEL_CACHE.
KIT_ROOT       ?= /var/cache/arca/kit
KIT_ARM64_ROOT ?= /var/cache/arca/kit-arm64
KERNEL_CACHE   ?= /var/cache/arca/kernel
# KIT_KERNEL=debian makes the Debian kits only (no compile).
KIT_KERNEL     ?= arca

.PHONY: kit kit-arm64
kit:
	@KIT_ROOT=$(KIT_ROOT) bash scripts/kit.sh
ifneq ($(KIT_KERNEL),debian)
	@KERNEL_ARCH=amd64 KIT_ROOT=$(KIT_ROOT) KERNEL_CACHE=$(KERNEL_CACHE) bash scripts/kernel.sh
endif

# The arm64 kits (a plain Image, for vz and qemu-system-aarch64 -M virt;
# Arca's cross-compiled with gcc-aarch64-linux-gnu) and the arm64 busybox
# their boot test runs.
kit-arm64:
	@KIT_ARCH=arm64 KIT_ROOT=$(KIT_ARM64_ROOT) bash scripts/kit.sh
ifneq ($(KIT_KERNEL),debian)
	@KERNEL_ARCH=arm64 KIT_ROOT=$(KIT_ARM64_ROOT) KERNEL_CACHE=$(KERNEL_CACHE) bash scripts/kernel.sh
endif

# The qemu tests boot the kits: build them before them.
test: kit kit-arm64
