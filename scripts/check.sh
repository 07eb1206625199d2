#!/bin/sh
# check: run every test (Check unit tests, plain and under ASan/UBSan, then
# the end-to-end scripts on each transport) and close with "N passed, N failed".
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
		rc=$?
		secs=$(( $(date +%s) - start ))
		case $rc in
		0) passed=$((passed + 1)); echo "PASS $name (${secs}s)";;
		77) skipped=$((skipped + 1)); echo "SKIP $name: $(tail -1 "$out")";;
		*) failed=$((failed + 1)); echo "FAIL $name (exit $rc, ${secs}s; log $out)"; tail -25 "$out" | sed 's/^/    /';;
		esac
	done
done

echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
