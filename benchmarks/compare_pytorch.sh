#!/usr/bin/env bash
# Runs hyperadapt's encoder-layer benchmark and the same layer in PyTorch back to back, with the same
# thread count, and prints tokens/s and the ratio hyperadapt / PyTorch for each case.
#   usage: benchmarks/compare_pytorch.sh [build-dir] [threads]
# Needs a build with benchmarks (bench_encoder_layer) and a Python with torch (PYTHON, default the
# system python3 with Debian's python3-torch). OPENBLAS_CORETYPE is unset for this command only, so
# OpenBLAS picks its AVX-512 kernels on both sides.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
threads="${2:-2}"
python="${PYTHON:-/usr/bin/python3}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMP_NUM_THREADS="$threads"
# PyTorch reaches BLAS through libblas.so.3: point it at the OpenMP OpenBLAS, as our side uses.
if [[ -d /usr/lib/x86_64-linux-gnu/openblas-openmp ]]; then
  export LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

"$build/benchmarks/bench_encoder_layer" --benchmark_filter='cblas|eigen' --benchmark_format=json \
  --benchmark_out="$out/ours.json" --benchmark_min_time=2 >/dev/null
"$python" "$here/pytorch/encoder_layer.py" --threads "$threads" > "$out/torch.jsonl"

"$python" - "$out/ours.json" "$out/torch.jsonl" <<'PY'
import json, sys, platform, datetime
ours = json.load(open(sys.argv[1]))["benchmarks"]
torch_rows = [json.loads(l) for l in open(sys.argv[2])]
print(f"date {datetime.date.today()}  machine {platform.processor() or platform.machine()}  torch {torch_rows[0]['torch']}")
print(f"{'case':34s} {'hyperadapt tok/s':>17s} {'pytorch tok/s':>14s} {'ratio':>7s}")
for r in ours:
    name = r["name"]  # BM_encoder_<mode>_<provider>/hidden:H/threads:T/...
    mode = "train" if "_train_" in name else "forward"
    provider = name.split("/")[0].rsplit("_", 1)[1]
    hidden = int(name.split("hidden:")[1].split("/")[0])
    t = next(x for x in torch_rows if x["hidden"] == hidden and x["mode"] == mode)
    ratio = r["tokens/s"] / t["tokens_per_s"]
    print(f"{mode:8s} hidden {hidden:4d} gemm={provider:6s}   {r['tokens/s']:17.0f} {t['tokens_per_s']:14.0f} {ratio:6.2f}x")
PY
