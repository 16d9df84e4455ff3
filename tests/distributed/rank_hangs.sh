#!/usr/bin/env bash
# A rank that hangs in the middle of data-parallel training (tests/tools/rank_hangs.cpp: alive, but it never
# reaches the all-reduce the other rank waits in) must not block the job: the waiting rank's watchdog ends it
# after the collective timeout (3 s here) with a message naming the operation and both ranks, and the launcher
# ends the rest, within 60 s in all. Usage: rank_hangs.sh MPIEXEC DRIVER
set -uo pipefail
mpiexec=$1 driver=$2
start=$(date +%s)
out=$(timeout 90 "$mpiexec" -n 2 --oversubscribe "$driver" 2>&1)
rc=$?
elapsed=$(( $(date +%s) - start ))
echo "$out" | tail -15
echo "rank_hangs.sh: exit code $rc after ${elapsed} s"
fail=0
if [ "$rc" -eq 124 ]; then echo "FAIL: the job hung (killed by timeout after 90 s)"; fail=1; fi
if [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; then echo "FAIL: the job did not fail (exit code $rc)"; fail=1; fi
if [ "$elapsed" -gt 60 ]; then echo "FAIL: the job took ${elapsed} s to end (bound: 60 s)"; fail=1; fi
if ! echo "$out" | grep -q "MPI_Allreduce on rank 0 of 2 has waited [0-9]* s for rank 1"; then
  echo "FAIL: no message names the operation, the waiting rank and the hung one"; fail=1
fi
exit $fail
