#!/usr/bin/env bash
# A throwaway etcd server for the registry tests.
#   etcd_fixture.sh start <dir>   start etcd on free loopback ports with its data in <dir>/data,
#                                 wait for /health, write the client URL to <dir>/endpoint and
#                                 the pid to <dir>/pid
#   etcd_fixture.sh restart <dir> start it again on the same client port (data kept unless
#                                 WIPE=1), for reconnect tests
#   etcd_fixture.sh kill <dir>    stop it by pid, keeping <dir> (restart brings it back)
#   etcd_fixture.sh cluster <dir> start a 3-member cluster instead (pids in <dir>/pid.N, all
#                                 client URLs comma-separated in <dir>/endpoint)
#   etcd_fixture.sh kill-member <dir> N   stop member N of the cluster by pid
#   etcd_fixture.sh stop <dir>... stop it (or every member) and remove <dir>, for each <dir>
# Every etcd runs in its own session and process group (setsid), and is stopped by killing
# that group: the stop fixture cleans up after a test that CTest killed (SIGKILL runs no
# trap), and start first stops whatever an earlier, killed run left in <dir>.
# A guard (tests/fixture_guard.sh) started with etcd stops it when the CTest run is gone (CTest
# killed: no cleanup fixture runs), or after an hour at the latest.
# ETCD_EXTRA_ARGS adds flags (e.g. --auth-token-ttl 1) to start and restart.
# TLS=1 with start: make a throwaway CA, server and client certificates in <dir>/tls
# (ca.crt, client.crt, client.key) and serve https with client-certificate auth; without
# openssl it exits 77 (SKIP) with the reason, and writes <dir>/skip.
# Without etcd or etcdctl installed (etcd-server, etcd-client), start exits 77 (SKIP) with
# the reason and writes no endpoint: the tests then report SKIP (77) themselves. Any other
# failure to start is a failure (exit 1).
set -euo pipefail

cmd=${1:?usage: etcd_fixture.sh start|restart|stop <dir>}
dir=${2:?usage: etcd_fixture.sh start|restart|stop <dir>}
self=$(realpath -- "$0")
guard=$(dirname "$self")/../fixture_guard.sh
ETCD=${ETCD:-/usr/bin/etcd}
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}

tls_args=()
ctl_tls=()
scheme=http
if [ -f "$dir/tls/ca.crt" ] || [ "${TLS:-0}" = 1 ]; then scheme=https; fi

set_tls_args() {
  local t="$dir/tls"
  tls_args=(--cert-file "$t/server.crt" --key-file "$t/server.key"
            --client-cert-auth --trusted-ca-file "$t/ca.crt")
  ctl_tls=(--cacert "$t/ca.crt" --cert "$t/client.crt" --key "$t/client.key")
}

make_certs() {
  local t="$dir/tls"
  mkdir -p "$t"
  (
    cd "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
      -subj /CN=mixl-test-ca
    printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
      -days 2 -extfile san.ext
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=root
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt \
      -days 2
  ) >"$dir/openssl.log" 2>&1
}

