#!/usr/bin/env bash
# tools.sh installs the pinned binaries that ferry's test environment runs
# (package internal/testenv) into a per-user cache outside the repository:
#
#   ${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/tools}/<tool>-<version>/<binary>
#
# Usage:
#   tools.sh install [TOOL|BINARY|all]   build what is missing (default: all)
#   tools.sh path BINARY                 print a cached binary's path
#   tools.sh list                        print the pin tables
#   tools.sh module TOOL                 generate TOOL's tools module (module tools only), print its dir
#   tools.sh crds-dir [TOOL]             print the CRD directory of argocd (default; manifests/crds)
#                                        or source-controller (config/crd/bases) in the module cache
#
# Two kinds of tools:
#
#  - TOOLS are built with `go install <package>@<version>` from an empty
#    temporary directory, so the project's go.mod is never touched.
#
#  - MODULE_TOOLS cannot be go-installed (their go.mod has replace directives).
#    For each, the script generates a tools module in <root>/src/<tool>-<version>
#    that requires the upstream module and carries the upstream go.mod's `go`
#    line, `godebug` settings and `replace` directives, read from the module
#    download cache (`go mod download -json MODULE@VERSION` names the file).
#    Upstream replaces that point at a local folder (Kubernetes' ./staging,
#    Argo CD's ./gitops-engine) become "<same module> <local-replace-version>";
#    "-" drops them; tool_replaces adds a tool's own replaces (for module
#    versions the Go module proxy does not serve). The binaries are then
#    built with `go build`.
#
# Every build goes to a staging directory first and is renamed into place, so a
# half-built binary is never visible; concurrent builds of one tool are
# serialised with flock(1) when it is available.
set -euo pipefail

# The pin tables. They are the single source of truth; internal/testenv/tools.go
# mirrors them and TestToolsTableMatchesScript fails when the two disagree.
#
# go install tools: "<name> <package> <version>"; the binary is <name>.
TOOLS=(
	"registry github.com/distribution/distribution/v3/cmd/registry v3.0.0"
	"oras oras.land/oras/cmd/oras v1.3.0"
	"cosign github.com/sigstore/cosign/v3/cmd/cosign v3.1.3"
	"tfplugindocs github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs v0.25.0"
	"kustomize sigs.k8s.io/kustomize/kustomize/v5 v5.8.0"
	"helm helm.sh/helm/v3/cmd/helm v3.22.0"
	"staticcheck honnef.co/go/tools/cmd/staticcheck v0.8.2"
	"unparam mvdan.cc/unparam v0.0.0-20260823230713-2fa3d841b0c8"
	"goreleaser github.com/goreleaser/goreleaser/v2 v2.17.0"
)

# Module tools: "<name> <module> <version> <toolchain> <local-replace-version> <binary>=<package>[,<binary>=<package>...]"
#   toolchain: GOTOOLCHAIN exported for this tool's go commands only ("-": the go on PATH)
MODULE_TOOLS=(
	"kubernetes k8s.io/kubernetes v1.34.4 - v0.34.4 kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver,kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
	"etcd go.etcd.io/etcd/server/v3 v3.6.6 - - etcd=go.etcd.io/etcd/server/v3"
	"argocd github.com/argoproj/argo-cd/v3 v3.6.1 go1.27.3 v3.6.1 argocd=github.com/argoproj/argo-cd/v3/cmd"
	"tofu github.com/opentofu/opentofu v1.12.6 - - tofu=github.com/opentofu/opentofu/cmd/tofu"
	"source-controller github.com/fluxcd/source-controller v1.9.4 - v1.9.4 source-controller=github.com/fluxcd/source-controller"
)

die() {
	printf 'tools.sh: %s\n' "$*" >&2
	exit 1
}

usage() {
	cat >&2 <<-'EOF'
		usage: tools.sh install [TOOL|BINARY|all]   build what is missing (default: all)
		       tools.sh path BINARY                 print a cached binary's path
		       tools.sh list                        print the pin tables
		       tools.sh module TOOL                 generate a module tool's tools module, print its directory
		       tools.sh crds-dir [TOOL]             print the CRD directory of argocd (default) or source-controller
	EOF
	exit 2
}

tools_root() {
	printf '%s\n' "${FERRY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/tools}"
}

