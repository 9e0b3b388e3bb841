#!/bin/bash
# A notification slot that never passes its CRC (its writer "died" mid-put:
# the fault library flips a byte of rank 0's notification put) must be
# reported by the target after the agent's timeout (3 s in fault_agent) as
# MIXL_ERR_CHECKSUM naming the source, not stall that source for ever.
#   torn_notif.sh LIB -- MPIRUN [FLAGS...] PROG
set -u
lib=$1
shift
[ "$1" = "--" ] && shift
runner=("${@:1:$#-1}")
prog=${!#}
t0=$(date +%s)
out=$(timeout -k 5 60 "${runner[@]}" -np 2 -x MIXL_FAULT_FUNC=MPI_Put -x MIXL_FAULT_RANK=0 \
    -x MIXL_FAULT_CALL=2 -x MIXL_FAULT_MODE=corrupt env LD_PRELOAD="$lib" "$prog" 2>&1)
rc=$?
echo "$out"
echo "exit $rc after $(($(date +%s) - t0)) s"
[ $rc -ne 124 ] && [ $rc -ne 137 ] || { echo "FAIL: hang"; exit 1; }
grep -q "mixl-fault: rank 0: MPI_Put call 2 (phase transfer): 64 bytes put with byte 16 flipped" <<<"$out" ||
    { echo "FAIL: the notification put was not corrupted"; exit 1; }
grep -q "rank 1: receive FAILED: MIXL_ERR_CHECKSUM: .*notification 1 from rank 0 (faults-0) failed its CRC for 3000 ms" <<<"$out" ||
    { echo "FAIL: rank 1 did not report the torn slot"; exit 1; }
[ $rc -ne 0 ] || { echo "FAIL: exit 0"; exit 1; }
echo "PASS: the torn notification slot was reported after the timeout"
