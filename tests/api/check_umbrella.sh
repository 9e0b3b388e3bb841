#!/usr/bin/env bash
# mixl.h includes every public header, and compiles alone.
#   check_umbrella.sh <cc> <include dir> <generated include dir> <mpi include dirs...>
set -euo pipefail
cc=$1 inc=$2 geninc=$3
shift 3
mpi=()
for d in "$@"; do mpi+=(-I "$d"); done
fail=0
for h in "$inc"/mixl/*.h "$geninc"/mixl/*.h; do
  name=$(basename "$h")
  [ "$name" = mixl.h ] && continue
  grep -q "#include <mixl/$name>" "$inc/mixl/mixl.h" || { echo "FAIL: mixl.h does not include $name" >&2; fail=1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <mixl/mixl.h>\nint main(void) { return mixl_version() == MIXL_VERSION ? 0 : 1; }\n' >"$tmp/u.c"
"$cc" -std=c11 -Wall -Werror -fsyntax-only -I "$inc" -I "$geninc" "${mpi[@]}" "$tmp/u.c" || fail=1
echo "mixl.h includes: $(grep -c '#include <mixl/' "$inc/mixl/mixl.h") headers"
exit $fail
