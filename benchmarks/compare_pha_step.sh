#!/usr/bin/env bash
# One PHA training step (MiniLM shape, batch 32, L 128, 2 threads): hyperadapt (bench_pha_step) and the
# same model in PyTorch (pytorch/pha_step.py) back to back, under the same OpenMP wait policy, with the ratio.
#   usage: benchmarks/compare_pha_step.sh [build-dir] [threads]      (OMP_WAIT_POLICY is passed through)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
threads="${2:-2}"
python="${PYTHON:-/usr/bin/python3}"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMP_NUM_THREADS="$threads"
if [[ -d /usr/lib/x86_64-linux-gnu/openblas-openmp ]]; then
  export LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$build/benchmarks/bench_pha_step" --benchmark_format=json --benchmark_out="$out/ours.json" >/dev/null
"$python" "$here/pytorch/pha_step.py" --threads "$threads" --seconds 15 > "$out/torch.json"
"$python" - "$out/ours.json" "$out/torch.json" "${OMP_WAIT_POLICY:-default}" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))["benchmarks"]
t = json.load(open(sys.argv[2]))
print(f"OMP_WAIT_POLICY={sys.argv[3]}  pytorch {t['torch']}: {t['ms_per_step']:.0f} ms/step ({t['trainable_params']} trainable)")
for r in ours:
    ms = r["real_time"]
    print(f"  {r['name'].split('/')[1]:6s} hyperadapt {ms:7.0f} ms/step ({int(r['trainable'])} trainable)  ratio {t['ms_per_step'] / ms:.2f}x")
PY
