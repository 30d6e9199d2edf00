#!/usr/bin/env bash
# checkpatch --strict over our kernel files and patches, run from the prepared tree
# so checkpatch sees the kernel it checks against.
set -euo pipefail
tree=${1:?usage: ci/checkpatch.sh PREPARED_TREE}
repo=$(cd "$(dirname "$0")/.." && pwd)

files=()
while IFS= read -r -d '' f; do
	files+=("${f#"$repo"/*/}")
done < <(find "$repo/kernel" "$repo/kunit" -type f \( -name '*.c' -o -name '*.h' \) -print0)

status=0
cd "$tree"
for f in "${files[@]}"; do
	scripts/checkpatch.pl --strict --quiet --no-summary --show-types -f "$f" || status=1
done
for p in "$repo"/kernel/patches/*.patch; do
	[[ -e $p ]] || continue
	scripts/checkpatch.pl --strict --quiet --no-summary --show-types "$p" || status=1
done
if ((status == 0)); then
	echo "checkpatch --strict: ${#files[@]} files and the patches are clean"
fi
exit "$status"