# lookup NAME (a tool or a binary name): sets KIND (install|module), TOOL,
# PKG (package or module), VERSION, TOOLCHAIN, LOCALVER and BINS (an array of
# "binary=package"), or dies.
lookup() {
	local entry name pkg version toolchain localver bins
	for entry in "${TOOLS[@]}"; do
		read -r name pkg version <<<"$entry"
		if [[ "$name" == "$1" ]]; then
			KIND=install TOOL="$name" PKG="$pkg" VERSION="$version" TOOLCHAIN=- LOCALVER=-
			BINS=("$name=$pkg")
			return 0
		fi
	done
	for entry in "${MODULE_TOOLS[@]}"; do
		read -r name pkg version toolchain localver bins <<<"$entry"
		if [[ "$name" == "$1" || ",$bins" == *",$1="* ]]; then
			KIND=module TOOL="$name" PKG="$pkg" VERSION="$version" TOOLCHAIN="$toolchain" LOCALVER="$localver"
			IFS=, read -r -a BINS <<<"$bins"
			return 0
		fi
	done
	die "unknown tool \"$1\" (known: $(names))"
}

# names lists every tool and binary name.
names() {
	local entry name pkg version toolchain localver bins out=() b
	for entry in "${TOOLS[@]}"; do
		read -r name _ <<<"$entry"
		out+=("$name")
	done
	for entry in "${MODULE_TOOLS[@]}"; do
		read -r name pkg version toolchain localver bins <<<"$entry"
		out+=("$name")
		IFS=, read -r -a b <<<"$bins"
		for name in "${b[@]%%=*}"; do
			[[ "$name" == "${out[-1]}" ]] || out+=("$name")
		done
	done
	printf '%s' "${out[*]}"
}

tool_dir() {
	printf '%s/%s-%s\n' "$(tools_root)" "$TOOL" "$VERSION"
}

# binary_path NAME: the cached path of binary NAME (a tool that provides
# several binaries, like kubernetes, is not a binary).
binary_path() {
	local b
	lookup "$1"
	for b in "${BINS[@]}"; do
		if [[ "${b%%=*}" == "$1" ]]; then
			printf '%s/%s\n' "$(tool_dir)" "$1"
			return 0
		fi
	done
	die "\"$1\" is a tool, not a binary; it provides: ${BINS[*]%%=*}"
}

# installed: whether every binary of the looked-up tool is in the cache.
installed() {
	local b dir
	dir="$(tool_dir)"
	for b in "${BINS[@]}"; do
		[[ -x "$dir/${b%%=*}" ]] || return 1
	done
}

# with_toolchain CMD...: runs CMD with the tool's GOTOOLCHAIN, if it has one,
# and with the go command isolated from the caller's workspace and flags.
with_toolchain() {
	if [[ "$TOOLCHAIN" != "-" ]]; then
		GOTOOLCHAIN="$TOOLCHAIN" GOFLAGS=-mod=mod GOWORK=off "$@"
	else
		GOFLAGS=-mod=mod GOWORK=off "$@"
	fi
}

# lock_tool: take an exclusive lock for the looked-up tool on fd 9 (released
# when the calling subshell exits).
lock_tool() {
	local dir
	dir="$(tool_dir)"
	mkdir -p "$dir"
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$dir/.lock"
		flock 9
	fi
}

# ldflags for the looked-up tool: version stamps the upstream release builds set.
tool_ldflags() {
	case "$TOOL" in
	kubernetes)
		local v="${VERSION#v}" major minor
		major="${v%%.*}"
		minor="${v#*.}"
		minor="${minor%%.*}"
		printf '%s' "-X k8s.io/component-base/version.gitVersion=$VERSION -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
		printf '%s' " -X k8s.io/client-go/pkg/version.gitVersion=$VERSION -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitTreeState=clean"
		;;
	argocd)
		printf '%s' "-X github.com/argoproj/argo-cd/v3/common.version=${VERSION#v}"
		;;
	tofu)
		# A release build: "OpenTofu v1.12.6", not "v1.12.6-dev".
		printf '%s' "-X github.com/opentofu/opentofu/version.dev=no"
		;;
	esac
}

# tool_replaces: extra replace directives ("old[@v]=new@v", one a line) for
# the looked-up module tool, on top of the upstream go.mod's. They stand in
# for module versions the Go module proxy does not serve.
tool_replaces() {
	case "$TOOL" in
	source-controller)
		# v1.9.4 requires fluxcd/pkg/artifact v0.18.2, which the module
		# proxy does not serve (403); the previous patch release v0.18.1
		# builds. v1.9.5 to v1.10.1 need more fluxcd/pkg versions it does
		# not serve (artifact v0.18.3 and v0.27.x, apis/crypto v0.5.0, ...).
		printf '%s\n' "github.com/fluxcd/pkg/artifact@v0.18.2=github.com/fluxcd/pkg/artifact@v0.18.1"
		;;
	esac
}

