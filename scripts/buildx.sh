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

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }

# go mod download prints JSON; Dir is the read-only extracted module.
json="$(go mod download -json "$module@$version")" || {
	log "go mod download $module@$version failed: $json"
	exit 1
}
moddir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [ -z "$moddir" ] || [ ! -f "$moddir/go.mod" ]; then
	log "no module dir in go mod download output: $json"
	exit 1
fi

# Built as the main module in a writable copy (the module cache is
# read-only, and `go install module@version` refuses replace directives).
# Copied into a temp dir and renamed, so an interrupted copy never leaves
# a half tree behind.
src="$cache/$version"
if [ ! -f "$src/.complete" ]; then
	mkdir -p "$cache"
	tmp="$(mktemp -d "$cache/.copy.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	cp -R "$moddir/." "$tmp/"
	chmod -R u+w "$tmp"
	touch "$tmp/.complete"
	rm -rf "$src"
	mv "$tmp" "$src"
	trap - EXIT
fi

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
