#!/usr/bin/env bash
# Turns a fresh set of namespaces into a cluster node, then becomes its PID 1.
# Run by cluster.sh as the first process inside the node:
#   node_setup.sh NODE STATE_DIR MARK TTL
set -eu
node=$1 state=$2 mark=$3 ttl=$4
hostname "$node"
# Private /dev/shm and /tmp: shared-memory transports and Slurm's pmix files
# must not be visible from another node. A checkout, build or state directory
# under /tmp (CI may clone there) stays visible: its top folder is bound back
# from the host's /tmp, reached through a descriptor opened before the mount.
keep=()
for p in "$state" "$(cd "$(dirname "$0")/../.." && pwd)"; do
  case $p/ in
    /tmp/?*) rel=${p#/tmp/}; keep+=("${rel%%/*}") ;;
  esac
done
exec 9</tmp
mount -t tmpfs -o mode=1777,size=2g mixl-shm /dev/shm
mount -t tmpfs -o mode=1777,size=1g mixl-tmp /tmp
for k in "${keep[@]}"; do
  mkdir -p "/tmp/$k"
  # --no-canonicalize: the source must be reached through the descriptor, not
  # resolved again by name (which now names the new, empty /tmp).
  mount --no-canonicalize --bind "/proc/self/fd/9/$k" "/tmp/$k"
done
exec 9<&-
mount --bind "$state/hosts" /etc/hosts
# A sysfs of this network namespace (UCX and Open MPI read /sys/class/net),
# and the cgroup file system slurmd insists on: a small tmpfs with a
# controller-less named v1 hierarchy, gone when the node's last mount goes.
mount -t sysfs mixl-sys /sys
mount -t tmpfs -o size=1m mixl-cgroup /sys/fs/cgroup
mkdir -p /sys/fs/cgroup/systemd
mount -t cgroup -o "none,name=$mark-$node" mixl-cgroup /sys/fs/cgroup/systemd
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
touch "$state/nodes/$node.ready"
exec "$state/node-init" "$ttl" " $mark"
