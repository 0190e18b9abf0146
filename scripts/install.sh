#!/usr/bin/env bash
# install.sh install|uninstall: what `make install` and `make uninstall`
# do on Linux. The Makefile passes every setting in the environment:
#
#   DESTDIR   staging root: files go below it; nothing on the system is
#             touched (no group, no systemctl), as for a package build
#   PREFIX    /usr/local; BINDIR is PREFIX/bin (arca, arca-agent)
#   UNITDIR   /etc/systemd/system (arca.service, arca.socket)
#   SOCKET    /var/run/arca.sock; ROOT /var/lib/arca (the state, kept by
#             uninstall unless PURGE=1); DRIVER auto; GROUP arca (may use
#             the socket); ARCA_FLAGS more daemon flags (--ui 127.0.0.1:7878)
#   CONTEXT   the docker context made for the invoking user (arca); empty:
#             none. DOCKER_CONFIG, if set, is where the context goes.
set -euo pipefail

cd "$(dirname "$0")/.."

: "${DESTDIR:=}" "${PREFIX:=/usr/local}" "${UNITDIR:=/etc/systemd/system}"
: "${BINDIR:=$PREFIX/bin}" "${SOCKET:=/var/run/arca.sock}" "${ROOT:=/var/lib/arca}"
: "${DRIVER:=auto}" "${GROUP:=arca}" "${ARCA_FLAGS:=}" "${PURGE:=}" "${BIN:=bin}"
CONTEXT="${CONTEXT-arca}"

say() { echo "install.sh: $*" >&2; }

# systemd runs this machine (PID 1), and this is a real install.
with_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

# The docker CLI as the user who ran sudo make install (their ~/.docker),
# unless DOCKER_CONFIG says where the CLI's configuration is.
user_docker() {
	if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && [ -z "${DOCKER_CONFIG:-}" ] && command -v sudo >/dev/null; then
		sudo -u "$SUDO_USER" -H docker "$@"
	else
		docker "$@"
	fi
}

execstart() {
	echo "$BINDIR/arca daemon --socket $SOCKET --root $ROOT --driver $DRIVER${ARCA_FLAGS:+ $ARCA_FLAGS}"
}

unit() {
	sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@SOCKET@|$SOCKET|g" -e "s|@ROOT@|$ROOT|g" \
		-e "s|@DRIVER@|$DRIVER|g" -e "s|@FLAGS@|${ARCA_FLAGS:+ $ARCA_FLAGS}|g" \
		-e "s|@GROUP@|$GROUP|g" -e "s|@UNITDIR@|$UNITDIR|g" "scripts/systemd/$1.in"
}

install_all() {
	for b in arca arca-agent; do
		[ -x "$BIN/$b" ] || { say "no $BIN/$b: make build first"; exit 1; }
	done
	install -d "$DESTDIR$BINDIR" "$DESTDIR$UNITDIR"
	install -m 0755 "$BIN/arca" "$BIN/arca-agent" "$DESTDIR$BINDIR/"
	for u in arca.service arca.socket; do
		unit "$u" >"$DESTDIR$UNITDIR/$u.tmp"
		chmod 0644 "$DESTDIR$UNITDIR/$u.tmp"
		mv "$DESTDIR$UNITDIR/$u.tmp" "$DESTDIR$UNITDIR/$u"
	done
	install -d -m 0700 "$DESTDIR$ROOT"
	say "installed $DESTDIR$BINDIR/arca, $DESTDIR$BINDIR/arca-agent, $DESTDIR$UNITDIR/arca.service, $DESTDIR$UNITDIR/arca.socket; state in $DESTDIR$ROOT"

	if [ -z "$DESTDIR" ] && [ "$(id -u)" -eq 0 ]; then
		if ! getent group "$GROUP" >/dev/null; then
			groupadd --system "$GROUP"
			# Uninstall removes only a group that install made.
			echo "$GROUP" >"$ROOT/.install-group"
			say "made group $GROUP: its members may use $SOCKET"
		fi
		if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && ! id -nG "$SUDO_USER" | tr ' ' '\n' | grep -qx "$GROUP"; then
			usermod -aG "$GROUP" "$SUDO_USER"
			say "added $SUDO_USER to group $GROUP (effective at their next login; newgrp $GROUP for this shell)"
		fi
	fi

	if with_systemd; then
		systemctl daemon-reload
		systemctl enable --now arca.socket arca.service
		# A reinstall over a running daemon: the new binary.
		systemctl try-restart arca.service
		say "arca.socket and arca.service enabled and started (systemctl status arca)"
	elif [ -z "$DESTDIR" ]; then
		say "systemd is not running this machine: start the daemon as the unit would:"
		say "  $(execstart)"
	fi

	if [ -n "$CONTEXT" ]; then
		if ! command -v docker >/dev/null; then
			say "no docker CLI: no context made (docker context create $CONTEXT --docker host=unix://$SOCKET)"
		elif user_docker context inspect "$CONTEXT" >/dev/null 2>&1; then
			user_docker context update "$CONTEXT" --description "Arca" --docker "host=unix://$SOCKET" >/dev/null
			say "docker context $CONTEXT updated: docker context use $CONTEXT switches to Arca, docker context use default back"
		else
			user_docker context create "$CONTEXT" --description "Arca" --docker "host=unix://$SOCKET" >/dev/null
			say "docker context $CONTEXT made: docker context use $CONTEXT switches to Arca, docker context use default back"
		fi
	fi
}

