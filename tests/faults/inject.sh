#!/bin/bash
# Fail every call of one MPI function, one call at a time, under a test
# program, and check that each injected failure ends in bounded time with the
# same error on every rank.
#
#   inject.sh LIB FUNC RANKS NP PROG_ARGS -- MPIRUN [FLAGS...] PROG
#
# A first run without a fault counts the calls of FUNC on each rank (the
# library's MIXL_FAULT_REPORT); then for each rank in RANKS (comma-separated)
# and each call n, a run with that call failing must:
#   - end within PER_RUN seconds (no hang),
#   - show the library's injection line (the fault really ran),
#   - and, unless the fault hit the tear-down (phase destroy/free/finalize,
#     where MIXL reports nothing by design), exit non-zero with a FAILED line
#     from every rank for a collective step (alloc, create, register, start),
#     from at least one rank for a point-to-point one (transfer, registry
#     operations);
#     or end with MIXL's message that the collective sequence was lost
#     and the job aborted (a failed agreement cannot be recovered from).
set -u
lib=$1 func=$2 ranks=$3 np=$4 prog_args=$5
shift 5
[ "$1" = "--" ] && shift
mpirun=("$@")
PER_RUN=${PER_RUN:-45}
tmp=$(mktemp -d /tmp/mixl-faults.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

run() { # run OUTFILE [ENV...]
    local out=$1
    shift
    local envs=()
    for e in "$@"; do envs+=(-x "$e"); done
    # shellcheck disable=SC2086
    env "$@" timeout -k 5 "$PER_RUN" "${mpirun[@]:0:${#mpirun[@]}-1}" -np "$np" "${envs[@]}" \
        env LD_PRELOAD="$lib" "${mpirun[-1]}" $prog_args >"$out" 2>&1
}

run "$tmp/clean.out" MIXL_FAULT_REPORT="$tmp/count"
rc=$?
if [ $rc -ne 0 ] || ! grep -q "all steps passed" "$tmp/clean.out"; then
    echo "FAIL: the run without a fault did not pass (exit $rc):"
    cat "$tmp/clean.out"
    exit 1
fi

total=0
IFS=, read -ra rank_list <<<"$ranks"
for r in "${rank_list[@]}"; do
    calls=$(awk -v f="$func" '$1 == f { print $2 }' "$tmp/count.$r" 2>/dev/null)
    if [ -z "$calls" ]; then
        echo "FAIL: rank $r wrote no call count for $func"
        exit 1
    fi
    echo "== $func: $calls calls on rank $r"
    for ((n = 1; n <= calls; n++)); do
        out="$tmp/r$r.n$n.out"
        t0=$(date +%s)
        run "$out" MIXL_FAULT_FUNC="$func" MIXL_FAULT_RANK="$r" MIXL_FAULT_CALL="$n"
        rc=$?
        dt=$(($(date +%s) - t0))
        total=$((total + 1))
        inj=$(grep -m1 "mixl-fault: rank $r: $func call $n" "$out")
        ph=$(sed -n 's/.*(phase \([^)]*\)).*/\1/p' <<<"$inj")
        why=""
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            why="HANG: no end after ${PER_RUN} s"
        elif [ -z "$inj" ]; then
            why="the fault was not injected"
        elif grep -q "collective sequence lost" "$out"; then
            [ $rc -ne 0 ] || why="aborted job exited 0"
        else
            case "$ph" in
            destroy | free | finalize | "registry destroy") ;;
            transfer | registry)
                # Point-to-point: the rank that saw the error, or the peer that waited for it,
                # reports; the other may have done its part (the data landed).
                nfail=$(grep -c "^rank [0-9]*: .* FAILED" "$out")
                if [ $rc -eq 0 ]; then
                    why="exit 0 after a fault in phase '$ph'"
                elif [ "$nfail" -eq 0 ]; then
                    why="no rank reported an error"
                fi
                ;;
            *)
                nfail=$(grep -c "^rank [0-9]*: .* FAILED" "$out")
                franks=$(sed -n 's/^rank \([0-9]*\): .* FAILED.*/\1/p' "$out" | sort -u | wc -l)
                if [ $rc -eq 0 ]; then
                    why="exit 0 after a fault in phase '$ph'"
                elif [ "$franks" -ne "$np" ]; then
                    why="only $franks of $np ranks reported an error ($nfail FAILED lines)"
                fi
                ;;
            esac
        fi
        if [ -n "$why" ]; then
            echo "FAIL: $func rank $r call $n (phase ${ph:-?}, exit $rc, ${dt}s): $why"
            sed 's/^/    /' "$out" | tail -40
            fail=1
        else
            echo "ok: $func rank $r call $n (phase ${ph:-?}, exit $rc, ${dt}s): $(grep -m1 FAILED "$out" | cut -c1-160)"
        fi
    done
done
if [ $total -eq 0 ]; then
    echo "FAIL: no call of $func to fail"
    exit 1
fi
[ $fail -eq 0 ] && echo "PASS: $total injected failures of $func, each ended in bounded time"
exit $fail
