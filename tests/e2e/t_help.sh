#!/bin/bash
# --help is enough to write a TARGET and a command: it lists every layout
# level of the README's Layouts block, one line each with its members and
# options, and every command that MOUNTPOINT/control lists; and the -o
# options of the README's usage block.
. "$(dirname "$0")/lib.sh"
requires_transport

help=$("$RAWVEC" --help) || die "--help: exit $?"
readme=$ROOT/README.md

levels=$(sed -n '/^## Layouts/,/^## /p' "$readme" | sed -n '/^```/,/^```/p' |
	grep -o '^[a-z][a-z0-9]*(' | tr -d '(' | sort -u)
[ -n "$levels" ] || die "no levels found in the README's Layouts block"
for l in $levels; do
	echo "$help" | grep -Eq "^  $l\(.*\)" || die "--help has no line for $l(...): $help"
done

start_rawvec 'null(size=1m)'
cmds=$(grep -o '^  [a-z]\+ ' "$MNT/control" | tr -d ' ' | sort -u)
stop_rawvec
[ -n "$cmds" ] || die "no commands in MOUNTPOINT/control"
for c in $cmds; do
	echo "$help" | grep -Eq "^  $c( |$)" || die "--help does not list the command '$c': $help"
done

opts=$(sed -n '/^## Usage/,/^## /p' "$readme" | grep -o '^  -o [a-z_]*' | awk '{ print $2 }' | sort -u)
[ -n "$opts" ] || die "no -o options in the README's usage block"
for o in $opts; do
	echo "$help" | grep -q -- "-o .*$o" || die "--help lacks -o $o"
done
log "pass: levels $(echo $levels), commands $(echo $cmds), options $(echo $opts)"
