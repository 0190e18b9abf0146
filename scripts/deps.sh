#!/usr/bin/env bash
# deps.sh installs what building and testing Arca needs on a Debian 12 machine,
# as root and without a terminal (CI runs it with no stdin). It only touches
# apt when a package is missing, so a second run is a few dpkg-query calls and
# a cached `go mod download`: well under a second.
set -euo pipefail

cd "$(dirname "$0")/.."

# docker-registry: a real registry for pull/push tests; busybox-static: the
# test image's contents; iproute2: sandbox networking; e2fsprogs: mkfs.ext4 for
# qemu disks and block volumes (debugfs in their tests); curl: debugging the socket by hand; python3-docker: docker-py
# compatibility tests; qemu-system-x86, kmod, xz-utils: the qemu driver and its
# kit (scripts/kit.sh); qemu-system-arm: qemu-system-aarch64, which boots the
# arm64 kit (e2fsprogs' e2fsck and debugfs also check the Go ext4 writer);
# runc: the test BuildKit image's runtime (scripts/buildkit-image.sh);
# chromium: the live page's browser test (chromedp drives it headless);
# systemd: systemd-analyze verify and systemd-socket-activate for the test of
# make install's units (systemd need not be PID 1 for those).
packages=(docker-registry busybox-static iproute2 e2fsprogs curl python3-docker qemu-system-x86 qemu-system-arm kmod xz-utils runc chromium systemd)

missing=()
for p in "${packages[@]}"; do
	status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
	# "ii " is installed and configured; anything else (absent, half-installed,
	# config-files only) gets (re)installed.
	if [ "${status:0:2}" != "ii" ]; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps.sh: missing packages ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "deps.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# docker-registry's postinst would start a registry on :5000; tests start
	# their own on free ports, so keep services from starting while we install,
	# unless the machine already has a policy in place.
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt_opts=(-q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	apt-get "${apt_opts[@]}" update >/dev/null || {
		echo "deps.sh: apt-get update failed" >&2
		exit 1
	}
	apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" </dev/null >/tmp/arca-deps-apt.log 2>&1 || {
		echo "deps.sh: apt-get install ${missing[*]} failed; log follows" >&2
		cat /tmp/arca-deps-apt.log >&2
		exit 1
	}
fi

# The docker CLI is part of the machine image (Debian 12 ships no standalone
# client): tests skip without it, so say so loudly here rather than later.
if ! command -v docker >/dev/null; then
	echo "deps.sh: warning: no docker CLI on PATH; end-to-end tests will be skipped" >&2
fi

# Modules come from the proxy; with a warm cache this is a few milliseconds.
go mod download
