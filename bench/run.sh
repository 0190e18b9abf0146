#!/usr/bin/env bash
# `make bench`: runs go run ./bench against TARGET, or, when TARGET is empty,
# against an arca daemon (driver DRIVER, default sandbox; KIT for qemu)
# this script starts on a temp socket and stops afterwards. COMPARE (e.g. unix:///tmp/ref.sock from
# `make dockerd`) adds a second engine; BENCH_FLAGS are passed through to
# the bench, DAEMON_FLAGS to the daemon it starts.
set -euo pipefail

BIN=${BIN:-bin}
GO=${GO:-go}
OUT=${OUT:-/tmp/arca-bench-out}
mkdir -p "$OUT"

args=(--json "$OUT/bench.json" --svg "$OUT/parallel.svg")
if [ -n "${COMPARE:-}" ]; then
	args+=(--compare "$COMPARE")
fi

if [ -z "${TARGET:-}" ]; then
	dir=$(mktemp -d /tmp/arca-bench-XXXXXX)
	sock=$dir/arca.sock
	kit=()
	if [ -n "${KIT:-}" ]; then
		kit=(--kit "$KIT")
	fi
	# shellcheck disable=SC2086 # DAEMON_FLAGS is a list of flags
	"$BIN/arca" daemon --socket "$sock" --root "$dir/root" --driver "${DRIVER:-sandbox}" "${kit[@]}" \
		--agent "$BIN/arca-agent" ${DAEMON_FLAGS:-} >"$dir/daemon.log" 2>&1 &
	pid=$!
	# The daemon takes its sandboxes down on SIGTERM; the temp root goes
	# after it has exited.
	trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
	for _ in $(seq 1 150); do
		[ -S "$sock" ] && DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1 && break
		kill -0 "$pid" 2>/dev/null || { echo "arca exited; its log:" >&2; cat "$dir/daemon.log" >&2; exit 1; }
		sleep 0.2
	done
	TARGET="unix://$sock"
fi

# shellcheck disable=SC2086 # BENCH_FLAGS is a list of flags
"$GO" run ./bench --target "$TARGET" "${args[@]}" ${BENCH_FLAGS:-}
echo "results: $OUT/bench.json $OUT/parallel.svg"
