#!/bin/bash
# Bad layout expressions: each one must make rawvec exit 2 before mounting,
# print a message and, under the expression, a caret line pointing at the
# problem, create nothing (also with --create) and leave the member images
# untouched.  Every case runs in the daemon mode and in the foreground
# (-f); all failures are collected and listed at the end.
. "$(dirname "$0")/lib.sh"
requires find sort cmp

W=$T/w # the members, and rawvec's working directory
mkdir "$W" || die "mkdir"
for m in a b c d; do
	make_image "$W/$m.img" 4M random
done
ln -s a.img "$W/link.img" && ln "$W/b.img" "$W/hard.img" || die "links"
cd "$W" || die "cd $W"
mkdir "$T/orig" && cp a.img b.img c.img d.img "$T/orig/" || die "copies"

FAILS=()
NCASES=0
FG_PID=
# A foreground rawvec still running at exit (lib.sh's trap runs after).
trap '_rc=$?; [ -n "$FG_PID" ] && kill $FG_PID 2>/dev/null; (exit $_rc); _cleanup' EXIT

# col EXPR NEEDLE [NTH]: column (from 0) of the NTH (default first)
# occurrence of NEEDLE in EXPR; "END" for NEEDLE: the length of EXPR.
col()
{
	local s=$1 needle=$2 nth=${3:-1} off=0 pre
	if [ "$needle" = END ]; then
		echo ${#s}
		return
	fi
	while :; do
		case $s in
		*"$needle"*) ;;
		*) die "col: no '$needle' (#$nth) in '$1'" ;;
		esac
		pre=${s%%"$needle"*}
		nth=$((nth - 1))
		if [ $nth = 0 ]; then
			echo $((off + ${#pre}))
			return
		fi
		off=$((off + ${#pre} + 1))
		s=${s:${#pre}+1}
	done
}

listing() { find "$W" "$MNT" -printf '%p %y %s %i %T@ %l\n' | sort; }

# unmount_stray: rawvec mounted although it should not have.
unmount_stray()
{
	local i
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
		for i in $(seq 50); do
			pgrep -f -- "$RAWVEC.* $MNT " >/dev/null || break
			sleep 0.1
		done
		return 0
	fi
	return 1
}

# run_one MODE DESC EXPR REGEX COLS [OPTIONS...]: one run, MODE daemon or
# fg; appends to FAILS.
run_one()
{
	local mode=$1 desc=$2 expr=$3 re=$4 cols=$5 rc c exprline caret got f
	local why=()
	shift 5
	listing >"$T/before"
	if [ "$mode" = fg ]; then
		# Foreground: wait for the exit, or stop it as soon as it mounts.
		"$RAWVEC" -f "$@" "$MNT" "$expr" >"$T/out" 2>"$T/err" &
		FG_PID=$!
		for c in $(seq 100); do
			kill -0 $FG_PID 2>/dev/null || break
			mountpoint -q "$MNT" && break
			sleep 0.05
		done
		unmount_stray && why+=("it mounted")
		for c in $(seq 100); do
			kill -0 $FG_PID 2>/dev/null || break
			sleep 0.05
		done
		if kill -0 $FG_PID 2>/dev/null; then
			kill $FG_PID
			why+=("still running after 5 s")
		fi
		wait $FG_PID
		rc=$?
		FG_PID=
	else
		timeout 5 "$RAWVEC" "$@" "$MNT" "$expr" >"$T/out" 2>"$T/err"
		rc=$?
		unmount_stray && why+=("it mounted")
	fi
	[ $rc = 2 ] || why+=("exit status $rc, want 2")
	[ -s "$T/out" ] && why+=("stdout: $(head -c 200 "$T/out")")
	grep -qiE "^rawvec: .*($re)" "$T/err" ||
		why+=("no message matching /$re/")
	# "  EXPR" then "  <spaces>^".
	exprline=$(grep -nxF -- "  $expr" "$T/err" | head -1 | cut -d: -f1)
	if [ -z "$exprline" ]; then
		why+=("no line showing the expression")
	else
		caret=$(sed -n "$((exprline + 1))p" "$T/err")
		if ! [[ $caret =~ ^\ \ (\ *)\^$ ]]; then
			why+=("no caret line under the expression (got '$caret')")
		else
			got=${#BASH_REMATCH[1]}
			f=0
			for c in $cols; do
				[ "$got" = "$c" ] && f=1
			done
			[ $f = 1 ] || why+=("caret at column $got, want $(echo $cols | sed 's/ / or /g')")
		fi
	fi
	# Creates nothing, changes nothing.
	listing >"$T/after"
	cmp -s "$T/before" "$T/after" ||
		why+=("files changed: $(diff "$T/before" "$T/after" | grep '^[<>]' | head -4 | tr '\n' ' ')")
	for f in a b c d; do
		cmp -s "$f.img" "$T/orig/$f.img" ||
			why+=("member bytes changed: $f.img")
	done
	# Undo what a failure left, so the next case starts clean.
	for f in "$W"/*; do
		case ${f##*/} in
		a.img | b.img | c.img | d.img | link.img | hard.img) ;;
		*) rm -rf -- "$f" ;;
		esac
	done
	if [ ${#why[@]} -gt 0 ]; then
		FAILS+=("[$mode] $desc: rawvec ${*:+$* }MNT '$expr': $(IFS=';'; echo "${why[*]}")
$(sed 's/^/        | /' "$T/err" | head -6)")
		log "FAIL [$mode] $desc"
	fi
}

# bad DESC EXPR REGEX COLS [OPTIONS...]: a bad expression, both modes.
bad()
{
	NCASES=$((NCASES + 1))
	run_one daemon "$@"
	run_one fg "$@"
}

# Unknown level.
e='raid7(a.img, b.img)'
bad "unknown level" "$e" 'unknown' "$(col "$e" raid7)"
e='raid0(a.img, mirror(b.img, c.img))'
bad "unknown nested level" "$e" 'unknown' "$(col "$e" mirror)"
e='stripe(a.img, b.img, chunk=64k)'
bad "unknown level with an option" "$e" 'unknown' "$(col "$e" stripe)"

# raid5/raid6 with too few members (for as long as they are not
# implemented, "not implemented" is the answer instead).
e='raid5(a.img, b.img)'
bad "raid5 with 2 members" "$e" 'not implemented|at least 3|3 members' "$(col "$e" raid5)"
e='raid6(a.img, b.img, c.img)'
bad "raid6 with 3 members" "$e" 'not implemented|at least 4|4 members' "$(col "$e" raid6)"
e='linear(a.img, raid5(b.img, c.img))'
bad "nested raid5 with 2 members" "$e" 'not implemented|at least 3|3 members' "$(col "$e" raid5)"
e='raid5(a.img, b.img, c.img, chunk=48k)'
bad "raid5 with chunk=48k" "$e" 'not implemented|power of two' "0 $(col "$e" chunk)"

# Chunk sizes: not a power of two, below 4k, zero, garbage, overflowing.
# (A caret under the layout's name or under the option both count.)
for ch in 48k 4100 12k; do
	e="raid0(a.img, b.img, chunk=$ch)"
	bad "chunk=$ch (not a power of two)" "$e" 'power of two' \
		"0 $(col "$e" chunk) $(col "$e" "$ch")"
done
for ch in 2k 512 1; do
	e="raid0(a.img, b.img, chunk=$ch)"
	bad "chunk=$ch (below 4k)" "$e" '4k|4096|at least' \
		"0 $(col "$e" chunk) $(col "$e" "=$ch")"
done
e='raid0(raid1(a.img, b.img), raid1(c.img, d.img), chunk=1k)'
bad "chunk=1k in raid10" "$e" '4k|4096|at least' "0 $(col "$e" chunk)"
for ch in 0 -4k 4x 64kb ''; do
	e="raid0(a.img, b.img, chunk=$ch)"
	bad "chunk='$ch' (not a size)" "$e" 'size' "$(col "$e" "=$ch" | awk '{print $1 + 1}')"
done
for ch in 99999999999999999999k 16777216t 18446744073709551616 20000000000000000000g; do
	e="raid0(a.img, b.img, chunk=$ch)"
	bad "chunk=$ch (overflows 64 bits)" "$e" 'size|overflow|too (big|large)' \
		"$(col "$e" "$ch") $(col "$e" chunk)"
done
e='slice(a.img, offset=1m, size=16777215t)'
bad "slice offset + size overflow" "$e" 'beyond|overflow|too (big|large)' \
	"0 $(col "$e" offset) $(col "$e" size)"
e='slice(a.img, offset=18446744073709551615, size=1m)'
bad "slice offset UINT64_MAX" "$e" 'beyond|overflow|too (big|large)' \
	"0 $(col "$e" offset) $(col "$e" 1844)"

# Unbalanced parentheses, both ways.
e='raid0(a.img, b.img'
bad "missing ')'" "$e" "missing|unbalanced|ends" "$(col "$e" END)"
e='raid0(raid1(a.img, b.img), raid1(c.img, d.img)'
bad "missing outer ')'" "$e" "missing|unbalanced|ends" "$(col "$e" END)"
e='raid0(raid1(a.img, b.img, raid1(c.img, d.img), chunk=64k)'
bad "missing inner ')'" "$e" "missing|unbalanced|ends" "$(col "$e" END)"
e='raid0(a.img, b.img))'
bad "extra ')'" "$e" "unbalanced|unexpected" "$(($(col "$e" END) - 1))"
e='linear(a.img), b.img)'
bad "')' closing too early" "$e" "unbalanced|unexpected" "$(col "$e" ', b.img')"
e='raid0((a.img, b.img)'
bad "extra '('" "$e" "expected|unbalanced" "$(col "$e" '(' 2)"
e='linear a.img, b.img)'
bad "')' without any '('" "$e" "unbalanced|unexpected|expected|missing" \
	"$(col "$e" ')') $(col "$e" ' a.img')"

# The same member twice: same path, ./ prefix, symlink, hard link,
# absolute path, nested.
e='raid1(a.img, a.img)'
bad "same path twice" "$e" 'already|twice|duplicate' "$(col "$e" a.img 2)"
e='raid0(a.img, ./a.img)'
bad "same file via ./" "$e" 'already|twice|duplicate' "$(col "$e" ./a.img)"
e='raid0(a.img, link.img)'
bad "same file via a symlink" "$e" 'already|twice|duplicate' "$(col "$e" link.img)"
e='raid1(b.img, hard.img)'
bad "same file via a hard link" "$e" 'already|twice|duplicate' "$(col "$e" hard.img)"
e="raid0(a.img, $W/a.img)"
bad "same file via its absolute path" "$e" 'already|twice|duplicate' "$(col "$e" "$W/a.img")"
e='raid0(raid1(a.img, b.img), raid1(c.img, ./b.img))'
bad "same file in two mirrors" "$e" 'already|twice|duplicate' "$(col "$e" ./b.img)"
e='linear(slice(c.img, size=1m), d.img, c.img)'
bad "same file under a slice and bare" "$e" 'already|twice|duplicate' "$(col "$e" c.img 2)"

# Empty members.
e='raid0(a.img,,b.img)'
bad "empty member" "$e" 'member|empty' "$(($(col "$e" ,,) + 1))"
e='raid0(a.img, b.img,)'
bad "empty last member" "$e" 'member|empty' "$(col "$e" ')')"
e='raid0(, a.img, b.img)'
bad "empty first member" "$e" 'member|empty' "$(col "$e" ',')"
e='raid0()'
bad "no members" "$e" 'member|empty' "$(col "$e" ')')"
e='raid1(a.img, b.img, , c.img)'
bad "blank member" "$e" 'member|empty' "$(($(col "$e" ', ,') + 1)) $(($(col "$e" ', ,') + 2))"

# Unknown options.
e='raid0(a.img, b.img, chnk=64k)'
bad "unknown option chnk" "$e" 'option' "$(col "$e" chnk)"
e='linear(a.img, b.img, chunk=64k)'
bad "linear takes no chunk" "$e" 'option' "$(col "$e" chunk)"
e='raid1(a.img, b.img, offset=1m)'
bad "raid1 takes no offset" "$e" 'option' "$(col "$e" offset)"
e='slice(a.img, chunk=64k)'
bad "slice takes no chunk" "$e" 'option' "$(col "$e" chunk)"

# slice beyond its member (4 MiB).
e='slice(a.img, offset=5m)'
bad "slice offset beyond the member" "$e" 'beyond' "0 $(col "$e" offset)"
e='slice(a.img, offset=4m)'
bad "slice offset at the member's end" "$e" 'beyond' "0 $(col "$e" offset)"
e='slice(a.img, offset=1m, size=4m)'
bad "slice offset + size beyond the member" "$e" 'beyond' "0 $(col "$e" offset) $(col "$e" size)"
e='linear(b.img, slice(a.img, offset=8m))'
bad "nested slice beyond" "$e" 'beyond' "$(col "$e" slice) $(col "$e" offset)"
e='slice(a.img, b.img)'
bad "slice of two members" "$e" 'one member|takes one' "0 $(col "$e" b.img)"

# Too few members.
e='raid1(a.img)'
bad "raid1 with one member" "$e" 'at least 2|two' "0"
e='raid0(a.img, chunk=64k)'
bad "raid0 with one member" "$e" 'at least 2|two' "0"
e='raid0(raid1(c.img), a.img)'
bad "nested raid1 with one member" "$e" 'at least 2|two' "$(col "$e" raid1)"

# Missing member files.
e='raid0(a.img, nosuch.img)'
bad "missing member file" "$e" 'no such file' "$(col "$e" nosuch.img)"
e='raid1(a.img, b.img, gone/c.img)'
bad "member in a missing directory" "$e" 'no such file' "$(col "$e" gone/c.img)"
e='linear(slice(nosuch.img, offset=1m), a.img)'
bad "missing member under a slice" "$e" 'no such file' "$(col "$e" nosuch.img)"

# With --create a missing member is created, but a bad expression must
# still create nothing: no new.img after any of these.
e='raid0(a.img, new.img, chunk=48k)'
bad "--create, bad chunk" "$e" 'power of two' "0 $(col "$e" chunk)" --create 4m
e='raid1(new.img)'
bad "--create, raid1 with one member" "$e" 'at least 2|two' "0" --create 4m
e='raid0(a.img, new.img, gone/x.img)'
bad "--create, a later member in a missing directory" "$e" 'no such file' "$(col "$e" gone/x.img)" --create 4m
e='raid1(new.img, new.img)'
bad "--create, the same new member twice" "$e" 'already|twice|duplicate' "$(col "$e" new.img 2)" --create 4m
e='raid0(new.img, ./new.img)'
bad "--create, the same new member via ./" "$e" 'already|twice|duplicate' "$(col "$e" ./new.img)" --create 4m
e='linear new.img, b.img)'
bad "--create, ')' without '('" "$e" "unbalanced|unexpected|expected|missing" \
	"$(col "$e" ')') $(col "$e" ' new.img')" --create 4m
e='raid0(a.img, new.img, chnk=4k)'
bad "--create, unknown option" "$e" 'option' "$(col "$e" chnk)" --create 4m

# A good expression after all that still mounts (the members are fine).
start_rawvec 'raid0(a.img, b.img, c.img, d.img, chunk=64k)'
[ "$(stat -c %s "$MNT/disk")" = $((16 << 20)) ] || die "control: raid0 of 4 x 4 MiB is not 16 MiB"
stop_rawvec

if [ ${#FAILS[@]} -gt 0 ]; then
	printf '%s\n' "${FAILS[@]}" >&2
	die "${#FAILS[@]} of $((NCASES * 2)) bad-expression runs misbehaved"
fi
log "pass ($NCASES expressions, each in both modes)"
