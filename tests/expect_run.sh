#!/usr/bin/env bash
# Run a command and check both its exit status and what it printed.
#   expect_run.sh [-e CODE] [-m REGEX]... [-n REGEX]... [-x TEXT] [-1 TEXT] -- COMMAND [ARGS...]
#   -e CODE   the exit status the command must end with (default 0)
#   -m REGEX  an extended regex that must match the output (stdout and stderr together,
#             newlines read as spaces so a pattern may span lines)
#   -n REGEX  an extended regex that must not match it
#   -x TEXT   stdout must be exactly TEXT (one line)
#   -1 TEXT   TEXT must appear exactly once in the output (a message printed by one rank)
# Every failed expectation is named; the output is shown either way.
set -uo pipefail
code=0 match=() nomatch=() exact="" once=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case $1 in
    -e) code=$2; shift 2 ;;
    -m) match+=("$2"); shift 2 ;;
    -n) nomatch+=("$2"); shift 2 ;;
    -x) exact=$2; shift 2 ;;
    -1) once+=("$2"); shift 2 ;;
    *) echo "expect_run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "${1:-}" = "--" ] && [ $# -ge 2 ] || { echo "usage: expect_run.sh [options] -- command..." >&2; exit 2; }
shift
tmp=$(mktemp -d /tmp/mixl-expect.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
"$@" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out"
cat "$tmp/err" >&2
fail=0
if [ "$rc" -ne "$code" ]; then
  echo "FAIL: exit status $rc, expected $code: $*" >&2; fail=1
fi
flat=$(cat "$tmp/out" "$tmp/err" | tr '\n' ' ')
for re in "${match[@]}"; do
  grep -Eq -- "$re" <<<"$flat" || { echo "FAIL: output does not match: $re" >&2; fail=1; }
done
for re in "${nomatch[@]}"; do
  if grep -Eq -- "$re" <<<"$flat"; then echo "FAIL: output matches: $re" >&2; fail=1; fi
done
if [ -n "$exact" ] && [ "$(cat "$tmp/out")" != "$exact" ]; then
  echo "FAIL: stdout is not exactly '$exact'" >&2; fail=1
fi
for t in "${once[@]}"; do
  n=$(cat "$tmp/out" "$tmp/err" | grep -cF -- "$t")
  [ "$n" -eq 1 ] || { echo "FAIL: '$t' printed $n times, expected once" >&2; fail=1; }
done
[ $fail -eq 0 ] && echo "PASS: exit status $rc and output as expected"
exit $fail
