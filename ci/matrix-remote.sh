#!/usr/bin/env bash
# One try of one matrix row on a build host (make matrix HOSTS=...). GNU parallel runs
# it in the try's work dir under the login's home, where it sent gp-matrix.bundle (the
# commit), gp-matrix.diff (the uncommitted changes, untracked files too) and this
# script, and from where it takes <row>.log, <row>.json and <row>/ (the row's result
# directories) back. The checkout and the build live in the host's own GP_WORK.
#
# usage: matrix-remote.sh STAMP ARCH CONFIG QEMU_CPU
# exit: 0 when the row reached a verdict (passed or failed), nonzero when the host
# could not run it (GNU parallel then tries another host).
set -euo pipefail
stamp=$1 arch=$2 config=$3 cpu=$4
row="$arch-$config-$cpu"
here=$(pwd)
work=${GP_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/grouped-pages}
src="$work/matrix/$stamp/$row"
infrastructure=3 # errors.EXIT_STATUS[INFRASTRUCTURE]

# A try that ends here still names its host in the console log, as matrix-row does.
fail() {
	echo "matrix-try: $row on $(hostname): $*" >&2
	exit "$infrastructure"
}

echo "matrix-remote: $row: checkout in $src"
rm -rf "$src"
mkdir -p "$(dirname "$src")" || fail "cannot create $src"
git -c advice.detachedHead=false clone --quiet gp-matrix.bundle "$src" 2>&1 ||
	fail "git clone of the bundle failed"
if [[ -s gp-matrix.diff ]]; then
	git -C "$src" apply --binary "$here/gp-matrix.diff" || fail "the uncommitted diff does not apply"
fi
# A build host needs the kernel build and boot packages, not the CI tools (npm).
(cd "$src" && GP_DEPS=build bash ci/deps) || fail "ci/deps failed (packages missing and no root?)"
status=0
GP_DEPS=build PYTHONPATH="$src/ci" /usr/bin/python3 -m gptool --repo "$src" --work "$work" \
	matrix-row --out "$here" --host "$(hostname)" --keep-results "$arch" "$config" "$cpu" ||
	status=$?
rm -rf "$src"
exit "$status"
