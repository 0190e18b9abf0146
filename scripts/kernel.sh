#!/usr/bin/env bash
# kernel.sh compiles Arca's own guest kernel from Debian's linux-source-6.1
# with the config in guest/kernel (tinyconfig + arca.config-fragment +
# arca-<arch>.config-fragment, then olddefconfig): everything the guest
# needs built in, no modules. It then makes a kit of it beside the Debian
# kits of scripts/kit.sh, which the drivers prefer (see docs/qemu.md).
#
#   KERNEL_ARCH (default amd64): amd64 (an ELF vmlinux, booted through its
#     PVH note on qemu's microvm) or arm64 (a plain Image, for vz and
#     qemu-system-aarch64 -M virt; cross-compiled with Debian's
#     gcc-aarch64-linux-gnu).
#   KERNEL_CACHE (default /var/cache/arca/kernel): the unpacked source, the
#     out-of-tree build directories and the finished kernels, one per
#     (architecture, source version, config hash).
#   KIT_ROOT (default /var/cache/arca/kit, or /var/cache/arca/kit-arm64):
#     gets the kit <release>-k<format>/ and the link "arca" to it.
#   KERNEL_JOBS (default: the number of CPUs): make -j.
#
# A kernel whose key is already built costs a hash and a stat; a new config
# rebuilds in the same build directory (only what the change touches). The
# compile runs at nice 10: the machines that run it share their cores.
set -euo pipefail

KERNEL_ARCH="${KERNEL_ARCH:-amd64}"
KERNEL_CACHE="${KERNEL_CACHE:-/var/cache/arca/kernel}"
KERNEL_JOBS="${KERNEL_JOBS:-$(nproc)}"
here="$(cd "$(dirname "$0")/.." && pwd)"
conf="$here/guest/kernel"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

case "$KERNEL_ARCH" in
amd64)
	KIT_ROOT="${KIT_ROOT:-/var/cache/arca/kit}"
	make_arch=(ARCH=x86_64)
	target=vmlinux
	built=vmlinux
	kernel_file=vmlinux
	cross=()
	;;
arm64)
	KIT_ROOT="${KIT_ROOT:-/var/cache/arca/kit-arm64}"
	make_arch=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
	target=Image
	built=arch/arm64/boot/Image
	kernel_file=Image
	cross=(gcc-aarch64-linux-gnu)
	;;
*)
	echo "kernel.sh: unknown KERNEL_ARCH $KERNEL_ARCH (amd64 or arm64)" >&2
	exit 1
	;;
esac
frags=("$conf/arca.config-fragment" "$conf/arca-$KERNEL_ARCH.config-fragment")

# Tools and the source.
need=(linux-source-6.1 build-essential bc bison flex libelf-dev libssl-dev "${cross[@]}")
missing=()
for p in "${need[@]}"; do
	status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
	[ "${status:0:2}" = "ii" ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "kernel.sh: installing ${missing[*]}" >&2
	apt-get "${apt_opts[@]}" update >/dev/null
	apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" </dev/null >/tmp/arca-kernel-apt.log 2>&1 || {
		echo "kernel.sh: apt-get install ${missing[*]} failed; log follows" >&2
		cat /tmp/arca-kernel-apt.log >&2
		exit 1
	}
fi
src_ver="$(dpkg-query -W -f='${Version}' linux-source-6.1)"
tarball="$(dpkg -L linux-source-6.1 | grep -m1 '/usr/src/linux-source-6.1\.tar\.')"

# The key: what decides the kernel. The fragments, the source package's
# version, the architecture, and format, bumped when this script changes
# how a kernel is made.
format=1
key="$( (cat "${frags[@]}"; echo "$src_ver $KERNEL_ARCH $format") | sha256sum | cut -c1-12)"
name="$KERNEL_ARCH-${src_ver//[:~]/_}-$key"
out="$KERNEL_CACHE/$name"

if [ ! -f "$out/.complete" ]; then
	mkdir -p "$KERNEL_CACHE"
	exec 9>"$KERNEL_CACHE/.lock-$KERNEL_ARCH"
	flock 9