uninstall_all() {
	if with_systemd; then
		systemctl disable --now arca.service arca.socket 2>/dev/null || true
	fi
	rm -f "$DESTDIR$UNITDIR/arca.service" "$DESTDIR$UNITDIR/arca.socket" \
		"$DESTDIR$BINDIR/arca" "$DESTDIR$BINDIR/arca-agent"
	if with_systemd; then
		systemctl daemon-reload
	fi
	# Below DESTDIR the folders made for the files go too; never the
	# system's own (/usr/local/bin).
	if [ -n "$DESTDIR" ]; then
		for d in "$BINDIR" "$UNITDIR"; do
			while [ "$d" != / ] && [ -d "$DESTDIR$d" ] && rmdir "$DESTDIR$d" 2>/dev/null; do
				d="$(dirname "$d")"
			done
		done
	fi
	# The group goes only if install made it (GROUP=docker, say, stays).
	if [ -z "$DESTDIR" ] && [ "$(id -u)" -eq 0 ] && [ -f "$ROOT/.install-group" ]; then
		made="$(cat "$ROOT/.install-group")"
		if getent group "$made" >/dev/null; then
			groupdel "$made" && say "removed group $made"
		fi
		rm -f "$ROOT/.install-group"
	fi
	if [ -n "$CONTEXT" ] && command -v docker >/dev/null && user_docker context inspect "$CONTEXT" >/dev/null 2>&1; then
		if [ "$(user_docker context show 2>/dev/null)" = "$CONTEXT" ]; then
			user_docker context use default >/dev/null
			say "docker context back to default"
		fi
		user_docker context rm "$CONTEXT" >/dev/null
		say "docker context $CONTEXT removed"
	fi
	say "removed arca, arca-agent and the units"

	if [ "$PURGE" = 1 ]; then
		state="$DESTDIR$ROOT"
		# Never remove through a mount: a container's bind mount is
		# someone's data. A stopped daemon leaves none.
		if [ -d "$state" ] && awk -v p="$(realpath "$state")/" 'index($5, p) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
			say "$state still has mounts below it (is a daemon running?): not removed"
			exit 1
		fi
		rm -rf --one-file-system "$state"
		say "removed the state in $state"
		if [ -n "$DESTDIR" ]; then
			d="$(dirname "$ROOT")"
			while [ "$d" != / ] && [ -d "$DESTDIR$d" ] && rmdir "$DESTDIR$d" 2>/dev/null; do
				d="$(dirname "$d")"
			done
		fi
	else
		say "the state in $DESTDIR$ROOT is kept (make uninstall PURGE=1 removes it)"
	fi
}

case "${1:-}" in
install) install_all ;;
uninstall) uninstall_all ;;
*)
	echo "usage: $0 install|uninstall" >&2
	exit 2
	;;
esac
