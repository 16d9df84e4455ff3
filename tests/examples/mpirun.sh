#!/usr/bin/env bash
# The recipes under an MPI launcher (issue 16): `mpirun -np 2 02_camtl_glue` and `mpirun -np 2 03_pha_fewshot`
# train data-parallel on their built-in defaults, --batch being the global batch. Rank 0 alone prints the report
# and appends --json (one record per run, "processes": 2); the checkpoints a 2-rank run writes (rank 0 only)
# resume on one process; a batch the ranks do not divide fails on every rank, each naming itself, and the job
# ends within 60 s rather than hang.
#   usage: mpirun.sh MPIEXEC PATH/02_camtl_glue PATH/03_pha_fewshot WORK_DIR
set -uo pipefail
mpiexec="$1" b2="$2" b3="$3" work="$4"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
run2() { timeout 120 "$mpiexec" -n 2 --oversubscribe "$@"; }
failed=0

# CA-MTL with MT-Uncertainty (the default), checkpoints every 10 steps.
out="$(run2 "$b2" --threads 1 --steps 20 --checkpoint-every 10 --out camtl --json camtl.jsonl 2>/dev/null)" ||
  { echo "FAIL: mpirun -n 2 02_camtl_glue exited with $?"; echo "$out" | tail -20; exit 1; }
[ "$(grep -c '^camtl (mtu):' <<<"$out")" -eq 1 ] || { echo "FAIL: the report is not printed exactly once"; echo "$out"; failed=1; }
[ "$(wc -l < camtl.jsonl)" -eq 1 ] || { echo "FAIL: --json holds $(wc -l < camtl.jsonl) records, not 1"; failed=1; }
grep -q '"processes":2' camtl.jsonl || { echo "FAIL: the record does not say 2 processes"; failed=1; }
[ "$(grep -c '"split":"train"' camtl/metrics.jsonl)" -eq 20 ] ||
  { echo "FAIL: metrics.jsonl does not hold one train record per step (rank 0 alone writes it)"; failed=1; }
# The 2-rank run's step-10 checkpoint resumes on one process.
rm camtl/checkpoints/checkpoint-0000000020.safetensors camtl/metrics.jsonl
resumed="$(OMP_NUM_THREADS=1 "$b2" --threads 1 --steps 20 --checkpoint-every 10 --out camtl --resume --quiet 2>&1)" ||
  { echo "FAIL: one process could not resume the 2-rank run's checkpoint: $resumed"; failed=1; }
grep -q "resumed from the checkpoint of step 10" <<<"$resumed" || { echo "FAIL: did not resume: $resumed"; failed=1; }

# PHA's built-in default: pretraining, PHA on two source tasks, few-shot transfer (three arms, three records).
out="$(run2 "$b3" --threads 1 --steps 10 --quiet --json pha.jsonl 2>&1)" ||
  { echo "FAIL: mpirun -n 2 03_pha_fewshot exited with $?"; echo "$out" | tail -20; exit 1; }
[ "$(grep -c '^\[3\] few-shot transfer' <<<"$out")" -eq 1 ] || { echo "FAIL: the PHA report is not printed exactly once"; failed=1; }
[ "$(wc -l < pha.jsonl)" -eq 3 ] || { echo "FAIL: pha.jsonl holds $(wc -l < pha.jsonl) records, not 3"; failed=1; }

# A global batch of 7 over 2 ranks: refused on each rank, naming it, and the job ends.
start=$(date +%s)
bad="$(run2 "$b2" --threads 1 --steps 5 --batch 7 2>&1)"
rc=$? elapsed=$(( $(date +%s) - start ))
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { echo "FAIL: a batch of 7 on 2 ranks ended with exit code $rc"; failed=1; }
[ "$elapsed" -le 60 ] || { echo "FAIL: the job took $elapsed s to end (bound: 60 s)"; failed=1; }
grep -q "02_camtl_glue (rank [01] of 2): .*do not divide the global batch of 7" <<<"$bad" ||
  { echo "FAIL: no message names a rank and the batch:"; echo "$bad" | tail -20; failed=1; }

[ "$failed" -eq 0 ] && echo "mpirun.sh: the recipes train on 2 ranks; rank 0 reports, records and checkpoints once; a bad batch ends the job in ${elapsed} s"
exit "$failed"
