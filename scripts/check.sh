#!/bin/sh
# check: run every test (Check unit tests, plain and under ASan/UBSan, then
# the end-to-end scripts on each transport, then t_mq_stress under TSan if
# build/rawvec_tsan is built) and close with "N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=0 skipped=0
log=build/check-logs
rm -rf "$log"; mkdir -p "$log"

# Check prints "NN%: Checks: T, Failures: F, Errors: E".
unit() {
	name=$1; shift
	out="$log/$name.log"
	CK_FORK=yes "$@" >"$out" 2>&1
	rc=$?
	line=$(grep -E '^[0-9]+%: Checks: ' "$out" | tail -1)
	if [ -z "$line" ]; then
		echo "FAIL $name (no result line, exit $rc; see $out)"; tail -20 "$out"
		failed=$((failed + 1)); return
	fi
	t=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
	f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
	e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
	bad=$((f + e))
	[ $rc -ne 0 ] && [ $bad -eq 0 ] && bad=1
	passed=$((passed + t - f - e)); failed=$((failed + bad))
	echo "$name: $line"
	[ $bad -ne 0 ] && grep -E ':[EF]:' "$out" | head -20
}

unit unit build/unit_tests
unit unit-asan-ubsan build/unit_tests_san

# End-to-end: each tests/e2e/t_*.sh is one test; a script whose first lines
# say "# transports: uring dev" runs once per transport, one that says
# "# variants: uring/1 dev/2" once per transport and -o threads= pair
# (the data-integrity tests: both ways).  Exit 77 = skip.
if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && [ -w /sys/module/fuse/parameters/enable_uring ]; then
	echo Y > /sys/module/fuse/parameters/enable_uring 2>/dev/null
fi
# record NAME RC SECS LOG TAIL: count one e2e run, and show a failure's
# last TAIL log lines.
record() {
	case $2 in
	0) passed=$((passed + 1)); echo "PASS $1 ($3s)";;
	77) skipped=$((skipped + 1)); echo "SKIP $1: $(tail -1 "$4")";;
	*) failed=$((failed + 1)); echo "FAIL $1 (exit $2, $3s; log $4)"; tail -"$5" "$4" | sed 's/^/    /';;
	esac
}

for t in tests/e2e/t_*.sh; do
	[ -e "$t" ] || continue
	trs=$(sed -n 's/^# variants: //p' "$t" | head -1)
	[ -n "$trs" ] || trs=$(sed -n 's/^# transports: //p' "$t" | head -1)
	[ -n "$trs" ] || trs=auto
	for v in $trs; do
		tr=${v%/*} th=
		[ "$tr" = "$v" ] || th=${v#*/}
		name="$(basename "$t" .sh)[$tr${th:+,threads=$th}]"
		out="$log/$(basename "$t" .sh)-$tr${th:+-$th}.log"
		start=$(date +%s)
		RAWVEC_TRANSPORT=$tr RAWVEC_THREADS=$th timeout 300 bash "$t" >"$out" 2>&1
		record "$name" $? $(( $(date +%s) - start )) "$out" 25
	done
done

# The many-loops tests once more under ThreadSanitizer, when make check
# built rawvec_tsan: a report ends rawvec with status 66 (or is found in
# its log at the unmount), and the test fails showing it.
# tsan_run TEST TRANSPORT [VAR=VALUE...]
tsan_run() {
	local name=$1 t=tests/e2e/$1.sh tr=$2 out="$log/$1-tsan.log" start
	shift 2
	start=$(date +%s)
	env "$@" RAWVEC=$PWD/build/rawvec_tsan RAWVEC_TRANSPORT=$tr E2E_SLOW=4 \
		TSAN_OPTIONS="halt_on_error=1 exitcode=66 report_signal_unsafe=0" \
		timeout 300 bash "$t" >"$out" 2>&1
	record "$name[$tr,threads=2,tsan]" $? $(( $(date +%s) - start )) "$out" 60
}
if [ -x build/rawvec_tsan ]; then
	# A shared device (file), a raid1 on both loops, and raid5/6 sharded,
	# headerless and with md superblocks (failures met on loop 1,
	# recorded on loop 0); the plain run above has all five.
	tsan_run t_mq_stress uring MQ_CASES="file raid1 raid5h raid6"
	# nbd() parts on two loops, closed from the other one; the plain run
	# above is uring's.
	tsan_run t_nbd_loops dev
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
