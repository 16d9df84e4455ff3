#!/usr/bin/env bash
# Inference, text in and predictions out, hyperadapt's predictor (benchmarks/serve/bench_predictor.cpp) and the
# same model in PyTorch (benchmarks/pytorch/predict.py: HF tokenizers, torch.inference_mode(), dynamic padding)
# back to back under the same threads, on SST-2's dev sentences (real GLUE lengths): batch 1 latency and batch
# 32 throughput, fp32 and bf16; then `hyperadapt serve`'s requests/s at 1, 8 and 32 concurrent clients (one
# sentence per request, tests/examples/server_clients.py --bench).
# The model: all-MiniLM-L6-v2 with an SST-2 head, one training step of 02_camtl_glue --model mtl (kind
# multitask_bert, the model both sides can run), saved with --save-model into a temporary directory.
#   usage: benchmarks/compare_predict.sh [build-dir] [threads] [seconds]
#   PYTHON, HYPERADAPT_PEER_VENV, OMP_WAIT_POLICY: as benchmarks/peer_env.sh; HYPERADAPT_SHARED_DATA: the data
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${1:-$root/build}"
threads="${2:-2}"
seconds="${3:-5}"
data="${HYPERADAPT_SHARED_DATA:-$root/../shared/data}"
model="${HYPERADAPT_MODEL_DIR:-$root/.deps/models/all-MiniLM-L6-v2}"
# shellcheck source=benchmarks/peer_env.sh
source "$here/peer_env.sh"  # sets $python
"$python" -c 'import tokenizers' 2>/dev/null || { echo "compare_predict.sh: $python has no tokenizers (scripts/setup_pytorch_peer.sh installs it)" >&2; exit 1; }
# The benchmarks are not in the default build target (benchmarks/CMakeLists.txt): build what runs here.
cmake --build "$build" --target bench_predictor 02_camtl_glue hyperadapt_tool
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

"$build/examples/02_camtl_glue" --checkpoint "$model" --data "$data" --tasks sst2 --model mtl --train-per-task 64 \
  --dev-per-task 32 --seq-len 128 --steps 1 --head-input mean --quiet --threads "$threads" --save-model "$out/model" >/dev/null
tail -n +2 "$data/glue/SST-2/dev.tsv" | cut -f1 >"$out/sentences.txt"
head -64 "$out/sentences.txt" >"$out/check.txt"
"$build/examples/hyperadapt" predict --model "$out/model" --task sst2 --input "$out/check.txt" --format text --output "$out/check.jsonl"

echo "== $(nproc) CPUs; $threads threads each side; OMP_WAIT_POLICY=$OMP_WAIT_POLICY; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
HYPERADAPT_PREDICT_MODEL="$out/model" HYPERADAPT_PREDICT_TEXTS="$out/sentences.txt" \
  "$build/benchmarks/bench_predictor" --benchmark_format=json --benchmark_out="$out/ours.json" >/dev/null
"$python" "$here/pytorch/predict.py" "$out/model" "$out/sentences.txt" --threads "$threads" --seconds "$seconds" \
  --check "$out/check.jsonl" >"$out/theirs.jsonl"

# The server: one sentence per request from N clients at once.
server=()
"$build/examples/hyperadapt" serve --model "$out/model" --port 0 --threads "$threads" >"$out/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "http://" "$out/serve.log" && break; sleep 0.1; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$out/serve.log" | grep -o '[0-9]*$')
"$build/examples/hyperadapt" predict --model "$out/model" --task sst2 --input "$out/sentences.txt" --format text --output "$out/all.jsonl"
for clients in 1 8 32; do
  python3 "$root/tests/examples/server_clients.py" "$port" "$out/all.jsonl" "$out/sentences.txt" --bench \
    --clients "$clients" --requests $((clients == 1 ? 200 : 3200 / clients)) >>"$out/server.txt"
done
kill -TERM "$server"; wait "$server" || true

python3 - "$out/ours.json" "$out/theirs.jsonl" "$out/server.txt" <<'EOF'
import json, re, sys
ours = json.load(open(sys.argv[1]))
theirs = [json.loads(l) for l in open(sys.argv[2])]
check = next((t for t in theirs if "check" in t), None)
if check:
    print(f"same model: fp32 probabilities of {check['sentences']} sentences differ by at most {check['max_abs_diff']:.2e}, "
          f"labels agree on {check['labels_agree']}")
rows = {}
for b in ours["benchmarks"]:
    m = re.match(r"BM_predict_(fp32|bf16)/threads:(\d+)/batch:(\d+)", b["name"])
    if m:
        rows[(m[1], int(m[3]))] = {"ours": b}
for t in theirs:
    if t.get("side") == "pytorch":
        rows.setdefault((t["precision"], t["batch"]), {})["theirs"] = t
print(f"{'case':<16}{'hyperadapt sent/s':>19}{'p50 ms':>8}{'PyTorch ' + theirs[-1]['torch'] + ' sent/s':>28}{'p50 ms':>8}{'ratio':>7}")
for (prec, batch), r in sorted(rows.items()):
    o, t = r.get("ours"), r.get("theirs")
    os_ = o["sentences/s"] if o else float("nan")
    ts = t["sentences_per_s"] if t else float("nan")
    print(f"{prec + ' batch ' + str(batch):<16}{os_:>19.1f}{(o['p50_ms'] if o else float('nan')):>8.2f}{ts:>28.1f}"
          f"{(t['p50_ms'] if t else float('nan')):>8.2f}{os_ / ts:>7.2f}")
print(open(sys.argv[3]).read().strip())
EOF
