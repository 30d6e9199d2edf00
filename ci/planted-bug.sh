#!/usr/bin/env bash
# Show that the kselftests or a KUnit case catch a planted bug. Copies the working
# tree, applies ci/planted-bugs/NAME.patch to the copy, runs `make selftests` (or
# `make kunit ARCH=x86_64 [CONFIG=NAME]` for "Expected: kunit SUITE.CASE fails [under
# CONFIG=NAME]") there and passes only if the test named in the patch's "Expected:"
# line fails (or was running when the kernel died). The bug never touches this
# checkout, and the shared prepared kernel tree gets this checkout's code back when
# the script ends.
#   usage: ci/planted-bug.sh NAME     (NAME: a file in ci/planted-bugs/ without .patch)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
name=${1:-}
patch="$repo/ci/planted-bugs/$name.patch"
if [[ -z $name || ! -f $patch ]]; then
	echo "usage: ci/planted-bug.sh NAME; NAME is one of:" \
		"$(find "$repo/ci/planted-bugs" -name '*.patch' -printf '%f ' | sed 's/\.patch//g')" >&2
	exit 2
fi
if grep -q 'Expected: bench' "$patch"; then
	# A performance regression: only the bench sees it, through make compare.
	exec "$repo/ci/planted-regression.sh" "$name"
fi
kunit_case=$(grep -o 'Expected: kunit [a-z0-9_]*\.[a-z0-9_]*' "$patch" | head -n 1 | cut -d' ' -f3 || true)
# A bug only a debugging config sees reliably (a stale read KASAN reports): "Expected:
# kunit SUITE.CASE fails under CONFIG=NAME" runs the case on that config.
kunit_config=$(grep -o 'Expected: kunit [a-z0-9_.]* fails under CONFIG=[a-z0-9_-]*' "$patch" |
	head -n 1 | sed 's/.*CONFIG=//' || true)
expected=$(grep -o 'selftests gp\.[a-z_]*' "$patch" | head -n 1 | cut -d' ' -f2 || true)
# A bug only one configuration sees (a leak only kmemleak reports): that matrix row
# must fail, and its output must say TEXT.
row_expected=$(grep -o 'Expected: row [a-z0-9_-]* fails with "[^"]*"' "$patch" | head -n 1 || true)
if [[ -z $expected && -z $kunit_case && -z $row_expected ]]; then
	echo "error: $patch names no expected test (want 'Expected: selftests gp.NAME fails'," \
		"'Expected: kunit SUITE.CASE fails' or 'Expected: row ROW fails with \"TEXT\"')" >&2
	exit 2
fi

copy=$(mktemp -d)
# The copy shares $GP_WORK's prepared tree: give it back our code afterwards, so
# kunit.py run by hand on that tree does not build the bug.
restore() {
	rm -rf "$copy"
	make -C "$repo" --no-print-directory tree >/dev/null
}
trap restore EXIT
rsync -a --exclude=.git --exclude=results "$repo/" "$copy/"
patch -d "$copy" -p1 --quiet < "$patch"

# Run `make ARGS...` in the copy and keep the LOG it left under results/KIND/ in
# results/planted-bugs/. Sets status (make's), log (in the copy, or empty) and kept.
run_and_keep() {
	local kind=$1 logname=$2
	shift 2
	status=0
	make -C "$copy" --no-print-directory "$@" || status=$?
	log=$(find "$copy/results/$kind" -name "$logname" | head -n 1)
	mkdir -p "$repo/results/planted-bugs"
	kept="$repo/results/planted-bugs/$name-$(date -u +%Y%m%dT%H%M%SZ).log"
	if [[ -n $log ]]; then
		cp "$log" "$kept"
	fi
}

if [[ -n $row_expected ]]; then
	row=$(cut -d' ' -f3 <<<"$row_expected")
	text=${row_expected#*fails with \"}
	text=${text%\"}
	mkdir -p "$repo/results/planted-bugs"
	kept="$repo/results/planted-bugs/$name-$(date -u +%Y%m%dT%H%M%SZ).log"
	status=0
	make -C "$copy" --no-print-directory cell ROW="$row" 2>&1 | tee "$kept" || status=$?
	if ((status == 0)); then
		echo "planted bug $name: NOT caught, row $row passed (log: $kept)"
		exit 1
	fi
	if grep -qF "$text" "$kept"; then
		echo "planted bug $name: caught, row $row failed with \"$text\" (log: $kept)"
		exit 0
	fi
	echo "planted bug $name: row $row failed, but not with \"$text\" (log: $kept)"
	exit 1
fi

if [[ -n $kunit_case ]]; then
	run_and_keep kunit ktap.log kunit ARCH=x86_64 CONFIG="${kunit_config:-default}" \
		KUNIT_ARGS="$kunit_case"
	ktap=$log
	if ((status == 0)); then
		echo "planted bug $name: NOT caught, $kunit_case passed"
		exit 1
	fi
	if [[ -n $ktap ]] && grep -qE "not ok [0-9]+ ${kunit_case#*.}\$" "$ktap"; then
		echo "planted bug $name: caught, $kunit_case failed (KTAP: $kept)"
		exit 0
	fi
	echo "planted bug $name: the run failed, but not in $kunit_case (KTAP: ${ktap:+$kept})"
	exit 1
fi

run_and_keep selftests console.log selftests
console=$log
if ((status == 0)); then
	echo "planted bug $name: NOT caught, the selftests passed"
	exit 1
fi
if [[ -z $console ]]; then
	echo "planted bug $name: the run failed before booting (build?), so nothing was shown"
	exit 1
fi
last_run=$(grep -o '#  RUN  *gp\.[a-z_]*' "$console" | tail -n 1 | awk '{print $3}')
# A kernel that dies may leave the next test's RUN line in the runner's pipe: then the
# test running was the one after the last result, in gp_stress.c's order.
last_result=$(grep -oE '^(# )?(not )?ok [0-9]+ gp\.[a-z_]+' "$console" | tail -n 1 | awk '{print $NF}')
if [[ -n $last_result && $last_run == "$last_result" ]]; then
	last_run=$(grep -oE 'TEST_F(_TIMEOUT)?\(gp, [a-z_]+' "$repo/selftests/grouped_pages/gp_stress.c" |
		sed 's/.*, /gp./' | grep -x -A 1 "$last_result" | sed -n 2p || true)
fi
# gp_stress's TAP comes indented one level ("# ") by kselftest's runner.
if grep -qE "^(# )?not ok [0-9]+ $expected\$" "$console"; then
	echo "planted bug $name: caught, $expected failed (console: $kept)"
elif ! grep -qE "^(# )?ok [0-9]+ $expected" "$console" && [[ $last_run == "$expected" ]]; then
	echo "planted bug $name: caught, the kernel died during $expected (console: $kept)"
else
	echo "planted bug $name: the run failed, but not in $expected (console: $kept)"
	exit 1
fi
