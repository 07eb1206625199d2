#!/bin/bash
# docs/rawvec.1 renders without warnings and names every option and
# layout `rawvec --help` lists and every command MOUNTPOINT/control lists;
# `make install` installs it beside the binary.
. "$(dirname "$0")/lib.sh"
requires_transport
requires groff

page=$ROOT/docs/rawvec.1
warn=$(groff -man -ww -z "$page" 2>&1)
[ -z "$warn" ] || die "groff warns: $warn"
text=$(groff -man -Tutf8 -P-cbou "$page" 2>/dev/null | sed 's/\xe2\x80\x90/-/g')
help=$("$RAWVEC" --help) || die "--help: exit $?"

for o in $(echo "$help" | grep -oE -- '-o [a-z_]+' | awk '{ print $2 }' | sort -u) \
	 $(echo "$help" | grep -oE -- '--[a-z-]+' | sort -u) -f -h -V; do
	case $o in --*|-?) pat=$o ;; *) pat="-o $o" ;; esac
	echo "$text" | grep -qE -- "(^|[[ ])$pat([]=, ]|$)" || die "the man page lacks $pat"
done
for l in $(echo "$help" | grep -oE '^  [a-z0-9]+\(' | tr -d ' (' | sort -u); do
	echo "$text" | grep -qE "^ +$l\(" || die "the man page lacks the layout $l(...)"
done
start_rawvec 'null(size=1m)'
cmds=$(grep -o '^  [a-z]\+ ' "$MNT/control" | tr -d ' ' | sort -u)
stop_rawvec
for c in $cmds; do
	echo "$text" | grep -qE "^ +$c( |$)" || die "the man page lacks the command $c"
done

make -C "$ROOT" --no-print-directory -s install DESTDIR="$T/root" PREFIX=/usr >/dev/null ||
	die "make install failed"
cmp "$T/root/usr/share/man/man1/rawvec.1" "$page" || die "make install did not install the man page"
log "pass: $(echo $cmds) and every option and layout"