# download_json: print `go mod download -json` for the looked-up module tool,
# run outside any module so the project's go.mod is never involved.
download_json() {
	local tmp json rc=0
	tmp="$(mktemp -d)"
	json="$(cd "$tmp" && with_toolchain go mod download -json "$PKG@$VERSION" 2>&1)" || rc=$?
	rm -rf "$tmp"
	[[ $rc -eq 0 ]] || die "go mod download $PKG@$VERSION failed: $json"
	printf '%s\n' "$json"
}

# json_field JSON KEY: the string value of KEY in go's indented JSON output.
json_field() {
	printf '%s\n' "$1" | sed -n 's/^[[:space:]]*"'"$2"'": "\(.*\)",*$/\1/p'
}

# upstream_gomod: print the path of the looked-up module tool's go.mod in the
# module download cache, downloading it if needed.
upstream_gomod() {
	local json gomod
	json="$(download_json)" || exit 1
	gomod="$(json_field "$json" GoMod)"
	[[ -n "$gomod" && -f "$gomod" ]] || die "go mod download $PKG@$VERSION named no go.mod: $json"
	printf '%s\n' "$gomod"
}

# module_source_dir: print the directory (inside the module cache) of the
# looked-up module tool's upstream module, downloading it if needed.
module_source_dir() {
	local json dir
	json="$(download_json)" || exit 1
	dir="$(json_field "$json" Dir)"
	[[ -n "$dir" && -d "$dir" ]] || die "go mod download $PKG@$VERSION named no directory: $json"
	printf '%s\n' "$dir"
}

# gomod_directives FILE KEYWORD: print the directives KEYWORD ("replace",
# "godebug") of a go.mod, one per line, without the keyword and comments,
# from both the single-line and the block form.
gomod_directives() {
	awk -v kw="$2" '
		{ sub(/\/\/.*/, "") }
		$0 ~ "^" kw "[ \t]*\\([ \t]*$" { block = 1; next }
		block && /^[ \t]*\)[ \t]*$/ { block = 0; next }
		block { if (NF) print; next }
		$1 == kw { sub("^" kw "[ \t]+", ""); if (NF) print }
	' "$1"
}

