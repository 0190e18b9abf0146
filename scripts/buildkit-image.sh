#!/usr/bin/env bash
# buildkit-image.sh makes the root filesystem of a BuildKit image, the
# kind `docker buildx create --driver docker-container` runs, for tests on
# a machine with no Docker Hub: buildkitd and buildctl built from the Go
# module proxy, Debian's runc (with the shared libraries it needs) and
# busybox-static for a shell. The result is a tar of the whole tree, which
# `docker import` turns into an image:
#
#   docker import -c 'ENTRYPOINT ["buildkitd"]' \
#       -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
#       /var/cache/arca/buildkit/v0.34.2/rootfs.tar buildkit
#
# A second run with the tarball in place does nothing.
#
# Environment:
#   BUILDKIT_VERSION  version to build (default v0.34.2, the one buildx v0.38.2 uses)
#   BUILDKIT_CACHE    where the source copy, the binaries and the tarball go
#                     (default /var/cache/arca/buildkit)
set -euo pipefail

version="${BUILDKIT_VERSION:-v0.34.2}"
cache="${BUILDKIT_CACHE:-/var/cache/arca/buildkit}"
module="github.com/moby/buildkit"
out="$cache/$version"
tarball="$out/rootfs.tar"

. "$(dirname "${BASH_SOURCE[0]}")/lib/gomodule.sh"
log() { echo "buildkit-image.sh: $*" >&2; }

if [ -f "$tarball" ]; then
	exit 0
fi
command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
for f in /usr/sbin/runc /bin/busybox; do
	[ -x "$f" ] || { log "$f is missing (scripts/deps.sh installs runc and busybox-static)"; exit 1; }
done

src="$out/src"
module_source "$module" "$version" "$src"

bin="$out/bin"
if [ ! -x "$bin/buildkitd" ] || [ ! -x "$bin/buildctl" ]; then
	log "building buildkitd and buildctl $version (takes a few minutes the first time)"
	mkdir -p "$bin"
	(
		cd "$src"
		# The version stamp is what `buildkitd --version` prints; buildx
		# reads the builder's version from it (four fields, the last the
		# revision, which a module download does not carry).
		CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -buildvcs=false \
			-ldflags "-s -w -X $module/version.Version=$version -X $module/version.Revision=$version" \
			-o "$bin/" ./cmd/buildkitd ./cmd/buildctl
	)
fi

# The tree, assembled in a temp dir and packed with root as the owner of
# everything.
root="$(mktemp -d "$out/.root.XXXXXX")"
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/buildkit,var/lib/buildkit,run,tmp,root,proc,sys,dev}
chmod 1777 "$root/tmp"
cp "$bin/buildkitd" "$bin/buildctl" "$root/usr/bin/"
cp /usr/sbin/runc "$root/usr/sbin/runc"
# runc is dynamically linked (libseccomp): its loader and libraries go at
# the paths ldd names.
ldd /usr/sbin/runc | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }' | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
log "wrote $tarball"
