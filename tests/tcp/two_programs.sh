#!/usr/bin/env bash
# Two independently started programs (no MPI world, no common parent but
# this script) meet through a metadata exchange and transfer over TCP.
#   two_programs.sh <mixl-tcp-peer> <workdir> <exchange-spec> [extra args...]
# The exchange spec is passed to both programs (e.g. dir:<workdir>/md).
set -uo pipefail
peer=$1 work=$2 exchange=$3
shift 3
rm -rf "$work"
mkdir -p "$work/md"
"$peer" --role target --name decode-tp --peer prefill-tp --exchange "$exchange" "$@" \
  >"$work/target.log" 2>&1 &
tpid=$!
"$peer" --role initiator --name prefill-tp --peer decode-tp --exchange "$exchange" "$@" \
  >"$work/initiator.log" 2>&1 &
ipid=$!
# Bounded wait: every step inside the programs has its own timeout too.
for _ in $(seq 1 600); do
  kill -0 "$tpid" 2>/dev/null || kill -0 "$ipid" 2>/dev/null || break
  sleep 0.1
done
for pid in "$tpid" "$ipid"; do
  if kill -0 "$pid" 2>/dev/null; then
    echo "process $pid still running after 60 s, killing it" >&2
    kill -9 "$pid" 2>/dev/null
  fi
done
wait "$tpid"; trc=$?
wait "$ipid"; irc=$?
cat "$work/target.log" "$work/initiator.log"
echo "target exit $trc, initiator exit $irc"
[ "$trc" -eq 0 ] && [ "$irc" -eq 0 ]
