#!/usr/bin/env bash
# kit.sh builds the qemu driver's guest kit from Debian packages only: the
# generic amd64 kernel as an ELF vmlinux (it boots via its PVH note, twice as
# fast as the bzImage) and the few modules the agent loads at boot, with
# their load order. The initramfs is not here: the driver packs it from these
# modules and the daemon's own arca-agent, so the agent in a VM always
# matches the daemon.
#
#   KIT_ROOT (default /var/cache/arca/kit) gets <kernel-release>-k<format>/ and a
#   "current" link to it, which is the daemon's default --kit.
#
# Idempotent and quiet: a second run is an apt-cache lookup and a stat. Safe
# without a terminal (CI runs it with no stdin). Needs root for apt.
set -euo pipefail

KIT_ROOT="${KIT_ROOT:-/var/cache/arca/kit}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# Tools: qemu itself, depmod (kmod), xz for the kernel payload.
need=(qemu-system-x86 kmod xz-utils e2fsprogs)
missing=()
for p in "${need[@]}"; do
	status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
	[ "${status:0:2}" = "ii" ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "kit.sh: installing ${missing[*]}" >&2
	apt-get "${apt_opts[@]}" update >/dev/null
	apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" </dev/null >/tmp/arca-kit-apt.log 2>&1 || {
		echo "kit.sh: apt-get install ${missing[*]} failed; log follows" >&2
		cat /tmp/arca-kit-apt.log >&2
		exit 1
	}
fi

# The generic kernel the metapackage points at today, e.g.
# linux-image-6.1.0-56-amd64. (The cloud kernel boots faster but lacks 9p.)
pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$pkg" ]; then
	apt-get "${apt_opts[@]}" update >/dev/null
	pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
fi
[ -n "$pkg" ] || { echo "kit.sh: cannot resolve linux-image-amd64" >&2; exit 1; }
release="${pkg#linux-image-}"
# Bumped whenever what goes into a kit changes, so existing kits are rebuilt.
format=2
name="$release-k$format"
kit="$KIT_ROOT/$name"

if [ -f "$kit/.complete" ]; then
	ln -sfn "$name" "$KIT_ROOT/current"
	exit 0
fi

echo "kit.sh: building $kit from $pkg" >&2
mkdir -p "$KIT_ROOT"
work="$(mktemp -d "$KIT_ROOT/.build-XXXXXX")"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get -q download "$pkg" >/dev/null 2>&1) || {
	apt-get "${apt_opts[@]}" update >/dev/null
	(cd "$work" && apt-get -q download "$pkg" >/dev/null 2>&1)
}
dpkg-deb -x "$work"/"$pkg"_*.deb "$work/x"
vmlinuz="$work/x/boot/vmlinuz-$release"
moddir="$work/x/lib/modules/$release"

# vmlinux: the bzImage carries the kernel as one compressed payload; find
# each candidate start by the format's magic and keep the first that
# decompresses to an ELF file (trailing bytes after the stream are expected,
# hence the ignored exit status).
extract() { # magic(grep -P) decompressor...
	local magic="$1"
	shift
	local off
	for off in $(LC_ALL=C grep -obUaP "$magic" "$vmlinuz" | cut -d: -f1); do
		tail -c +$((off + 1)) "$vmlinuz" | "$@" >"$work/vmlinux" 2>/dev/null || true
		if [ "$(head -c 4 "$work/vmlinux" | od -An -c | tr -d ' ')" = "177ELF" ]; then
			return 0
		fi
	done
	return 1
}
extract '\xFD7zXZ\x00' xz -dc ||
	extract '\x28\xB5\x2F\xFD' zstd -dc ||
	extract '\x1F\x8B\x08' gzip -dc || {
	echo "kit.sh: no ELF kernel inside $vmlinuz" >&2
	exit 1
}

# The .deb ships no modules.dep.
depmod -b "$work/x" "$release"

# Modules the agent loads at boot, in this order after their dependencies:
# virtio-mmio (microvm's bus), the disks, the agent's port, ext4 (which needs
# crc32c for metadata checksums), overlay. The extras are packed but loaded
# only when a machine first needs one (its NIC and WireGuard, 9p shares,
# vsock).
boot=(virtio_mmio virtio_blk virtio_console crc32c_generic ext4 overlay)
extra=(virtio_net wireguard 9pnet_virtio 9p vmw_vsock_virtio_transport)

declare -A seen=()
order=()
visit() { # module path relative to $moddir
	local m="$1" dep
	[ -z "${seen[$m]:-}" ] || return 0
	seen[$m]=1
	for dep in $(awk -v m="$m:" '$1 == m { $1 = ""; print }' "$moddir/modules.dep"); do
		visit "$dep"
	done
	order+=("$m")
}
resolve() { # module name -> path relative to $moddir
	local p
	p="$(awk -F: -v n="$1.ko" '{ k = $1; sub(".*/", "", k); gsub("-", "_", k) } k == n { print $1; exit }' "$moddir/modules.dep")"
	[ -n "$p" ] || { echo "kit.sh: module $1 not in $release" >&2; exit 1; }
	echo "$p"
}

out="$work/kit"
mkdir -p "$out/modules"
for list in boot extra; do
	order=()
	eval "names=(\"\${${list}[@]}\")"
	for n in "${names[@]}"; do
		visit "$(resolve "$n")"
	done
	for m in "${order[@]}"; do
		cp "$moddir/$m" "$out/modules/"
		basename "$m" >>"$out/modules.$list"
	done
done
touch "$out/modules.extra" # may be empty if boot took every dependency
mv "$work/vmlinux" "$out/vmlinux"
echo "$release" >"$out/release"
touch "$out/.complete"

rm -rf "$kit"
mv "$out" "$kit"
ln -sfn "$name" "$KIT_ROOT/current"
echo "kit.sh: kit ready in $kit" >&2
