#!/usr/bin/env bash
# Starts a reference dockerd for `go run ./bench --compare`, from Debian's
# packages unpacked into a private directory: installing docker.io would
# replace the docker CLI on PATH with Debian's older one. Benchmarking only;
# no test starts it.
#
#   bench/dockerd.sh start   # unpack if needed, start, wait until it serves
#   bench/dockerd.sh stop
#
# Knobs: DOCKERD_DIR (unpacked packages), REF_SOCK, REF_ROOT, REF_EXEC.
set -euo pipefail

DOCKERD_DIR=${DOCKERD_DIR:-/var/cache/arca/dockerd}
REF_SOCK=${REF_SOCK:-/tmp/ref.sock}
REF_ROOT=${REF_ROOT:-/tmp/ref}
REF_EXEC=${REF_EXEC:-/tmp/ref-exec}
PIDFILE=$REF_EXEC.pid
LOG=$REF_EXEC.log
PKGS="docker.io containerd runc tini"

unpack() {
	if [ -x "$DOCKERD_DIR/root/usr/sbin/dockerd" ]; then
		return
	fi
	# Shared libraries the binaries link against; none of these touch the
	# docker CLI.
	local need=()
	for p in libdevmapper1.02.1 libseccomp2 libsystemd0; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
	done
	if [ ${#need[@]} -gt 0 ]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
	fi
	mkdir -p "$DOCKERD_DIR/debs" "$DOCKERD_DIR/root"
	(cd "$DOCKERD_DIR/debs" && apt-get download $PKGS)
	for deb in "$DOCKERD_DIR"/debs/*.deb; do
		dpkg-deb -x "$deb" "$DOCKERD_DIR/root"
	done
}

start() {
	unpack
	if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		echo "dockerd already running (pid $(cat "$PIDFILE")) on $REF_SOCK"
		return
	fi
	mkdir -p "$REF_ROOT" "$REF_EXEC"
	local bin="$DOCKERD_DIR/root/usr/sbin:$DOCKERD_DIR/root/usr/bin"
	# dockerd starts its own containerd (found on PATH), which finds runc and
	# the shim on PATH too.
	PATH="$bin:$PATH" setsid "$DOCKERD_DIR/root/usr/sbin/dockerd" \
		--iptables=false --ip6tables=false --bridge=none \
		-H "unix://$REF_SOCK" --data-root "$REF_ROOT" --exec-root "$REF_EXEC" \
		--pidfile "$PIDFILE" >"$LOG" 2>&1 </dev/null &
	for _ in $(seq 1 150); do
		if DOCKER_HOST="unix://$REF_SOCK" docker version >/dev/null 2>&1; then
			DOCKER_HOST="unix://$REF_SOCK" docker version --format 'dockerd {{.Server.Version}} serving on '"unix://$REF_SOCK"'{{println}}'
			return
		fi
		sleep 0.2
	done
	echo "dockerd did not answer on $REF_SOCK within 30s; its log:" >&2
	tail -n 40 "$LOG" >&2
	exit 1
}

stop() {
	if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
		kill "$(cat "$PIDFILE")"
		for _ in $(seq 1 100); do
			kill -0 "$(cat "$PIDFILE" 2>/dev/null)" 2>/dev/null || break
			sleep 0.2
		done
	fi
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
