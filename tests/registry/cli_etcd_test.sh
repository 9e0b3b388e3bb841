#!/usr/bin/env bash
# mixl-registry against a real etcd: bench end to end, a foreign value shown with the
# decoder's reason and its key, a missing agent, and an unreachable server.
#   cli_etcd_test.sh <mixl-registry> <endpoint-file>
set -uo pipefail
bin=$1
if [ ! -f "$2" ]; then
  if [ ! -x /usr/bin/etcd ]; then echo "SKIP: etcd not installed"; exit 77; fi
  echo "FAIL: no endpoint file $2"; exit 1
fi
ep=$(cat "$2")
ns="cli-$$"
fail=0
check() { if ! "$@"; then echo "FAIL: $*"; fail=1; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin" --endpoints "$ep" --namespace "$ns" bench --count 20 >"$tmp/bench" 2>&1
check grep -q "uncached get" "$tmp/bench"
cat "$tmp/bench"

ETCDCTL_API=3 etcdctl --endpoints="$ep" put "$ns/mixl_metadata/intruder" '{"not":"mixl"}' >/dev/null
"$bin" --endpoints "$ep" --namespace "$ns" list >"$tmp/list" 2>&1
check grep -Eq "^intruder .*not MIXL metadata" "$tmp/list"
cat "$tmp/list"

if "$bin" --endpoints "$ep" --namespace "$ns" show intruder >"$tmp/show" 2>&1; then
  echo "FAIL: show of a foreign value succeeded"; fail=1
fi
check grep -q "key $ns/mixl_metadata/intruder" "$tmp/show"
cat "$tmp/show"

if "$bin" --endpoints "$ep" --namespace "$ns" show ghost >"$tmp/ghost" 2>&1; then
  echo "FAIL: show of a missing agent succeeded"; fail=1
fi
check grep -q "metadata not found for agent ghost in namespace $ns" "$tmp/ghost"

if "$bin" --endpoints http://127.0.0.1:1 --timeout 500 list >"$tmp/down" 2>&1; then
  echo "FAIL: list against a dead endpoint succeeded"; fail=1
fi
check grep -q "unreachable" "$tmp/down"
cat "$tmp/down"

ETCDCTL_API=3 etcdctl --endpoints="$ep" del --prefix "$ns/" >/dev/null
exit $fail
