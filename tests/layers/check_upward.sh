#!/usr/bin/env bash
# Each layer compiles against its own view of src/ (build/layer-include/<layer>).
# From the transport's view an upward include of the agent's internal header
# must fail to compile, naming the header; a downward include must compile.
#   check_upward.sh <cc> <layer-include root> <include dir> <generated include dir> <mpi include dirs...>
set -euo pipefail
cc=$1 root=$2 inc=$3 geninc=$4
shift 4
mpi=()
for d in "$@"; do mpi+=(-I "$d"); done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include "agent/agent_int.h"\nint main(void) { return 0; }\n' >"$tmp/up.c"
printf '#include "util/errbuf.h"\n#include "mem/mem.h"\nint main(void) { return 0; }\n' >"$tmp/down.c"
flags=(-std=gnu11 -fsyntax-only -I "$inc" -I "$geninc" "${mpi[@]}" -I "$root/transport")
if "$cc" "${flags[@]}" "$tmp/up.c" 2>"$tmp/up.err"; then
  echo "FAIL: the transport layer can include agent/agent_int.h" >&2
  exit 1
fi
grep -q 'agent/agent_int.h' "$tmp/up.err" || { echo "FAIL: upward include failed for another reason:" >&2; cat "$tmp/up.err" >&2; exit 1; }
echo "upward include refused: $(grep -m1 'agent/agent_int.h' "$tmp/up.err")"
if ! "$cc" "${flags[@]}" "$tmp/down.c" 2>"$tmp/down.err"; then
  echo "FAIL: a downward include does not compile:" >&2
  cat "$tmp/down.err" >&2
  exit 1
fi
echo "downward include (util, mem) compiles"
