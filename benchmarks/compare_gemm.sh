#!/usr/bin/env bash
# The encoder's matrix products, ours against PyTorch's, in one run: bench_gemm's hyperadapt_gemm cases (fp32 on
# OpenBLAS, bf16 on oneDNN with both operands rounded per call) and its measured one-core ceilings (independent
# chains of 512-bit FMAs, of vdpbf16ps), then benchmarks/pytorch/gemm.py on the same shapes (fp32 on MKL; bf16
# autocast on fp32 operands; bf16 tensors). Prints GFLOP/s, % of the ceiling x threads and ours / PyTorch's.
# What it answers: how much of a layer-level ratio the products themselves can give (docs/benchmarks.md).
#   usage: benchmarks/compare_gemm.sh [build-dir] [threads] [seconds per PyTorch timing]
# OMP_NUM_THREADS = threads and OMP_WAIT_POLICY (PASSIVE unless set) on both sides; OPENBLAS_CORETYPE unset for
# this command only (benchmarks/peer_env.sh); run it on a quiet machine.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${1:-$root/build}"
threads="${2:-2}"
seconds="${3:-1}"
# shellcheck source=benchmarks/peer_env.sh
source "$here/peer_env.sh"  # sets $python
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

[[ -f "$build/CMakeCache.txt" ]] && cmake --build "$build" --target bench_gemm
"$build/benchmarks/bench_gemm" --benchmark_filter='peak_one_core|hyperadapt_gemm/(cblas|onednn-bf16)/m:2048/' \
  --benchmark_format=json --benchmark_out="$out/ours.json" >/dev/null
"$python" "$here/pytorch/gemm.py" --threads "$threads" --seconds "$seconds" > "$out/torch.jsonl"
"$python" "$here/pytorch/peer_info.py" torch --threads "$threads" > "$out/torch_info.json"

"$python" - "$out" "$threads" "$here/pytorch" <<'PY'
import json, os, sys
out, threads = sys.argv[1], int(sys.argv[2])
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[3])
from peer_info import torch_text

model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"machine {model}  threads {threads}  OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
print(torch_text(json.load(open(os.path.join(out, "torch_info.json")))))
ours, peak = {}, {}
for r in json.load(open(os.path.join(out, "ours.json")))["benchmarks"]:
    if r.get("run_type", "iteration") != "iteration":
        continue
    name = r["name"]
    if name.startswith("BM_fma_peak"):
        peak["fp32"] = r["GFLOP/s"] * threads
    elif name.startswith("BM_bf16_dot_peak"):
        peak["bf16"] = r["GFLOP/s"] * threads
    else:  # hyperadapt_gemm/<provider>/m:M/n:N/k:K/threads:T/...
        parts = name.split("/")
        kv = dict(p.split(":", 1) for p in parts[2:] if ":" in p)
        ours[(parts[1], int(kv["m"]), int(kv["n"]), int(kv["k"]))] = r["GFLOP/s"]
peer = {}
for t in map(json.loads, open(os.path.join(out, "torch.jsonl"))):
    peer[(t["case"], t["m"], t["n"], t["k"])] = t["gflops"]
print(f"measured ceilings x {threads} threads: fp32 FMA {peak.get('fp32', 0):.0f}, bf16 dot {peak.get('bf16', 0):.0f} GFLOP/s")
print()
print(f"{'m x n x k':>16s} | {'ours fp32':>9s} {'%':>4s} {'torch fp32':>10s} {'%':>4s} {'ratio':>6s} | "
      f"{'ours bf16':>9s} {'%':>4s} {'autocast':>9s} {'ratio':>6s} {'bf16 tensors':>12s} {'%':>4s} {'ratio':>6s}")
shapes = sorted({(m, n, k) for (_, m, n, k) in ours}, key=lambda s: (s[2], s[1]))
for m, n, k in shapes:
    o32, o16 = ours.get(("cblas", m, n, k)), ours.get(("onednn-bf16", m, n, k))
    t32, tac, t16 = (peer.get((c, m, n, k)) for c in ("fp32", "bf16 autocast", "bf16 tensors"))
    pct = lambda v, p: f"{100 * v / peak[p]:3.0f}%" if v and peak.get(p) else "   -"
    num = lambda v: f"{v:.0f}" if v else "-"
    ratio = lambda a, b: f"{a / b:5.2f}x" if a and b else "-"
    print(f"{m:>5d}x{n:>4d}x{k:>4d} | {num(o32):>9s} {pct(o32, 'fp32')} {num(t32):>10s} {pct(t32, 'fp32')} "
          f"{ratio(o32, t32):>6s} | {num(o16):>9s} {pct(o16, 'bf16')} {num(tac):>9s} {ratio(o16, tac):>6s} "
          f"{num(t16):>12s} {pct(t16, 'bf16')} {ratio(o16, t16):>6s}")
print("GFLOP/s (2 m n k per product, best of the timings); % of the measured ceiling x threads; ratio = ours / "
      "PyTorch's. ours bf16 rounds both operands on every call; PyTorch's autocast casts both on every call, its "
      "bf16 tensors are cast already")
PY