fi
if [ ! -f "$out/.complete" ]; then
	# The source, unpacked once per version, shared by the architectures.
	src="$KERNEL_CACHE/src/linux-source-${src_ver//[:~]/_}"
	if [ ! -f "$src/.unpacked" ]; then
		echo "kernel.sh: unpacking $tarball" >&2
		rm -rf "$src" "$src.tmp"
		mkdir -p "$src.tmp"
		tar -C "$src.tmp" --strip-components=1 -xf "$tarball"
		touch "$src.tmp/.unpacked"
		mv "$src.tmp" "$src"
	fi

	# One build directory per architecture and source: a changed config
	# recompiles only what it touches.
	obj="$KERNEL_CACHE/build/$KERNEL_ARCH-${src_ver//[:~]/_}"
	mkdir -p "$obj"
	# Reproducible: no user, host or date of this machine in the image
	# (the date is the source package's).
	KBUILD_BUILD_TIMESTAMP="$(date -u -R -r "$tarball")"
	export KBUILD_BUILD_USER=arca KBUILD_BUILD_HOST=arca KBUILD_BUILD_TIMESTAMP
	kmake() { nice -n 10 make -s -C "$src" O="$obj" "${make_arch[@]}" "$@"; }

	kmake tinyconfig >/dev/null 2>"$obj/tinyconfig.log" || { cat "$obj/tinyconfig.log" >&2; exit 1; }
	{
		echo
		cat "${frags[@]}"
		echo "CONFIG_LOCALVERSION=\"-arca-${key:0:8}\""
		echo "# CONFIG_LOCALVERSION_AUTO is not set"
	} >>"$obj/.config"
	# (It warns of every option the fragments set again: that is the point.)
	kmake olddefconfig >/dev/null 2>"$obj/olddefconfig.log" || { cat "$obj/olddefconfig.log" >&2; exit 1; }
	# Every option the fragments set must have survived olddefconfig as
	# written: one that did not lacks a dependency the fragments must add.
	bad=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) grep -qxF "$line" "$obj/.config" || { echo "kernel.sh: $line did not stick" >&2; bad=1; } ;;
		"# CONFIG_"*" is not set")
			sym="${line#\# }"
			sym="${sym%% *}"
			! grep -q "^$sym=" "$obj/.config" || { echo "kernel.sh: $sym is still set" >&2; bad=1; }
			;;
		esac
	done < <(cat "${frags[@]}")
	[ "$bad" = 0 ] || { echo "kernel.sh: fix guest/kernel/*.config-fragment" >&2; exit 1; }
	! grep -q '^CONFIG_MODULES=y' "$obj/.config" || { echo "kernel.sh: modules are on" >&2; exit 1; }

	echo "kernel.sh: compiling $name (-j$KERNEL_JOBS, nice 10; ~10 min on 2 cores)" >&2
	# Wall time and CPU time (user + sys of the whole compile, which tells
	# what it costs on idle cores when the machine is busy).
	TIMEFORMAT='%R %U %S'
	{ time kmake -j"$KERNEL_JOBS" "$target" 2>&3; } 3>&2 2>"$obj/time.log"
	read -r wall user sys <"$obj/time.log"
	release="$(kmake -s kernelrelease)"
	tmp="$(mktemp -d "$KERNEL_CACHE/.out-XXXXXX")"
	chmod 755 "$tmp"
	cp "$obj/$built" "$tmp/$kernel_file"
	cp "$obj/.config" "$tmp/config"
	echo "$release" >"$tmp/release"
	echo "linux-source-6.1 $src_ver" >"$tmp/source"
	printf 'wall %.0f s, cpu %.0f s, -j%s, load %s\n' "$wall" "$(echo "$user + $sys" | bc)" "$KERNEL_JOBS" \
		"$(cut -d' ' -f1-3 /proc/loadavg)" >"$tmp/compile-time"
	touch "$tmp/.complete"
	rm -rf "$out"
	mv "$tmp" "$out"
	echo "kernel.sh: $release compiled ($(cat "$out/compile-time")): $out" >&2
fi
release="$(cat "$out/release")"

# The kit: the kernel and no modules (everything is built in). Its name
# carries the release, which carries the key.
kit_format=1
kit_name="$release-k$kit_format"
kit="$KIT_ROOT/$kit_name"
if [ ! -f "$kit/.complete" ]; then
	mkdir -p "$KIT_ROOT"
	tmp="$(mktemp -d "$KIT_ROOT/.build-XXXXXX")"
	chmod 755 "$tmp"
	cp "$out/$kernel_file" "$tmp/$kernel_file"
	echo "$kernel_file" >"$tmp/kernel"
	echo "$KERNEL_ARCH" >"$tmp/arch"
	echo "$release" >"$tmp/release"
	cp "$out/source" "$tmp/source"
	: >"$tmp/modules.boot"
	: >"$tmp/modules.extra"
	mkdir "$tmp/modules"
	touch "$tmp/.complete"
	rm -rf "$kit"
	mv "$tmp" "$kit"
	echo "kernel.sh: kit ready in $kit" >&2
fi
ln -sfn "$kit_name" "$KIT_ROOT/arca"
