# gomodule.sh: sourced by the scripts that build a tool from the Go module
# proxy (compose, buildx, buildkitd), the only place this machine can get
# them from. Expects a log function.

# module_source MODULE VERSION DEST leaves a writable copy of the module's
# source at DEST. The module cache is read-only, and `go install
# module@version` refuses modules whose go.mod has replace or exclude
# directives, so each is built as the main module in a copy. The copy is
# made in a temp dir and renamed, so an interrupted one never leaves a half
# tree behind; a complete DEST is kept.
module_source() {
	local module="$1" version="$2" dest="$3" json moddir tmp
	[ -f "$dest/.complete" ] && return 0
	command -v go >/dev/null || { log "go is not on PATH"; return 1; }
	# go mod download prints JSON; Dir is the read-only extracted module.
	json="$(go mod download -json "$module@$version")" || {
		log "go mod download $module@$version failed: $json"
		return 1
	}
	moddir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
	if [ -z "$moddir" ] || [ ! -f "$moddir/go.mod" ]; then
		log "no module dir in go mod download output: $json"
		return 1
	fi
	mkdir -p "$(dirname "$dest")"
	tmp="$(mktemp -d "$(dirname "$dest")/.copy.XXXXXX")"
	if ! { cp -R "$moddir/." "$tmp/" && chmod -R u+w "$tmp" && touch "$tmp/.complete"; }; then
		rm -rf "$tmp"
		log "copy $module@$version failed"
		return 1
	fi
	rm -rf "$dest"
	mv "$tmp" "$dest"
}
