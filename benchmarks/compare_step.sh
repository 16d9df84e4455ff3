#!/usr/bin/env bash
# One training step of a model, hyperadapt (benchmarks/<bench>) and the same model in PyTorch
# (benchmarks/pytorch/<script>) back to back, under the same OpenMP wait policy, with the ratio. Called by
# compare_camtl_step.sh and compare_pha_step.sh.
#   usage: benchmarks/compare_step.sh <bench> <pytorch-script> [build-dir] [threads]   (OMP_WAIT_POLICY passes)
# DEVICE=cuda compares on the GPU instead: <bench>_cuda (built with -DHYPERADAPT_ENABLE_CUDA=ON) against the
# script's --device cuda.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bench="$1"
script="$2"
build="${3:-$here/../build}"
threads="${4:-2}"
python="${PYTHON:-/usr/bin/python3}"
device=()
if [[ "${DEVICE:-cpu}" != cpu ]]; then
  bench="${bench}_${DEVICE}"
  device=(--device "$DEVICE")
fi
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMP_NUM_THREADS="$threads"
if [[ -d /usr/lib/x86_64-linux-gnu/openblas-openmp ]]; then
  export LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$build/benchmarks/$bench" --benchmark_format=json --benchmark_out="$out/ours.json" >/dev/null
"$python" "$here/pytorch/$script" --threads "$threads" --seconds 15 "${device[@]}" > "$out/torch.json"
"$python" - "$out/ours.json" "$out/torch.json" "${OMP_WAIT_POLICY:-default}" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))["benchmarks"]
t = json.load(open(sys.argv[2]))
def phases(d):
    keys = [k for k in ("forward_ms", "backward_ms", "clip_ms", "adamw_ms") if k in d]
    return " = " + " + ".join(f"{k[:-3]} {d[k]:.1f}" for k in keys) if keys else ""
print(f"OMP_WAIT_POLICY={sys.argv[3]}  pytorch {t['torch']} on {t.get('device', 'cpu')}: {t['ms_per_step']:.1f} ms/step ({t['trainable_params']} trainable){phases(t)}")
for r in ours:
    ms = r["real_time"]
    print(f"  {r['name'].split('/')[1]:6s} hyperadapt {ms:7.1f} ms/step ({int(r['trainable'])} trainable)  ratio {t['ms_per_step'] / ms:.2f}x{phases(r)}")
PY
