#!/usr/bin/env bash
# kit.sh builds the qemu driver's guest kit from Debian packages only: a
# Debian 6.1 kernel and the few modules the agent loads at boot, with their
# load order. The initramfs is not here: the driver packs it from these
# modules and the daemon's own arca-agent, so the agent in a VM always
# matches the daemon.
#
#   KIT_ARCH (default amd64) is the guest's architecture:
#     amd64  the generic kernel as an ELF vmlinux (it boots via its PVH note,
#            twice as fast as the bzImage), for qemu-system-x86_64 -M microvm;
#     arm64  the arm64 kernel as a plain Image (what vz and
#            qemu-system-aarch64 -M virt load), from Debian's arm64 packages
#            (dpkg --add-architecture arm64).
#   KIT_ROOT (default /var/cache/arca/kit, or /var/cache/arca/kit-arm64) gets
#   <kernel-release>-k<format>/ and a "current" link to it, which is the
#   daemon's default --kit.
#
# Idempotent and quiet: a second run is an apt-cache lookup and a stat. Safe
# without a terminal (CI runs it with no stdin). Needs root for apt.
set -euo pipefail

KIT_ARCH="${KIT_ARCH:-amd64}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# What differs between the architectures: the emulator, the kernel's
# metapackage, the kernel file the kit holds, and the buses the guest's
# devices sit on (microvm: virtio-mmio; arm64 virt and vz: virtio-pci, with
# virtio-mmio kept for qemu's virt machine's own transports).
case "$KIT_ARCH" in
amd64)
	KIT_ROOT="${KIT_ROOT:-/var/cache/arca/kit}"
	qemu_pkg=qemu-system-x86
	meta=linux-image-amd64
	pkg_suffix=""
	kernel_file=vmlinux
	boot=(virtio_mmio virtio_blk virtio_console crc32c_generic ext4 overlay)
	extra=(virtio_net wireguard 9pnet_virtio 9p vmw_vsock_virtio_transport virtio_balloon)
	;;
arm64)
	KIT_ROOT="${KIT_ROOT:-/var/cache/arca/kit-arm64}"
	qemu_pkg=qemu-system-arm
	meta=linux-image-arm64:arm64
	pkg_suffix=":arm64"
	kernel_file=Image
	boot=(virtio_mmio virtio_pci virtio_blk virtio_console crc32c_generic ext4 overlay)
	extra=(virtio_net wireguard 9pnet_virtio 9p virtiofs vmw_vsock_virtio_transport virtio_balloon)
	;;
*)
	echo "kit.sh: unknown KIT_ARCH $KIT_ARCH (amd64 or arm64)" >&2
	exit 1
	;;
esac

# Tools: qemu itself, depmod (kmod), xz for the kernel payload.
need=("$qemu_pkg" kmod xz-utils e2fsprogs)
missing=()
for p in "${need[@]}"; do
	status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
	[ "${status:0:2}" = "ii" ] || missing+=("$p")
done
updated=""
if [ "$KIT_ARCH" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$KIT_ARCH"; then
	dpkg --add-architecture "$KIT_ARCH"
	apt-get "${apt_opts[@]}" update >/dev/null
	updated=1
fi
if [ "${#missing[@]}" -gt 0 ]; then
	echo "kit.sh: installing ${missing[*]}" >&2
	[ -n "$updated" ] || apt-get "${apt_opts[@]}" update >/dev/null
	updated=1
	apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" </dev/null >/tmp/arca-kit-apt.log 2>&1 || {
		echo "kit.sh: apt-get install ${missing[*]} failed; log follows" >&2
		cat /tmp/arca-kit-apt.log >&2
		exit 1
	}
fi

# The generic kernel the metapackage points at today, e.g.
# linux-image-6.1.0-56-amd64. (The cloud kernel boots faster but lacks 9p.)
resolve_pkg() {
	apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {sub(/:.*/, "", $2); print $2; exit}'
}
pkg="$(resolve_pkg)"
if [ -z "$pkg" ] && [ -z "$updated" ]; then
	apt-get "${apt_opts[@]}" update >/dev/null
	pkg="$(resolve_pkg)"
fi
[ -n "$pkg" ] || { echo "kit.sh: cannot resolve $meta" >&2; exit 1; }
release="${pkg#linux-image-}"
# Bumped whenever what goes into a kit changes, so existing kits are rebuilt.
format=3
name="$release-k$format"
kit="$KIT_ROOT/$name"

# arm64 only: Debian's static busybox for arm64, the userland of the test
# that boots this kit (guest/vm/qemu's TestARM64Boot makes its image from it).
# Kept beside the kits as $KIT_ROOT/busybox, rebuilt when Debian's changes.
if [ "$KIT_ARCH" = arm64 ]; then
	bb_ver="$(apt-cache policy busybox-static:arm64 | awk '/Candidate:/ {print $2; exit}')"
	[ -n "$bb_ver" ] && [ "$bb_ver" != "(none)" ] || { echo "kit.sh: no busybox-static:arm64" >&2; exit 1; }
	bb_dir="$KIT_ROOT/busybox-${bb_ver//:/_}"
	if [ ! -x "$bb_dir/busybox" ]; then
		mkdir -p "$KIT_ROOT"
		bb_work="$(mktemp -d "$KIT_ROOT/.busybox-XXXXXX")"
		(cd "$bb_work" && apt-get -q download "busybox-static:arm64=$bb_ver" >/dev/null 2>&1) || {
			rm -rf "$bb_work"
			echo "kit.sh: apt-get download busybox-static:arm64 failed" >&2
			exit 1
		}
		dpkg-deb -x "$bb_work"/busybox-static_*.deb "$bb_work/x"
		mkdir -p "$bb_work/out"
		cp "$bb_work/x/bin/busybox" "$bb_work/out/busybox"
		rm -rf "$bb_dir"
		mv "$bb_work/out" "$bb_dir"
		rm -rf "$bb_work"
	fi
	ln -sfn "$(basename "$bb_dir")" "$KIT_ROOT/busybox"
