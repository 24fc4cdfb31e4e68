#!/usr/bin/env bash
# tools.sh installs the pinned binaries that ferry's test environment runs
# (package internal/testenv) into a per-user cache outside the repository:
#
#   ${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/tools}/<name>-<version>/<name>
#
# Usage:
#   tools.sh install [registry|oras|all]   build missing binaries (default: all)
#   tools.sh path <name>                   print the cached binary's path
#   tools.sh list                          print the pin table
#
# Binaries are built with `go install <package>@<version>` from an empty
# temporary directory (so the project's go.mod is never touched) into a staging
# directory, then renamed into place, so a half-built binary is never visible.
set -euo pipefail

# The pin table: "<name> <package> <version>", one tool per line.
# This is the single source of truth; internal/testenv/tools.go mirrors it and
# TestToolsTableMatchesScript fails when the two disagree.
TOOLS=(
	"registry github.com/distribution/distribution/v3/cmd/registry v3.0.0"
	"oras oras.land/oras/cmd/oras v1.3.0"
)

die() {
	printf 'tools.sh: %s\n' "$*" >&2
	exit 1
}

usage() {
	cat >&2 <<-'EOF'
		usage: tools.sh install [registry|oras|all]   build missing binaries (default: all)
		       tools.sh path <name>                   print the cached binary's path
		       tools.sh list                          print the pin table
	EOF
	exit 2
}

tools_root() {
	printf '%s\n' "${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/tools}"
}

# lookup NAME: sets PKG and VERSION, or dies.
lookup() {
	local entry name pkg version
	for entry in "${TOOLS[@]}"; do
		read -r name pkg version <<<"$entry"
		if [[ "$name" == "$1" ]]; then
			PKG="$pkg"
			VERSION="$version"
			return 0
		fi
	done
	die "unknown tool \"$1\" (known: $(names))"
}

names() {
	local entry name rest out=()
	for entry in "${TOOLS[@]}"; do
		read -r name rest <<<"$entry"
		out+=("$name")
	done
	printf '%s' "${out[*]}"
}

tool_path() {
	lookup "$1"
	printf '%s/%s-%s/%s\n' "$(tools_root)" "$1" "$VERSION" "$1"
}

# install_one runs in a subshell so its EXIT trap cleans up on every path.
install_one() (
	local name="$1" bin dir stage work
	lookup "$name"
	bin="$(tool_path "$name")"
	dir="$(dirname "$bin")"
	if [[ -x "$bin" ]]; then
		printf 'tools.sh: %s %s already installed at %s\n' "$name" "$VERSION" "$bin" >&2
		return 0
	fi
	command -v go >/dev/null 2>&1 || die "go not found in PATH; it is needed to build $name"
	mkdir -p "$dir"
	stage="$(mktemp -d "$dir/.stage.XXXXXX")"
	work="$(mktemp -d)"
	# shellcheck disable=SC2064 # expand now: the paths are local to this call.
	trap "rm -rf '$stage' '$work'" EXIT
	printf 'tools.sh: building %s@%s into %s\n' "$PKG" "$VERSION" "$dir" >&2
	(cd "$work" && GOBIN="$stage" GOFLAGS=-mod=mod GOWORK=off go install "$PKG@$VERSION") ||
		die "go install $PKG@$VERSION failed"
	[[ -x "$stage/$name" ]] || die "go install $PKG@$VERSION produced no $name binary"
	mv -f "$stage/$name" "$bin"
	printf 'tools.sh: installed %s\n' "$bin" >&2
)

main() {
	local cmd="${1:-}"
	case "$cmd" in
	install)
		local target="${2:-all}" entry name rest
		if [[ "$target" == "all" ]]; then
			for entry in "${TOOLS[@]}"; do
				read -r name rest <<<"$entry"
				install_one "$name"
			done
		else
			install_one "$target"
		fi
		;;
	path)
		[[ $# -eq 2 ]] || usage
		tool_path "$2"
		;;
	list)
		local entry
		for entry in "${TOOLS[@]}"; do
			printf '%s\n' "$entry"
		done
		;;
	*)
		usage
		;;
	esac
}

main "$@"
