#!/usr/bin/env bash
# The CA-MTL recipe itself under mpirun (issue 16): 02_camtl_glue on all-MiniLM-L6-v2 and the six GLUE tasks
# (seq-len 128 in length groups, global batch 32, the real recipe's lr and heads), `steps` steps, as 1 process x 2
# threads and as 2 MPI ranks x 1 thread, for MT-Uncertainty (whose scoring forward over the T x b candidates is
# shared out among the ranks and gathered) and for size-proportional sampling (no scoring), alternated `repeats`
# times on a quiet machine. The dev sets are cut to 64 examples per task so that the final evaluation (sharded
# too) does not dominate. Prints, per run, the trainer's wall time and real tokens per second, and per round the
# ratio 2 ranks / 2 threads.
#   usage: benchmarks/compare_recipe_ranks.sh [build-dir] [repeats] [steps]    (MODEL, DATA override the inputs)
# Every run is launched by mpiexec with --bind-to none (see compare_data_parallel.sh); OMP_WAIT_POLICY is PASSIVE
# unless set; OPENBLAS_CORETYPE is unset for this command only (BENCH_OPENBLAS_CORETYPE names kernels).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${1:-$root/build}"
repeats="${2:-2}"
steps="${3:-12}"
model="${MODEL:-$root/.deps/models/all-MiniLM-L6-v2}"
data="${DATA:-$root/../shared/data}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
unset OPENBLAS_CORETYPE
[[ -n "${BENCH_OPENBLAS_CORETYPE:-}" ]] && export OPENBLAS_CORETYPE="$BENCH_OPENBLAS_CORETYPE"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cmake --build "$build" --target 02_camtl_glue
recipe="$build/examples/02_camtl_glue"
[[ -d "$model" && -d "$data/glue" ]] || { echo "compare_recipe_ranks.sh: needs $model (scripts/fetch_model.sh) and $data/glue" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
common=(--checkpoint "$model" --data "$data" --tasks rte,mrpc,stsb,cola,sst2,wnli --seq-len 128 --batch 32
        --steps "$steps" --eval-every 0 --dev-per-task 64 --train-per-task 1000 --head-input mean --model camtl
        --lr 5e-4 --seed 1 --quiet)
measure() {  # measure LABEL RANKS THREADS SAMPLER -> "LABEL: S s, T real tokens/s"
  local label=$1 ranks=$2 threads=$3 sampler=$4 out="$work/$1.jsonl"
  rm -f "$out"
  OMP_NUM_THREADS=$threads mpiexec -n "$ranks" --bind-to none "$recipe" "${common[@]}" --sampler "$sampler" \
    --threads "$threads" --json "$out" >/dev/null
  python3 - "$label" "$out" <<'PY'
import json, sys
r = json.loads(open(sys.argv[2]).readline())
print(f"{sys.argv[1]}: {r['seconds']:.1f} s, {r['real_tokens'] / r['seconds']:.0f} real tokens/s, processes {r['processes']}")
PY
}
for ((k = 1; k <= repeats; ++k)); do
  for sampler in mtu proportional; do
    a=$(measure "$sampler-1x2" 1 2 "$sampler")
    b=$(measure "$sampler-2x1" 2 1 "$sampler")
    printf '%s\n%s\n' "$a" "$b"
    python3 - "$a" "$b" <<'PY'
import re, sys
s = [float(re.search(r": ([0-9.]+) s", x).group(1)) for x in sys.argv[1:]]
print(f"round: {sys.argv[1].split(':')[0].split('-')[0]}: 2 ranks x 1 thread / 1 process x 2 threads, speed = {s[0] / s[1]:.3f}")
PY
  done
done
