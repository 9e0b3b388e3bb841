#!/usr/bin/env bash
# ssh-compatible launch agent for Open MPI (--mca plm_rsh_agent) inside an
# emulated cluster (scripts/cluster/cluster.sh): skips ssh's options, then runs
# the remote command line with sh inside the named node through the launch
# server of the cluster whose state directory is MIXL_CLUSTER_STATE (cluster.sh
# writes a copy of this script with it filled in as STATE_DIR/rsh-agent).
#   rsh-agent [ssh options] NODE COMMAND...
set -u
state=${MIXL_CLUSTER_STATE:?MIXL_CLUSTER_STATE is not set}
while [ $# -gt 0 ]; do
  case $1 in
    # ssh options that take a value
    -[bcDEeFIiJLlmOoPpQRSWw]) shift 2 ;;
    -[bcDEeFIiJLlmOoPpQRSWw]?*) shift ;;
    -*) shift ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "rsh-agent: usage: rsh-agent [ssh options] NODE COMMAND..." >&2; exit 255; }
node=${1%%@*}
[ "$node" = "$1" ] || node=${1#*@}
shift
# Like ssh, the words after the host form one command line for the remote shell.
exec python3 "$state/launch.py" run "$state/launch.sock" "$node" sh -c "$*"
