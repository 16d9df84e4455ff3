#!/usr/bin/env bash
# Runs hyperadapt's encoder-layer benchmark (bench_encoder_layer: fp32 on Eigen's and OpenBLAS's GEMMs, bf16
# products on oneDNN where the build has it) and PyTorch's
# best on the same post-LN BERT layer (shared/peer/encoder_layer_best.py: plain ops, SDPA and the fused
# nn.TransformerEncoderLayer path, fp32 and bf16 autocast) back to back, with the same thread count, and prints
# one table: tokens/s for hidden 384 and 768, inference and training step, and the ratio hyperadapt / PyTorch's
# best variant for fp32 and for bf16, with which variant won. Before the table: the threads, libraries and
# kernels each side ran (benchmarks/pytorch/peer_info.py).
#   usage: benchmarks/compare_pytorch.sh [build-dir] [threads] [seconds]
#     seconds   per PyTorch case (default 3); bench_encoder_layer sets its own minimum time (2 s per case)
#   PYTHON                the python with torch (default the venv of scripts/setup_pytorch_peer.sh)
#   HYPERADAPT_SHARED     the shared folder holding peer/encoder_layer_best.py (default <repo>/../shared)
#   HIDDEN="384 768"      the hidden sizes; BENCH_FILTER (default cblas|eigen|bf16) picks our providers
#   PEER_COMPILE=1        adds PyTorch's torch.compile'd training variant (slow to compile)
# OMP_NUM_THREADS = threads and OMP_WAIT_POLICY (PASSIVE unless set) on both sides; OPENBLAS_CORETYPE unset for
# this command only (benchmarks/peer_env.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${1:-$root/build}"
threads="${2:-2}"
seconds="${3:-3}"
hidden="${HIDDEN:-384 768}"
shared="${HYPERADAPT_SHARED:-$root/../shared}"
peer="$shared/peer/encoder_layer_best.py"
# shellcheck source=benchmarks/peer_env.sh
source "$here/peer_env.sh"  # sets $python
if [[ ! -f "$peer" ]]; then
  echo "compare_pytorch.sh: no $peer (set HYPERADAPT_SHARED to the shared folder)" >&2
  exit 1
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

bench="$build/benchmarks/bench_encoder_layer"
# The benchmarks are not in the default build target (benchmarks/CMakeLists.txt): build this one.
[[ -f "$build/CMakeCache.txt" ]] && cmake --build "$build" --target bench_encoder_layer
if [[ -x "$bench" ]]; then
  filter="BM_encoder_(forward|train)_(${BENCH_FILTER:-cblas|eigen|bf16})/hidden:($(tr ' ' '|' <<<"$hidden"))/"
  "$bench" --benchmark_filter="$filter" --benchmark_format=json --benchmark_out="$out/ours.json" >/dev/null
  "$python" "$here/pytorch/peer_info.py" ours "$bench" --build "$build" > "$out/ours_info.json"
else
  echo "compare_pytorch.sh: $bench is missing (configure with -DHYPERADAPT_BUILD_BENCHMARKS=ON): PyTorch side only" >&2
fi
compile=()
[[ "${PEER_COMPILE:-0}" == 1 ]] && compile=(--compile)
# shellcheck disable=SC2086  # $hidden is a list
"$python" "$peer" --threads "$threads" --seconds "$seconds" --hidden $hidden "${compile[@]}" > "$out/torch.jsonl"
"$python" "$here/pytorch/peer_info.py" torch --threads "$threads" > "$out/torch_info.json"

"$python" - "$out" "$threads" "$here/pytorch" <<'PY'
import datetime, json, os, platform, sys
out, threads = sys.argv[1], int(sys.argv[2])
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, sys.argv[3])
from peer_info import ours_text, torch_text

def load(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None

model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
             platform.processor() or platform.machine())
tinfo = load("torch_info.json")
print(f"date {datetime.date.today()}  machine {model}  threads {threads}  "
      f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
ours = (load("ours.json") or {}).get("benchmarks", [])
if load("ours_info.json"):
    print(ours_text(load("ours_info.json")))
print(torch_text(tinfo))

# ours: BM_encoder_<forward|train>_<provider>/hidden:H/threads:T/...
rows = {}
for r in ours:
    if r.get("run_type", "iteration") != "iteration":
        continue
    head, *args = r["name"].split("/")
    kv = dict(a.split(":", 1) for a in args if ":" in a)
    mode = "train" if "_train_" in head else "infer"
    rows.setdefault((mode, int(kv["hidden"])), []).append((head.rsplit("_", 1)[1], int(kv.get("threads", 0)),
                                                           r["tokens/s"]))
if ours and any(t != threads for v in rows.values() for _, t, _ in v):
    print(f"NOTE: bench_encoder_layer ran with {sorted({t for v in rows.values() for _, t, _ in v})} threads "
          f"(fixed in its source), PyTorch with {threads}")

def variant(case):
    if "TransformerEncoderLayer" in case:
        return "fused"
    if "compiled" in case:
        return "sdpa+compile"
    return "sdpa" if "sdpa=True" in case else "plain"

peer = {}
for t in map(json.loads, open(os.path.join(out, "torch.jsonl"))):
    prec = "bf16" if "bf16=True" in t["case"] else "fp32"
    peer.setdefault((t["case"].split()[0], t["hidden"], prec), []).append((variant(t["case"]), t["tokens_per_s"]))

def best(key):
    v = peer.get(key)
    return max(v, key=lambda x: x[1]) if v else None

hiddens = sorted({h for _, h, _ in peer})
print()
print(f"{'case':17s} {'hyperadapt':>24s} | {'PyTorch best fp32':>26s} {'ratio':>6s} | "
      f"{'PyTorch best bf16 autocast':>26s} {'ratio':>6s}")
for mode in ("infer", "train"):
    for h in hiddens:
        b32, b16 = best((mode, h, "fp32")), best((mode, h, "bf16"))
        for provider, t, tps in rows.get((mode, h), [(None, None, None)]):
            us = f"{provider} {t} thr {tps:10.0f}" if provider else "(not run)"
            cells = []
            for b in (b32, b16):
                if b is None:
                    cells.append(f"{'-':>26s} {'':>6s}")
                else:
                    ratio = f"{tps / b[1]:5.2f}x" if tps else ""
                    cells.append(f"{b[1]:10.0f} {'(' + b[0] + ')':<15s} {ratio:>6s}")
            print(f"{mode:5s} hidden {h:4d} {us:>24s} | {cells[0]} | {cells[1]}")
print("ratio = hyperadapt tokens/s / PyTorch's best variant's (> 1: hyperadapt faster); hyperadapt's eigen and "
      "cblas rows run fp32, its bf16 rows bf16 products (onednn_gemm: fp32 accumulation, everything else fp32); "
      "compare like with like: fp32 rows with the fp32 column, bf16 rows with the bf16 autocast column")
print()
print("PyTorch variants, tokens/s:")
for mode in ("infer", "train"):
    for h in hiddens:
        parts = [f"{v} {p} {tps:.0f}" for p in ("fp32", "bf16") for v, tps in peer.get((mode, h, p), [])]
        print(f"  {mode:5s} hidden {h:4d}: " + ", ".join(parts))
PY
