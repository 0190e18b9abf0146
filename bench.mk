# Load tests (issue #6): `make bench`, and a reference dockerd to compare
# against. Included from the Makefile. docs/performance.md has the figures.
#
#   make dockerd                                   # dockerd on unix:///tmp/ref.sock
#   make bench COMPARE=unix:///tmp/ref.sock        # arca (started here) vs that dockerd
#   make bench TARGET=unix:///var/run/arca.sock    # an arca already running
#   make bench BENCH_FLAGS=--smoke                 # seconds instead of minutes
#   make bench BENCH_DRIVER=qemu BENCH_FLAGS='--scenarios run,memory --containers 5'
#   make bench BENCH_DRIVER=qemu BENCH_DAEMON_FLAGS=--cold-boot   # VMs without templates
#   make bench BENCH_DRIVER=qemu BENCH_KIT=/var/cache/arca/kit/current  # Debian's kernel, not Arca's
#   make bench BENCH_FLAGS='--scenarios build --build-repeat 5'   # docker build, cold and warm (needs buildx)
#   make dockerd-stop

TARGET      ?=
COMPARE     ?=
BENCH_FLAGS ?=
BENCH_OUT   ?= /tmp/arca-bench-out
BENCH_DRIVER ?= sandbox
BENCH_DAEMON_FLAGS ?=
# The qemu driver's kit: the root takes Arca's compiled kernel when make kit
# made it; $(KIT_ROOT)/current is Debian's (to compare).
BENCH_KIT   ?= $(KIT_ROOT)

.PHONY: bench dockerd dockerd-stop

bench: build
	@BIN=$(BIN) GO=$(GO) OUT=$(BENCH_OUT) DRIVER=$(BENCH_DRIVER) KIT=$(BENCH_KIT) TARGET=$(TARGET) COMPARE=$(COMPARE) BENCH_FLAGS='$(BENCH_FLAGS)' DAEMON_FLAGS='$(BENCH_DAEMON_FLAGS)' bash bench/run.sh

# Debian's docker.io, containerd, runc and tini unpacked under
# /var/cache/arca/dockerd (never installed: that would replace the docker
# CLI), started with no bridge and no iptables. Benchmarking only.
dockerd:
	@bash bench/dockerd.sh start

dockerd-stop:
	@bash bench/dockerd.sh stop