fi

if [ -f "$kit/.complete" ]; then
	ln -sfn "$name" "$KIT_ROOT/current"
	exit 0
fi

echo "kit.sh: building $kit from $pkg" >&2
mkdir -p "$KIT_ROOT"
work="$(mktemp -d "$KIT_ROOT/.build-XXXXXX")"
trap 'rm -rf "$work"' EXIT
# The download runs as root in a directory _apt cannot enter: apt warns
# and fetches it unsandboxed, which is fine here.
(cd "$work" && apt-get -q download "$pkg$pkg_suffix" >/dev/null 2>&1) || {
	apt-get "${apt_opts[@]}" update >/dev/null
	(cd "$work" && apt-get -q download "$pkg$pkg_suffix" >/dev/null 2>&1)
}
dpkg-deb -x "$work"/"$pkg"_*.deb "$work/x"
vmlinuz="$work/x/boot/vmlinuz-$release"
moddir="$work/x/lib/modules/$release"

# vmlinux (amd64): the bzImage carries the kernel as one compressed
# payload; find each candidate start by the format's magic and keep the
# first that decompresses to an ELF file (trailing bytes after the stream
# are expected, hence the ignored exit status).
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
# Image (arm64): vz loads only a plain Image. Debian's 6.1 arm64 vmlinuz is
# one already (an EFI-stub Image), but a gzip-compressed one (what other
# kernels and older Debian releases ship) is unpacked; either way the arm64
# header's magic "ARM\x64" at 0x38 must be there.
arm64_image() {
	if [ "$(head -c 2 "$vmlinuz" | od -An -tx1 | tr -d ' ')" = "1f8b" ]; then
		gzip -dc "$vmlinuz" >"$work/Image"
	else
		cp "$vmlinuz" "$work/Image"
	fi
	[ "$(tail -c +57 "$work/Image" | head -c 4 | od -An -tx1 | tr -d ' ')" = "41524d64" ]
}
case "$KIT_ARCH" in
amd64)
	extract '\xFD7zXZ\x00' xz -dc ||
		extract '\x28\xB5\x2F\xFD' zstd -dc ||
		extract '\x1F\x8B\x08' gzip -dc || {
		echo "kit.sh: no ELF kernel inside $vmlinuz" >&2
		exit 1
	}
	;;
arm64)
	arm64_image || {
		echo "kit.sh: $vmlinuz is no arm64 Image (nor a gzipped one)" >&2
		exit 1
	}
	;;
esac

# The .deb ships no modules.dep.
depmod -b "$work/x" "$release"

# Modules the agent loads at boot (the lists above), in this order after
# their dependencies: the bus (virtio-mmio on microvm, virtio-pci on arm64),
# the disks, the agent's port, ext4 (which needs crc32c for metadata
# checksums), overlay. The extras are packed but loaded only when a machine
# first needs one (its NIC and WireGuard, 9p or virtiofs shares, vsock). A
# module built into the kernel is skipped.

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
resolve() { # module name -> path relative to $moddir ("" if built in)
	local p
	p="$(awk -F: -v n="$1.ko" '{ k = $1; sub(".*/", "", k); gsub("-", "_", k) } k == n { print $1; exit }' "$moddir/modules.dep")"
	if [ -z "$p" ]; then
		awk -v n="$1.ko" '{ k = $1; sub(".*/", "", k); gsub("-", "_", k) } k == n { found = 1 } END { exit !found }' "$moddir/modules.builtin" ||
			{ echo "kit.sh: module $1 not in $release" >&2; exit 1; }
	fi
	echo "$p"
}

out="$work/kit"
mkdir -p "$out/modules"
for list in boot extra; do
	order=()
	eval "names=(\"\${${list}[@]}\")"
	for n in "${names[@]}"; do
		p="$(resolve "$n")"
		[ -z "$p" ] || visit "$p"
	done
	for m in "${order[@]}"; do
		cp "$moddir/$m" "$out/modules/"
		basename "$m" >>"$out/modules.$list"
	done
done
touch "$out/modules.extra" # may be empty if boot took every dependency
mv "$work/$kernel_file" "$out/$kernel_file"
echo "$kernel_file" >"$out/kernel"
echo "$KIT_ARCH" >"$out/arch"
echo "$release" >"$out/release"
touch "$out/.complete"

rm -rf "$kit"
mv "$out" "$kit"
ln -sfn "$name" "$KIT_ROOT/current"
echo "kit.sh: kit ready in $kit" >&2
