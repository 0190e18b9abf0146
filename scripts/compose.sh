#!/usr/bin/env bash
# compose.sh builds the docker compose v2 CLI plugin from source through the Go
# module proxy (the only place we can get it from) and installs it as
# ~/.docker/cli-plugins/docker-compose. A second run with the plugin already at
# the wanted version does nothing.
#
# Environment:
#   COMPOSE_VERSION  version to build (default v2.40.3)
#   COMPOSE_CACHE    where the writable source copy lives
#                    (default /var/cache/arca/compose)
#   COMPOSE_DEST     plugin path (default ~/.docker/cli-plugins/docker-compose)
set -euo pipefail

version="${COMPOSE_VERSION:-v2.40.3}"
cache="${COMPOSE_CACHE:-/var/cache/arca/compose}"
dest="${COMPOSE_DEST:-${HOME:-/root}/.docker/cli-plugins/docker-compose}"
module="github.com/docker/compose/v2"

. "$(dirname "${BASH_SOURCE[0]}")/lib/gomodule.sh"
log() { echo "compose.sh: $*" >&2; }

# The plugin prints "v2.40.3" for `version --short` (without the "v" on some
# releases): accept both so an older or foreign binary gets rebuilt.
installed_version() {
	[ -x "$dest" ] || return 1
	"$dest" version --short 2>/dev/null | head -n1
}
if have="$(installed_version)" && [ "v${have#v}" = "$version" ]; then
	exit 0
fi

src="$cache/$version"
module_source "$module" "$version" "$src"

mkdir -p "$(dirname "$dest")"
log "building docker compose $version (takes a few minutes the first time)"
(
	cd "$src"
	# Same flags as compose's own Makefile, minus the e2e tag; the version
	# stamp is what `docker compose version` prints and what clients read.
	CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -buildvcs=false \
		-ldflags "-w -X $module/internal.Version=$version" \
		-o "$dest.tmp" ./cmd
)
mv "$dest.tmp" "$dest"
chmod 0755 "$dest"
log "installed $("$dest" version --short 2>/dev/null || echo '?') at $dest"
