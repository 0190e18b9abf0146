#!/usr/bin/env bash
# buildx.sh builds the docker buildx CLI plugin from source through the Go
# module proxy (the only place we can get it from) and installs it as
# ~/.docker/cli-plugins/docker-buildx. A second run with the plugin already at
# the wanted version does nothing.
#
# Environment:
#   BUILDX_VERSION  version to build (default v0.38.2)
#   BUILDX_CACHE    where the writable source copy lives
#                   (default /var/cache/arca/buildx)
#   BUILDX_DEST     plugin path (default ~/.docker/cli-plugins/docker-buildx)
set -euo pipefail

version="${BUILDX_VERSION:-v0.38.2}"
cache="${BUILDX_CACHE:-/var/cache/arca/buildx}"
dest="${BUILDX_DEST:-${HOME:-/root}/.docker/cli-plugins/docker-buildx}"
module="github.com/docker/buildx"

. "$(dirname "${BASH_SOURCE[0]}")/lib/gomodule.sh"
log() { echo "buildx.sh: $*" >&2; }

# The plugin prints "github.com/docker/buildx v0.38.2 <revision>"; the
# version stamp is also what the CLI and compose check (compose refuses a
# buildx that reports no version as too old).
installed_version() {
	[ -x "$dest" ] || return 1
	"$dest" version 2>/dev/null | awk 'NR == 1 { print $2 }'
}
if have="$(installed_version)" && [ "$have" = "$version" ]; then
	exit 0
fi

src="$cache/$version"
module_source "$module" "$version" "$src"

mkdir -p "$(dirname "$dest")"
log "building docker buildx $version (takes a few minutes the first time)"
(
	cd "$src"
	CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -buildvcs=false \
		-ldflags "-w -X $module/version.Version=$version" \
		-o "$dest.tmp" ./cmd/buildx
)
mv "$dest.tmp" "$dest"
chmod 0755 "$dest"
log "installed $("$dest" version 2>/dev/null || echo '?') at $dest"
