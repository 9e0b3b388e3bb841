#!/usr/bin/env bash
# Two independently started programs meet through a real etcd (the MIXL
# metadata store) and transfer over TCP. Starts its own etcd on free
# loopback ports with the registry tests' fixture and stops it by PID.
#   two_programs_etcd.sh <etcd_fixture.sh> <mixl-tcp-peer> <workdir>
# Exits 77 (SKIP) when etcd is not installed.
set -uo pipefail
fixture=$1 peer=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
"$fixture" start "$work/etcd"
rc=$?
# 77: the fixture found no etcd/etcdctl and said so; any other failure is a failure.
[ $rc -eq 0 ] || { [ $rc -eq 77 ] && exit 77; exit 1; }
trap '"$fixture" stop "$work/etcd" >/dev/null 2>&1' EXIT
if [ ! -f "$work/etcd/endpoint" ]; then
  echo "SKIP: etcd not available"
  exit 77
fi
"$here/two_programs.sh" "$peer" "$work/run" "etcd:$(cat "$work/etcd/endpoint")"
