#!/usr/bin/env bash
# A rank killed in the middle of data-parallel training (tests/tools/rank_dies.cpp) must end the whole job
# within 60 s, with an error that names the rank, never a hang. Usage: rank_dies.sh MPIEXEC DRIVER
set -uo pipefail
mpiexec=$1 driver=$2
start=$(date +%s)
out=$(timeout 90 "$mpiexec" -n 2 --oversubscribe "$driver" 2>&1)
rc=$?
elapsed=$(( $(date +%s) - start ))
echo "$out" | tail -15
echo "rank_dies.sh: exit code $rc after ${elapsed} s"
fail=0
if [ "$rc" -eq 124 ]; then echo "FAIL: the job hung (killed by timeout after 90 s)"; fail=1; fi
if [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; then echo "FAIL: the job did not fail (exit code $rc)"; fail=1; fi
if [ "$elapsed" -gt 60 ]; then echo "FAIL: the job took ${elapsed} s to fail (bound: 60 s)"; fail=1; fi
if ! echo "$out" | grep -Eq "rank 1|rank: 1"; then echo "FAIL: no message names rank 1"; fail=1; fi
exit $fail
