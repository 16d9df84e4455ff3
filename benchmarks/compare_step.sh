#!/usr/bin/env bash
# One training step of a model, hyperadapt (benchmarks/<bench>) and the same model in PyTorch
# (benchmarks/pytorch/<script>) back to back, under the same threads and OpenMP wait policy, with the ratio, the
# peak RSS of each side and the threads, libraries and kernels each ran (benchmarks/pytorch/peer_info.py).
# Called by compare_camtl_step.sh and compare_pha_step.sh.
#   usage: benchmarks/compare_step.sh <bench> <pytorch-script> [build-dir] [threads]
#   PYTHON           the python with torch (default the venv of scripts/setup_pytorch_peer.sh)
#   PRECISION=bf16   PyTorch under bf16 autocast (forward + loss); hyperadapt's eigen/cblas cases run fp32
#                    and its bf16 cases bf16 products (onednn_gemm) whatever PRECISION says
#   PEER_SECONDS     PyTorch's timed seconds (default 15); BENCH_FILTER narrows our cases (--benchmark_filter)
#   PEER_COMPILE=1   PyTorch's model under torch.compile (the script's --compile), not eager
# With the shared data (HYPERADAPT_SHARED_DATA), our GLUE-length cases write their batches and PyTorch runs the
# same rows too (benchmarks/pytorch/glue_batches.py: dynamic padding, each batch to its longest row).
#   OMP_WAIT_POLICY  passed through (PASSIVE when unset); OMP_NUM_THREADS = threads on both sides
# DEVICE=cuda compares on the GPU instead: <bench>_cuda (built with -DHYPERADAPT_ENABLE_CUDA=ON) against the
# script's --device cuda.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bench="$1"
script="$2"
build="${3:-$here/../build}"
threads="${4:-2}"
# shellcheck source=benchmarks/peer_env.sh
source "$here/peer_env.sh"  # sets $python
device=()
[[ "${PEER_COMPILE:-0}" == 1 ]] && device+=(--compile)
if [[ "${DEVICE:-cpu}" != cpu ]]; then
  bench="${bench}_${DEVICE}"
  device+=(--device "$DEVICE")
fi
# The benchmarks are not in the default build target (benchmarks/CMakeLists.txt): build this one.
cmake --build "$build" --target "$bench"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
filter=()
[[ -n "${BENCH_FILTER:-}" ]] && filter=(--benchmark_filter="$BENCH_FILTER")
rss=()
[[ -x /usr/bin/time ]] && rss=(/usr/bin/time -f %M -o "$out/ours_rss_kib")
# Our GLUE cases write their batches (benchmarks/models/glue_batches.hpp) for PyTorch to run the same rows.
HYPERADAPT_DUMP_GLUE_BATCHES="$out/glue.json" "${rss[@]}" "$build/benchmarks/$bench" "${filter[@]}" \
  --benchmark_format=json --benchmark_out="$out/ours.json" >/dev/null
"$python" "$here/pytorch/$script" --threads "$threads" --seconds "${PEER_SECONDS:-15}" \
  --precision "${PRECISION:-fp32}" "${device[@]}" > "$out/torch.json"
if [[ -s "$out/glue.json" ]]; then
  "$python" "$here/pytorch/$script" --threads "$threads" --seconds "${PEER_SECONDS:-15}" \
    --precision "${PRECISION:-fp32}" "${device[@]}" --batches "$out/glue.json" > "$out/torch_glue.json"
fi
"$python" "$here/pytorch/peer_info.py" ours "$build/benchmarks/$bench" --build "$build" > "$out/ours_info.json"
if [[ "${DEVICE:-cpu}" == cpu ]]; then
  "$python" "$here/pytorch/peer_info.py" torch --threads "$threads" > "$out/torch_info.json"
else
  "$python" "$here/pytorch/peer_info.py" torch --threads "$threads" --no-probe > "$out/torch_info.json"
fi
"$python" - "$out" "$OMP_WAIT_POLICY" "$here/pytorch" <<'PY'
import json, os, sys
out = sys.argv[1]
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[3])
from peer_info import ours_text, torch_text
ours = json.load(open(os.path.join(out, "ours.json")))["benchmarks"]
t = json.load(open(os.path.join(out, "torch.json")))
tg_file = os.path.join(out, "torch_glue.json")
tg = json.load(open(tg_file)) if os.path.exists(tg_file) else None
def phases(d):
    keys = [k for k in ("forward_ms", "backward_ms", "clip_ms", "adamw_ms") if k in d]
    return " = " + " + ".join(f"{k[:-3]} {d[k]:.1f}" for k in keys) if keys else ""
memory = f"  peak RSS {t['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in t else ""
if "peak_cuda_allocated_mib" in t:
    memory += f", CUDA {t['peak_cuda_allocated_mib']:.0f} MiB allocated"
print(f"OMP_WAIT_POLICY={sys.argv[2]}  pytorch {t['torch']} on {t.get('device', 'cpu')} {t.get('precision', 'fp32')}"
      f"{' (torch.compile)' if t.get('compiled') else ' (eager)'}: "
      f"{t['ms_per_step']:.1f} ms/step ({t['trainable_params']} trainable, {t.get('torch_threads', t['threads'])} threads)"
      f"{phases(t)}{memory}")
for r in ours:
    if r.get("error_occurred"):
        print(f"  {'/'.join(r['name'].split('/')[1:]):6s} hyperadapt skipped: {r.get('error_message', '')}")
        continue
    ms = r["real_time"]
    args = dict(a.split(":", 1) for a in r["name"].split("/")[2:] if ":" in a)
    batches = args.get("batches", "0")
    label = r["name"].split("/")[1] + ("" if batches == "0" else f" batches:{batches}")
    # Synthetic batch: against PyTorch's synthetic batch (ms/step). GLUE batches (1 padded to 128, 2 to the
    # longest, 3 in length groups): real tokens/s against PyTorch on the same rows, padded to each batch's longest.
    if batches == "0":
        ratio = f"ratio {t['ms_per_step'] / ms:.2f}x"
    elif tg is None:
        ratio = "(no PyTorch run on the GLUE batches)"
    else:
        ratio = (f"{r['tokens/s']:.0f} real tokens/s, ratio {r['tokens/s'] / tg['tokens_per_s']:.2f}x "
                 f"(real/computed {r.get('real/computed', 0):.2f})")
    case = r["name"].split("/")[1]  # "cblas", "bf16", "cuda", "cuda-tf32", "cuda-bf16"
    precision = next((p for p in ("bf16", "tf32") if case == p or case.endswith("-" + p)), "fp32")
    print(f"  {label:6s} hyperadapt {ms:7.1f} ms/step ({int(r['trainable'])} trainable, {precision}, "
          f"{args.get('threads', '?')} threads)  {ratio}{phases(r)}")
if tg is not None:
    print(f"  pytorch on the GLUE batches (each padded to its longest, rounded to 8): {tg['ms_per_step']:.1f} ms/step, "
          f"{tg['tokens_per_s']:.0f} real tokens/s, peak RSS {tg.get('peak_rss_mib', 0):.0f} MiB")
if os.path.exists(os.path.join(out, "ours_rss_kib")):
    kib = open(os.path.join(out, "ours_rss_kib")).read().split()[-1]
    print(f"  hyperadapt peak RSS {int(kib) / 1024:.0f} MiB (the whole benchmark process, all its cases)")
print(ours_text(json.load(open(os.path.join(out, "ours_info.json"))), "  "))
print(torch_text(json.load(open(os.path.join(out, "torch_info.json"))), "  "))
PY
