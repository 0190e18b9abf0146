# Arca build, run and test entry points. CI runs `make test` (via .ci/run).

GO       ?= go
BIN      := bin
UNAME    := $(shell uname -s)
ifeq ($(UNAME),Darwin)
SOCKET   ?= $(HOME)/.arca/arca.sock
ROOT     ?= $(HOME)/.arca/root
else
SOCKET   ?= /var/run/arca.sock
ROOT     ?= /var/lib/arca
endif
DRIVER   ?= auto
# Each package gets the whole budget; the suite as a whole must stay well
# under 20 minutes on 2 cores.
TEST_TIMEOUT ?= 30m
TEST_FLAGS   ?=
PKGS     ?= ./...

# Static, reproducible binaries: no cgo, no local paths, no VCS stamp (which
# would fail the build in a checkout git refuses to read). arca version
# says the commit (with -dirty for uncommitted changes) and the build date:
# SOURCE_DATE_EPOCH's, for a reproducible build, else now.
BUILD_FLAGS := -trimpath -buildvcs=false
VERSION     ?= 0.1.0-dev
COMMIT      ?= $(shell git describe --always --dirty --abbrev=12 --exclude='*' 2>/dev/null || echo unknown)
BUILD_DATE  ?= $(shell date -u $(if $(SOURCE_DATE_EPOCH),-d @$(SOURCE_DATE_EPOCH)) +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.gitCommit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)

.PHONY: all build deps run test vet fmt lint compose buildx buildkit-image clean fuzz install uninstall

all: build

# On a Mac (macos.mk): the daemon is built with cgo and signed for the
# Virtualization framework, the agent cross-built for linux/arm64.
ifeq ($(UNAME),Darwin)
include macos.mk
else
# Packages that don't exist yet are skipped, so the targets stay usable while
# the daemon and the agent are being written.
build:
	@mkdir -p $(BIN)
	@set -e; for cmd in arca arca-agent; do \
		if ls ./cmd/$$cmd/*.go 2>/dev/null | grep -qv '_test\.go$$'; then \
			CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/$$cmd ./cmd/$$cmd; \
		else \
			echo "make: skipping ./cmd/$$cmd (no Go files yet)" >&2; \
		fi; \
	done

deps:
	@bash scripts/deps.sh

# The CLI's plugins too: docker build needs buildx (the CLI's default
# builder talks to the daemon's BuildKit through it), compose is compose.
run: deps build compose buildx
	@echo 'export DOCKER_HOST=unix://$(SOCKET)'
	exec $(BIN)/arca daemon --socket $(SOCKET) --root $(ROOT) --driver $(DRIVER)

# Arca as a service (scripts/install.sh says what each setting does):
# the binaries under PREFIX, arca.service (Type=notify, Restart=on-failure)
# and arca.socket (socket activation) in UNITDIR, enabled and started where
# systemd runs the machine; the state under ROOT; a docker context named
# CONTEXT for the user who ran sudo make install. uninstall undoes it,
# keeping ROOT unless PURGE=1. DESTDIR stages the files for a package and
# touches nothing else.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
UNITDIR    ?= /etc/systemd/system
GROUP      ?= arca
CONTEXT    ?= arca
ARCA_FLAGS ?=
INSTALL_ENV = DESTDIR='$(DESTDIR)' PREFIX='$(PREFIX)' BINDIR='$(BINDIR)' UNITDIR='$(UNITDIR)' \
	SOCKET='$(SOCKET)' ROOT='$(ROOT)' DRIVER='$(DRIVER)' GROUP='$(GROUP)' CONTEXT='$(CONTEXT)' \
	ARCA_FLAGS='$(ARCA_FLAGS)' PURGE='$(PURGE)' BIN='$(BIN)'

# Built first when go is on PATH (under sudo it often is not: make build,
# then sudo make install).
install: $(if $(shell command -v $(GO)),build)
	@$(INSTALL_ENV) bash scripts/install.sh install

uninstall:
	@$(INSTALL_ENV) bash scripts/install.sh uninstall
endif

vet:
	$(GO) vet $(PKGS)

ifneq ($(UNAME),Darwin)
# compose and buildx first: the e2e tests drive the real plugins (and
# buildx's docker-container builder runs the BuildKit image).
test: deps build vet compose buildx buildkit-image
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) $(PKGS)
	@$(MAKE) --no-print-directory fuzz
endif

# The request decoders' fuzz targets, each for a bounded number of calls
# after the tests (which already replay their seed corpora). The budget is a
# count, not a time: Go 1.26's coordinator can report a bare "context
# deadline exceeded" failure when a -fuzztime duration ends (go.dev/issue/75804,
# fixed in 1.27), and a count has no deadline to race. Each count is about 8 s
# of this target on a quiet 2-core machine. FUZZTIME=30s (or 1000000x) sets one
# budget for all. go test fuzzes one target per run, so they go one after
# another. Minimizing is capped: a new input that widens coverage would
# otherwise take the whole budget to shrink.
FUZZTIME     ?=
FUZZ_TARGETS := ./actors:FuzzCreateContainer:30000 ./httpfront:FuzzFilters:60000 \
	./httpfront:FuzzBuildPruneOptions:60000 ./guest/agent:FuzzArchivePut:5000 \
	./persistence/imagearchive:FuzzLoad:2000 ./guest/wire:FuzzReadFrame:120000 \
	./guest/wire:FuzzChunkReader:250000 ./actors/security:FuzzSecurityOpt:120000
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget=$(FUZZTIME); \
		[ -n "$$budget" ] || budget=$${rest#*:}x; \
		echo "fuzz $$name ($$budget)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$$budget -fuzzminimizetime=2s $$pkg; \
	done

# Tracked and new files, not whatever caches sit in the tree (.cache/).
GOFILES = $$(git ls-files -co --exclude-standard '*.go')

fmt:
	gofmt -w $(GOFILES)

# gofmt -l lists files that need formatting; any output is a failure.
lint: vet
	@out="$$(gofmt -l $(GOFILES))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

ifneq ($(UNAME),Darwin)
# docker compose v2 as a CLI plugin, built from source once (minutes) and
# cached (the first build takes a few minutes); `make test` runs it first.
compose:
	@bash scripts/compose.sh

# docker buildx, the same way (the CLI's BuildKit builds and the
# docker-container builder go through it).
buildx:
	@bash scripts/buildx.sh

# The root filesystem of a BuildKit image (buildkitd and buildctl from the
# module proxy, Debian's runc, busybox) for the docker-container builder's
# tests, which import it: there is no Docker Hub to pull moby/buildkit from.
buildkit-image: deps
	@bash scripts/buildkit-image.sh
endif

clean:
	rm -rf $(BIN)

include bench.mk

# The qemu guest kit and its hook into test (Debian's packages: Linux only).
ifneq ($(UNAME),Darwin)
include kit.mk
endif
