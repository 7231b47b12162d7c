#!/usr/bin/env bash
# check-imports: every module depends only on the alknet modules the rule table allows
# (shared/spec/README.md, "module import rules"), tests included. Run by `make check-imports`
# and `make test`. One table, one command: adding a module means adding its row here.
set -euo pipefail
cd "$(dirname "$0")/.."

# module → alknet modules it may import (space-separated; itself is always allowed). Modules
# not created yet (adapters, iroh) are checked once their directory exists.
declare -A allowed=(
	[core]=""
	[vault]=""
	[call]="core"
	[iroh]="core"
	[adapters]="call core"
	[agent]="call core"
	[napi-shim]="call core"
	[cli]="core call vault agent adapters iroh"
	[scripts/bench]="call core adapters iroh"
)

prefix=github.com/alkdev/alknet/
status=0
for mod in core vault call iroh adapters agent napi-shim cli scripts/bench; do
	[ -f "$mod/go.mod" ] || continue
	env=()
	[ "$mod" = scripts/bench ] && env=(GOWORK=off)
	if ! list=$(cd "$mod" && env "${env[@]}" go list -deps -test ./...); then
		echo "check-imports: go list failed in $mod" >&2
		exit 1
	fi
	for pkg in $(printf '%s\n' "$list" | tr -d '[]' | tr ' ' '\n' | grep "^$prefix" || true); do
		rest=${pkg#"$prefix"}
		rest=${rest%.test}
		case $rest in
			scripts/bench*) dep=scripts/bench ;;
			*) dep=${rest%%/*}; dep=${dep%_test} ;;
		esac
		[ "$dep" = "$mod" ] && continue
		if [[ " ${allowed[$mod]} " != *" $dep "* ]]; then
			echo "check-imports: $mod depends on $pkg: $mod may import only [${allowed[$mod]}]" >&2
			status=1
		fi
	done
done
# core stays pure Go (spec iroh.md §2): it builds without cgo.
if ! (cd core && CGO_ENABLED=0 go build ./...); then
	echo "check-imports: core does not build with CGO_ENABLED=0" >&2
	status=1
fi
[ $status = 0 ] && echo "check-imports: every module imports only what it may; core builds with CGO_ENABLED=0"
exit $status
