#!/usr/bin/env bash
# Peak resident memory of one MiniLM CA-MTL and one PHA training step, hyperadapt against PyTorch (issue 11's
# "peak memory of those steps <= 0.6x PyTorch's"): every case in a process of its own on each side, so that
# no case inherits another's allocations, on the synthetic batch (32 x 128, every row 128 long) and on the six
# GLUE tasks' real rows (ours in length groups, PyTorch each batch padded to its longest row rounded to 8: the
# same rows; benchmarks/models/glue_batches.hpp, benchmarks/pytorch/glue_batches.py). Each side runs 24 steps
# (PyTorch 5 more first, untimed), so each of the 24 GLUE batches once: the peak of a variable-length run
# depends on which shapes it has met.
#   usage: benchmarks/compare_memory.sh [build-dir] [threads]
#   PRECISION=fp32|bf16   ours: the cblas (fp32) or bf16 case; PyTorch: fp32 or bf16 autocast (default fp32)
#   PYTHON                the python with torch (default the venv of scripts/setup_pytorch_peer.sh)
# Peak RSS is the whole process's (getrusage's ru_maxrss on both sides: GNU time's %M for ours), so it holds
# each side's libraries, the model, the optimizer state, the data the benchmark tokenized and the activations.
# PyTorch's RSS right after `import torch` is printed beside it: the part no model size or batch changes.
# Memory does not depend on the machine's speed: this may run beside other work (not beside a benchmark).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
threads="${2:-2}"
precision="${PRECISION:-fp32}"
# shellcheck source=benchmarks/peer_env.sh
source "$here/peer_env.sh"  # sets $python
[[ -x /usr/bin/time ]] || { echo "compare_memory.sh: needs GNU time (/usr/bin/time: apt-get install time)" >&2; exit 2; }
cmake --build "$build" --target bench_camtl_step bench_pha_step
ours_case=cblas
[[ "$precision" == bf16 ]] && ours_case=bf16
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
export OMP_NUM_THREADS="$threads" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
base="$("$python" -c 'import resource, torch; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)')"
printf 'date %s  %s threads  precision %s  PyTorch after import: %.0f MiB\n' "$(date +%F)" "$threads" "$precision" "$base"
printf '%-6s %-26s %12s %12s %8s\n' step batch "ours MiB" "PyTorch MiB" ratio
for model in camtl pha; do
  for batches in 0 3; do
    # batches 0: the synthetic batch; 3: the GLUE rows in length groups (ours), dumped for PyTorch to run too.
    HYPERADAPT_BENCH_ITERATIONS=24 HYPERADAPT_DUMP_GLUE_BATCHES="$out/glue.json" /usr/bin/time -f %M -o "$out/rss" \
      "$build/benchmarks/bench_${model}_step" \
      --benchmark_filter="^${model}_step/${ours_case}/threads:${threads}/batches:${batches}/" >/dev/null 2>"$out/err" ||
      { cat "$out/err" >&2; exit 1; }
    ours_kib="$(tail -n 1 "$out/rss")"
    peer=(--threads "$threads" --seconds 0 --min-steps 24 --precision "$precision")
    label="synthetic 32 x 128"
    if [[ "$batches" == 3 ]]; then
      [[ -s "$out/glue.json" ]] || { echo "compare_memory.sh: no GLUE batches (set HYPERADAPT_SHARED_DATA)" >&2; exit 2; }
      peer+=(--batches "$out/glue.json")
      label="GLUE rows (length groups)"
    fi
    torch_mib="$("$python" "$here/pytorch/${model}_step.py" "${peer[@]}" |
      "$python" -c 'import json, sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["peak_rss_mib"])')"
    "$python" - "$model" "$label" "$ours_kib" "$torch_mib" <<'PY'
import sys
model, label, ours_kib, torch_mib = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
print(f"{model:6s} {label:26s} {ours_kib / 1024:12.0f} {torch_mib:12.0f} {ours_kib / 1024 / torch_mib:7.2f}x")
PY
    rm -f "$out/glue.json"
  done
done