# generate_module DIR: write the looked-up module tool's tools module to DIR.
generate_module() {
	local dir="$1" gomod line old oldver new newver goline b f pkgs=() edits=()
	gomod="$(upstream_gomod)" || exit 1
	rm -rf "$dir"
	mkdir -p "$dir"
	goline="$(awk '$1 == "go" { print $2; exit }' "$gomod")"
	edits+=("-require=$PKG@$VERSION")
	[[ -n "$goline" ]] && edits+=("-go=$goline")
	while read -r line; do
		[[ -n "$line" ]] && edits+=("-godebug=$line")
	done < <(gomod_directives "$gomod" godebug)
	while read -r line; do
		[[ -n "$line" ]] || continue
		# "old [oldver] => new [newver]"
		read -r -a f <<<"$line"
		old="${f[0]}" oldver=""
		f=("${f[@]:1}")
		if [[ "${f[0]:-}" != "=>" ]]; then
			oldver="@${f[0]:-}"
			f=("${f[@]:1}")
		fi
		[[ "${f[0]:-}" == "=>" ]] || die "cannot parse replace directive \"$line\" in $gomod"
		new="${f[1]:-}" newver="${f[2]:-}"
		if [[ "$new" == ./* || "$new" == ../* || "$new" == /* ]]; then
			[[ "$LOCALVER" == "-" ]] && continue
			edits+=("-replace=$old$oldver=$old@$LOCALVER")
		elif [[ -n "$newver" ]]; then
			edits+=("-replace=$old$oldver=$new@$newver")
		else
			die "cannot parse replace directive \"$line\" in $gomod"
		fi
	done < <(gomod_directives "$gomod" replace)
	while read -r line; do
		[[ -n "$line" ]] && edits+=("-replace=$line")
	done < <(tool_replaces)
	for b in "${BINS[@]}"; do
		pkgs+=("${b#*=}")
	done
	{
		printf '// Code generated by internal/testenv/tools.sh. DO NOT EDIT.\n\n'
		printf '//go:build tools\n\n'
		printf '// Package tools pins the main packages built from %s@%s.\n' "$PKG" "$VERSION"
		printf 'package tools\n\nimport (\n'
		printf '\t_ "%s"\n' "${pkgs[@]}"
		printf ')\n'
	} >"$dir/tools.go"
	(
		cd "$dir"
		with_toolchain go mod init "ferry.local/tools/$TOOL" >/dev/null 2>&1 ||
			die "go mod init in $dir failed"
		with_toolchain go mod edit "${edits[@]}" || die "go mod edit in $dir failed"
	)
}

# install_one runs in a subshell so its EXIT trap and lock end with it.
install_one() (
	lookup "$1"
	local dir stage work src b bin pkg ldflags
	dir="$(tool_dir)"
	if installed; then
		printf 'tools.sh: %s %s already installed in %s\n' "$TOOL" "$VERSION" "$dir" >&2
		return 0
	fi
	command -v go >/dev/null 2>&1 || die "go not found in PATH; it is needed to build $TOOL"
	lock_tool
	if installed; then # built by a concurrent caller while we waited
		printf 'tools.sh: %s %s already installed in %s\n' "$TOOL" "$VERSION" "$dir" >&2
		return 0
	fi
	stage="$(mktemp -d "$dir/.stage.XXXXXX")"
	work="$(mktemp -d)"
	# shellcheck disable=SC2064 # expand now: the paths are local to this call.
	trap "rm -rf '$stage' '$work'" EXIT
	if [[ "$KIND" == install ]]; then
		printf 'tools.sh: building %s@%s into %s\n' "$PKG" "$VERSION" "$dir" >&2
		(cd "$work" && GOBIN="$stage" GOFLAGS=-mod=mod GOWORK=off go install "$PKG@$VERSION") ||
			die "go install $PKG@$VERSION failed"
	else
		src="$(tools_root)/src/$TOOL-$VERSION"
		printf 'tools.sh: generating the tools module for %s@%s in %s\n' "$PKG" "$VERSION" "$src" >&2
		generate_module "$src"
		ldflags="$(tool_ldflags)"
		(
			cd "$src"
			with_toolchain go mod tidy || die "go mod tidy in $src failed"
			for b in "${BINS[@]}"; do
				bin="${b%%=*}" pkg="${b#*=}"
				printf 'tools.sh: building %s (%s@%s) into %s; large, this takes minutes\n' "$bin" "$PKG" "$VERSION" "$dir" >&2
				with_toolchain go build -ldflags "$ldflags" -o "$stage/$bin" "$pkg" ||
					die "go build $pkg in $src failed"
			done
		) || exit 1
	fi
	for b in "${BINS[@]}"; do
		bin="${b%%=*}"
		[[ -x "$stage/$bin" ]] || die "building $TOOL produced no $bin binary"
	done
	for b in "${BINS[@]}"; do
		bin="${b%%=*}"
		mv -f "$stage/$bin" "$dir/$bin"
		printf 'tools.sh: installed %s\n' "$dir/$bin" >&2
	done
)

main() {
	local cmd="${1:-}" entry name
	case "$cmd" in
	install)
		local target="${2:-all}"
		if [[ "$target" == "all" ]]; then
			# FERRY_TOOLS_JOBS builds at a time (default 2), each as its own run of this
			# script: one build's downloads and linking overlap another's compiling.
			local jobs="${FERRY_TOOLS_JOBS:-2}" pids=() names=() failed=()
			[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "FERRY_TOOLS_JOBS=$jobs: want a positive number"
			for entry in "${TOOLS[@]}" "${MODULE_TOOLS[@]}"; do
				read -r name _ <<<"$entry"
				if ((${#pids[@]} >= jobs)); then
					wait "${pids[0]}" || failed+=("${names[0]}")
					pids=("${pids[@]:1}") names=("${names[@]:1}")
				fi
				"$BASH" "${BASH_SOURCE[0]}" install "$name" &
				pids+=("$!") names+=("$name")
			done
			for i in "${!pids[@]}"; do
				wait "${pids[$i]}" || failed+=("${names[$i]}")
			done
			((${#failed[@]} == 0)) || die "failed to build: ${failed[*]} (see above)"
		else
			install_one "$target"
		fi
		;;
	path)
		[[ $# -eq 2 ]] || usage
		binary_path "$2"
		;;
	list)
		for entry in "${TOOLS[@]}" "${MODULE_TOOLS[@]}"; do
			printf '%s\n' "$entry"
		done
		;;
	module)
		[[ $# -eq 2 ]] || usage
		lookup "$2"
		[[ "$KIND" == module ]] || die "$TOOL is built with go install; it has no tools module"
		local src
		src="$(tools_root)/src/$TOOL-$VERSION"
		generate_module "$src"
		printf '%s\n' "$src"
		;;
	crds-dir)
		[[ $# -le 2 ]] || usage
		case "${2:-argocd}" in
		argocd)
			lookup argocd
			printf '%s/manifests/crds\n' "$(module_source_dir)"
			;;
		source-controller)
			lookup source-controller
			printf '%s/config/crd/bases\n' "$(module_source_dir)"
			;;
		*) die "no CRDs known for \"$2\" (known: argocd, source-controller)" ;;
		esac
		;;
	*)
		usage
		;;
	esac
}

main "$@"