healthy() {
  ETCDCTL_API=3 "$ETCDCTL" --endpoints="$1" "${ctl_tls[@]}" --dial-timeout=1s \
    --command-timeout=1s endpoint health >/dev/null 2>&1
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Start etcd with client port $1 and peer port $2; 0 once healthy, 1 when it died or never became so.
launch() {
  local cp=$1 pp=$2 url="$scheme://127.0.0.1:$1"
  mkdir -p "$dir"
  setsid "$ETCD" --name mixl-test --data-dir "$dir/data" --unsafe-no-fsync \
    --logger=zap --log-level=warn --log-outputs="$dir/etcd.log" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "mixl-test=http://127.0.0.1:$pp" "${tls_args[@]}" ${ETCD_EXTRA_ARGS:-} \
    </dev/null >>"$dir/etcd.out" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pid"
  echo "$cp $pp" >"$dir/ports"
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    if healthy "$url"; then
      echo "$url" >"$dir/endpoint"
      return 0
    fi
    sleep 0.1
  done
  stop_group "$pid"
  return 1
}

# Start a 3-member cluster on six consecutive free ports; 0 once every member is healthy,
# 1 as soon as a member dies or after 20 s (a loaded machine can be slow to elect a leader;
# the caller retries on fresh ports).
launch_cluster() {
  local base="" initial="" urls="" i
  for _ in $(seq 1 20); do
    base=$((20000 + RANDOM % 30000))
    for i in 0 1 2 3 4 5; do port_free $((base + i)) || continue 2; done
    break
  done
  for i in 0 1 2; do
    initial+="${initial:+,}m$i=http://127.0.0.1:$((base + 2 * i + 1))"
    urls+="${urls:+,}http://127.0.0.1:$((base + 2 * i))"
  done
  for i in 0 1 2; do
    local cp=$((base + 2 * i)) pp=$((base + 2 * i + 1))
    setsid "$ETCD" --name "m$i" --data-dir "$dir/data.$i" --unsafe-no-fsync \
      --logger=zap --log-level=warn --log-outputs="$dir/etcd.$i.log" \
      --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
      --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
      --initial-cluster "$initial" --initial-cluster-state new \
      </dev/null >>"$dir/etcd.$i.out" 2>&1 &
    echo $! >"$dir/pid.$i"
  done
  local deadline=$((SECONDS + 20))
  while [ "$SECONDS" -lt "$deadline" ]; do
    for i in 0 1 2; do
      if ! kill -0 "$(cat "$dir/pid.$i")" 2>/dev/null; then
        echo "etcd member m$i exited:" >&2
        tail -n 3 "$dir/etcd.$i.out" "$dir/etcd.$i.log" >&2 2>/dev/null || true
        return 1
      fi
    done
    if healthy "$urls"; then
      echo "$urls" >"$dir/endpoint"
      return 0
    fi
    sleep 0.1
  done
  echo "etcd cluster on ports $base..$((base + 5)) not healthy after 20 s" >&2
  return 1
}

# Stop the process group led by pid $1 (setsid made etcd its leader): TERM, then KILL.
# Only an etcd whose command line names <dir> is touched: a stale pid file from an earlier
# boot must not kill an unrelated process that got the same pid.
stop_group() {
  local pid=$1
  [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir" || return 0
  if kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
}

stop_cluster() {
  for f in "$dir"/pid.*; do
    [ -f "$f" ] || continue
    stop_group "$(cat "$f")"
    rm -f "$f"
  done
}

stop_pid() {
  [ -f "$dir/pid" ] || return 0
  stop_group "$(cat "$dir/pid")"
  rm -f "$dir/pid"
}

# Exit 77 (SKIP) with the reason when etcd or etcdctl is not installed.
need_etcd() {
  local b
  for b in "$ETCD" "$ETCDCTL"; do
    if [ ! -x "$b" ]; then
      echo "SKIP: $b not installed (scripts/deps.sh installs etcd-server and etcd-client)"
      exit 77
    fi
  done
}

case "$cmd" in
start)
  need_etcd
  stop_pid
  stop_cluster
  "$guard" disarm "$dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$guard" arm "$dir" 3600 "$self" stop "$dir"
  if [ "$scheme" = https ]; then
    if ! command -v openssl >/dev/null; then
      echo "openssl not installed: no TLS certificates" >"$dir/skip"
      echo "SKIP: openssl not installed; TLS etcd tests will report SKIP"
      exit 77
    fi
    make_certs || { cat "$dir/openssl.log" >&2; exit 1; }
    set_tls_args
  fi
  for _ in $(seq 1 10); do
    cp=$((20000 + RANDOM % 30000)); pp=$((cp + 1))
    port_free "$cp" && port_free "$pp" || continue
    if launch "$cp" "$pp"; then
      echo "etcd $(cat "$dir/endpoint") pid $(cat "$dir/pid") data $dir/data"
      exit 0
    fi
    stop_pid
    rm -rf "$dir/data"
  done
  echo "etcd did not start; last log:" >&2
  tail -n 20 "$dir/etcd.log" "$dir/etcd.out" >&2 2>/dev/null || true
  exit 1
  ;;
restart)
  read -r cp pp <"$dir/ports"
  if [ "$scheme" = https ]; then set_tls_args; fi
  stop_pid
  if [ "${WIPE:-0}" = 1 ]; then rm -rf "$dir/data"; fi
  launch "$cp" "$pp"
  ;;
cluster)
  need_etcd
  stop_pid
  stop_cluster
  "$guard" disarm "$dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$guard" arm "$dir" 3600 "$self" stop "$dir"
  for _ in 1 2 3; do
    if launch_cluster; then
      echo "etcd cluster $(cat "$dir/endpoint")"
      exit 0
    fi
    stop_cluster
    rm -rf "$dir"/data.*
  done
  echo "etcd cluster did not start" >&2
  tail -n 5 "$dir"/etcd.*.log >&2 2>/dev/null || true
  exit 1
  ;;
kill-member)
  n=${3:?member number}
  if [ -f "$dir/pid.$n" ]; then
    stop_group "$(cat "$dir/pid.$n")"
    rm -f "$dir/pid.$n"
  fi
  ;;
kill)
  stop_pid
  ;;
stop)
  shift
  for dir in "$@"; do
    "$guard" disarm "$dir"
    stop_pid
    stop_cluster
    rm -rf "$dir"
  done
  ;;
*)
  echo "unknown command $cmd" >&2
  exit 2
  ;;
esac
