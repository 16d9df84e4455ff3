#!/usr/bin/env bash
# Data-parallel over processes against threads (issue 16): the MiniLM CA-MTL step (GLUE lengths in length
# groups, global batch 32; benchmarks/distributed/bench_data_parallel_step.cpp) as 1 process x 1 thread,
# 1 process x 2 threads and 2 MPI ranks x 1 thread (the all-reduce after backward, then overlapped with it),
# alternated `repeats` times on a quiet machine. Prints each
# run's line and, per round, the efficiency the issue bounds: tokens/s of 2 ranks x 1 thread over the better
# single-process configuration (≥ 0.9 wanted).
#   usage: benchmarks/compare_data_parallel.sh [build-dir] [repeats] [steps]
# Every run is launched by mpiexec with --bind-to none: Open MPI binds a rank to one core by default, which
# would put both threads of the 2-thread process on one core. OMP_WAIT_POLICY is PASSIVE unless set;
# OPENBLAS_CORETYPE is unset for this command only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${1:-$root/build}"
repeats="${2:-3}"
steps="${3:-12}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
unset OPENBLAS_CORETYPE
# A CPU that OpenBLAS 0.3.21 does not recognise gets its generic (Prescott, SSE3) kernels: name the kernels
# to use instead, e.g. BENCH_OPENBLAS_CORETYPE=SkylakeX (docs/benchmarks.md says which each figure ran).
[[ -n "${BENCH_OPENBLAS_CORETYPE:-}" ]] && export OPENBLAS_CORETYPE="$BENCH_OPENBLAS_CORETYPE"
# Open MPI refuses root unless told; CI containers and this VM run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cmake --build "$build" --target bench_data_parallel_step
bench="$build/benchmarks/bench_data_parallel_step"
[[ -x "$bench" ]] || { echo "compare_data_parallel.sh: $bench is missing (needs Open MPI: libopenmpi-dev)" >&2; exit 1; }
rate() { sed -n 's/.*steps, \([0-9.]*\) real tokens\/s.*/\1/p'; }
for ((r = 1; r <= repeats; ++r)); do
  one=$(OMP_NUM_THREADS=1 mpiexec -n 1 --bind-to none "$bench" --threads 1 --steps "$steps")
  two=$(OMP_NUM_THREADS=2 mpiexec -n 1 --bind-to none "$bench" --threads 2 --steps "$steps")
  after=$(OMP_NUM_THREADS=1 mpiexec -n 2 --bind-to none "$bench" --threads 1 --steps "$steps" --overlap 0)
  ranks=$(OMP_NUM_THREADS=1 mpiexec -n 2 --bind-to none "$bench" --threads 1 --steps "$steps" --overlap 1)
  printf '%s\n%s\n%s\n%s\n' "$one" "$two" "$after" "$ranks"
  python3 - "$(rate <<<"$one")" "$(rate <<<"$two")" "$(rate <<<"$after")" "$(rate <<<"$ranks")" <<'PY'
import sys
one, two, after, ranks = map(float, sys.argv[1:])
best = max(one, two)
print(f"round: 2 ranks x 1 thread / best single process = {ranks / best:.3f} with the all-reduce overlapped, "
      f"{after / best:.3f} after backward (2 threads / 1 thread = {two / one:.2f}, 2 ranks / 1 thread = {ranks / one:.2f})")
PY
done
