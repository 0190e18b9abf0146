# macOS targets (included by the Makefile when uname is Darwin): the vz
# driver. See docs/macos.md.

# The guest is Linux on the Mac's own architecture.
AGENT_ARCH   ?= arm64
ENTITLEMENTS := scripts/macos/arca.entitlements
# Where install-launchd puts the binaries (the daemon finds the agent
# beside itself) and the kit (kit-install).
PREFIX       ?= $(HOME)/.arca/bin
KIT_DIR      ?= $(HOME)/.arca/kit
LAUNCHD_LABEL := dev.arca.daemon
LAUNCHD_PLIST := $(HOME)/Library/LaunchAgents/$(LAUNCHD_LABEL).plist

.PHONY: install-launchd uninstall-launchd kit-install install uninstall check-mac
CONTEXT      ?= arca

# cgo for the daemon (Code-Hex/vz is Objective-C underneath), signed ad hoc
# with the virtualization entitlement, without which no VM starts; the
# agent static for linux/arm64.
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build $(BUILD_FLAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/arca ./cmd/arca
	codesign --force --entitlements $(ENTITLEMENTS) -s - $(BIN)/arca
	CGO_ENABLED=0 GOOS=linux GOARCH=$(AGENT_ARCH) $(GO) build $(BUILD_FLAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/arca-agent ./cmd/arca-agent

# Nothing to install with a package manager: the docker CLI is the user's
# (e.g. brew install docker), the kit comes from kit-install.
deps:
	@command -v docker >/dev/null || echo "make: no docker CLI on PATH (brew install docker); the integration tests skip without it" >&2
	@test -e $(KIT_DIR)/current || echo "make: no guest kit at $(KIT_DIR)/current (make kit-install KIT_TARBALL=...)" >&2

run: deps build
	@mkdir -p $(dir $(SOCKET))
	@echo 'export DOCKER_HOST=unix://$(SOCKET)'
	exec $(BIN)/arca daemon --socket $(SOCKET) --root $(ROOT) --driver vz --kit $(KIT_DIR)/current

# The integration suite on real VMs: testenv builds and signs its own
# daemon and starts it with --driver vz.
test: deps build vet
	ARCA_TEST_DRIVER=vz $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) $(PKGS)

# The arm64 kit is built on Linux (make kit-arm64) and shipped as a tarball
# of its directory; this unpacks one and points current at it.
kit-install:
	@test -n "$(KIT_TARBALL)" || { echo "make: set KIT_TARBALL to the arm64 kit's .tar.gz" >&2; exit 1; }
	@mkdir -p $(KIT_DIR)
	@dir="$$(tar -tzf $(KIT_TARBALL) | head -1 | cut -d/ -f1)"; \
	test -n "$$dir" || { echo "make: $(KIT_TARBALL) is empty" >&2; exit 1; }; \
	tar -xzf $(KIT_TARBALL) -C $(KIT_DIR) && \
	test -e "$(KIT_DIR)/$$dir/.complete" || { echo "make: $(KIT_TARBALL) holds no complete kit" >&2; exit 1; }; \
	ln -sfn "$$dir" $(KIT_DIR)/current && echo "kit $$dir installed in $(KIT_DIR)"

# A launchd agent in the user's session: the daemon starts at login and is
# restarted if it dies. cp keeps the ad hoc signature.
install-launchd: build
	@mkdir -p $(PREFIX) $(HOME)/.arca $(dir $(LAUNCHD_PLIST))
	cp $(BIN)/arca $(BIN)/arca-agent $(PREFIX)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@HOME@|$(HOME)|g' scripts/macos/$(LAUNCHD_LABEL).plist > $(LAUNCHD_PLIST)
	-launchctl bootout gui/$$(id -u)/$(LAUNCHD_LABEL) 2>/dev/null
	launchctl bootstrap gui/$$(id -u) $(LAUNCHD_PLIST)

uninstall-launchd:
	-launchctl bootout gui/$$(id -u)/$(LAUNCHD_LABEL)
	rm -f $(LAUNCHD_PLIST)

# The same targets and names as on Linux: make install is the launchd
# agent (the daemon at login, restarted if it dies; no root, no socket
# activation) and the docker context CONTEXT (arca) on its socket; make
# uninstall undoes both and removes the binaries, keeping ~/.arca/root
# (the state) unless PURGE=1. Written on Linux, not yet run on a Mac.
install: install-launchd
	@if ! command -v docker >/dev/null; then \
		echo "make: no docker CLI: docker context create $(CONTEXT) --docker host=unix://$(SOCKET) once it is there"; \
	elif docker context inspect $(CONTEXT) >/dev/null 2>&1; then \
		docker context update $(CONTEXT) --description Arca --docker host=unix://$(SOCKET) >/dev/null; \
	else \
		docker context create $(CONTEXT) --description Arca --docker host=unix://$(SOCKET) >/dev/null; \
	fi
	@echo "docker context use $(CONTEXT) switches to Arca, docker context use default back"

uninstall: uninstall-launchd
	rm -f $(PREFIX)/arca $(PREFIX)/arca-agent
	@if command -v docker >/dev/null && docker context inspect $(CONTEXT) >/dev/null 2>&1; then \
		if [ "$$(docker context show)" = "$(CONTEXT)" ]; then docker context use default >/dev/null; fi; \
		docker context rm $(CONTEXT) >/dev/null && echo "docker context $(CONTEXT) removed"; \
	fi
	@if [ "$(PURGE)" = 1 ]; then rm -rf $(ROOT) && echo "removed the state in $(ROOT)"; \
	else echo "the state in $(ROOT) is kept (make uninstall PURGE=1 removes it)"; fi

# The install checked end to end (docs/macos.md, "How to check a Mac
# install"): arca doctor --full of the installed binary (else bin/arca)
# against the running daemon, through the context; the report is also
# written to arca-check.txt, to paste into an issue.
check-mac:
	@arca=$(PREFIX)/arca; test -x $$arca || arca=$(BIN)/arca; \
	{ $$arca doctor --full --socket $(SOCKET) --root $(ROOT) --kit $(KIT_DIR)/current 2>&1; echo $$? > arca-check.status; } | tee arca-check.txt; \
	status=$$(cat arca-check.status); rm -f arca-check.status; \
	echo "(the report is in arca-check.txt)"; exit $$status
