#!/bin/sh
# db-migrate: runs the shop database migrations for one customer.
# This example only prints what it would do.
#
# Usage: db-migrate.sh [--dry-run] [--customer NAME] [--target VERSION]
set -eu

dry_run=0
customer="default"
target="${FERRY_BUNDLE_VERSION:-latest}"

usage() {
	echo "usage: $0 [--dry-run] [--customer NAME] [--target VERSION]" >&2
	exit 2
}

while [ "$#" -gt 0 ]; do
	case "$1" in
	--dry-run) dry_run=1 ;;
	--customer)
		[ "$#" -ge 2 ] || usage
		customer="$2"
		shift
		;;
	--target)
		[ "$#" -ge 2 ] || usage
		target="$2"
		shift
		;;
	-h | --help) usage ;;
	*)
		echo "db-migrate: unknown argument: $1" >&2
		usage
		;;
	esac
	shift
done

echo "db-migrate: customer=${customer} target=${target}"
if [ "$dry_run" -eq 1 ]; then
	echo "db-migrate: dry run, would run: shop-api migrate up --to ${target}"
	exit 0
fi
echo "db-migrate: running: shop-api migrate up --to ${target}"
echo "db-migrate: (example plugin: nothing was changed)"
