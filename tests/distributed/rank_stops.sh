#!/usr/bin/env bash
# A rank that stops taking part in data-parallel training (tests/tools/rank_stops.cpp) must end the whole job
# within 60 s, with an error that names it, never a hang:
#   dies   rank 1 is killed mid-training: the launcher ends the job and names the rank;
#   hangs  rank 1 is alive but never reaches the all-reduce rank 0 waits in: rank 0's watchdog ends it after the
#          collective timeout (3 s here), naming the operation and both ranks, and the launcher ends the rest.
# Usage: rank_stops.sh MPIEXEC DRIVER dies|hangs
set -uo pipefail
mpiexec=$1 driver=$2 mode=$3
case "$mode" in
  dies) said="rank 1|rank: 1" ;;
  hangs) said="MPI_Allreduce on rank 0 of 2 has waited [0-9]+ s for rank 1" ;;
  *) echo "usage: rank_stops.sh MPIEXEC DRIVER dies|hangs" >&2; exit 2 ;;
esac
start=$(date +%s)
out=$(timeout 90 "$mpiexec" -n 2 --oversubscribe "$driver" "$mode" 2>&1)
rc=$?
elapsed=$(( $(date +%s) - start ))
echo "$out" | tail -15
echo "rank_stops.sh $mode: exit code $rc after ${elapsed} s"
fail=0
if [ "$rc" -eq 124 ]; then echo "FAIL: the job hung (killed by timeout after 90 s)"; fail=1; fi
if [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; then echo "FAIL: the job did not fail (exit code $rc)"; fail=1; fi
if [ "$elapsed" -gt 60 ]; then echo "FAIL: the job took ${elapsed} s to fail (bound: 60 s)"; fail=1; fi
if ! echo "$out" | grep -Eq "$said"; then echo "FAIL: no message matches '$said'"; fail=1; fi
exit $fail
