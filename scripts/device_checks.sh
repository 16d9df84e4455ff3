#!/usr/bin/env bash
# What a GPU machine checks, in one run (the device tool gives a session minutes, not hours): the CUDA backend's
# primitives and whole models against the CPU, a 1-rank NCCL training run against the plain one, the loss curves
# of 02_camtl_glue and 03_pha_fewshot with --device cuda against --device cpu (issue 13: fp32 within 1e-4 over
# 200 steps; built-in defaults and the real recipes on a small checkpoint), 01_embed_sentences' embeddings on both
# devices (within 1e-5), 00_train_encoder's and 04_compose_custom_model's losses and scores on both, then the PHA
# and CA-MTL training steps against PyTorch on the same GPU.
# Run on the GPU machine from the repository root after scripts/device_carry.sh filled .devcarry here:
#   run(command="bash scripts/device_checks.sh", carry=[".devcarry"])
# Logs and the benchmark JSON go to $OUT (or ./device-out). CHECKS="tests examples bench" (default) picks the parts;
# CHECKS=sanitize (a carry made with CARRY_SANITIZER=1) runs test_cuda_backend under compute-sanitizer's memcheck and
# racecheck and test_cuda_models under memcheck (issue 13: "sanitizer clean"), each failing on any report.
set -uo pipefail
out="${OUT:-$PWD/device-out}"
mkdir -p "$out"
carry="$PWD/.devcarry"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
libs="$carry/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && libs="$libs:$d"; done
# cuBLAS from PyTorch's wheels when the toolkit's is not on the default path
py_cublas="$(python3 -c 'import nvidia.cublas, os; print(os.path.join(os.path.dirname(nvidia.cublas.__file__), "lib"))' 2>/dev/null || true)"
[ -n "$py_cublas" ] && libs="$libs:$py_cublas"
# NCCL likewise (test_nccl_training)
py_nccl="$(python3 -c 'import nvidia.nccl, os; print(os.path.join(os.path.dirname(nvidia.nccl.__file__), "lib"))' 2>/dev/null || true)"
[ -n "$py_nccl" ] && libs="$libs:$py_nccl"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# One node, one GPU: NCCL's bootstrap over the loopback interface (the device machine reaches nothing outside),
# and its warnings in the test's log.
export NCCL_SOCKET_IFNAME="${NCCL_SOCKET_IFNAME:-lo}" NCCL_DEBUG="${NCCL_DEBUG:-WARN}"
status=0
checks="${CHECKS:-tests examples bench}"
[[ " $checks " == *" tests "* ]] && for t in test_cuda_backend test_cuda_models test_nccl_training; do
  ldd "$carry/tests/$t" | grep "not found" && status=1
  "$carry/tests/$t" --log_level=test_suite --report_level=short --color_output=no > "$out/$t.log" 2>&1
  rc=$?
  echo "$t: rc $rc"; grep -E "CUDA device|worst|error|failed|passed|Leaving test suite \"cuda\"" "$out/$t.log" | head -40
  [ $rc -eq 0 ] || status=1
done
if [[ " $checks " == *" sanitize "* ]]; then
  wheel="$(ls "$carry"/sanitizer/nvidia_cuda_sanitizer_api-*.whl 2>/dev/null | head -1)"
  if [[ -z "$wheel" ]]; then
    echo "sanitize: no compute-sanitizer in the carry (make it with CARRY_SANITIZER=1 scripts/device_carry.sh)"
    status=1
  else
    san="$(mktemp -d)"
    python3 -m zipfile -e "$wheel" "$san"
    chmod +x "$san"/nvidia/cu*/bin/compute-sanitizer
    sanitizer="$(ls "$san"/nvidia/cu*/bin/compute-sanitizer | head -1)"
    for spec in "memcheck test_cuda_backend" "racecheck test_cuda_backend" "memcheck test_cuda_models"; do
      read -r tool t <<<"$spec"
      "$sanitizer" --tool "$tool" --error-exitcode 3 --print-limit 20 "$carry/tests/$t" --report_level=short \
        --color_output=no > "$out/sanitize_${tool}_$t.log" 2>&1
      rc=$?
      echo "compute-sanitizer --tool $tool $t: rc $rc"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|failed|passed" \
        "$out/sanitize_${tool}_$t.log" | tail -5
      [ $rc -eq 0 ] || status=1
    done
  fi
fi
if [[ " $checks " == *" examples "* ]]; then
  mkdir -p "$carry/lib-examples" && tar -C "$carry/lib-examples" -xJf "$carry/lib-examples.tar.xz"
  # The same runs on both devices: proportional sampling (MT-Uncertainty's choices depend on the model's
  # outputs, so rounding could change which examples a step takes), fp32, 200 steps, the default seed.
  small=(--checkpoint "$carry/inputs/checkpoint" --data "$carry/inputs/data" --tasks rte --seq-len 32 --batch 8
         --steps 200 --eval-every 100 --sampler proportional --quiet)
  # name | program | options | the run's metrics.jsonl under --out
  runs=("02_builtin|02_camtl_glue|--steps 200 --eval-every 100 --sampler proportional --quiet|metrics.jsonl"
        "02_camtl|02_camtl_glue|${small[*]} --model camtl|metrics.jsonl"
        "03_pha|03_pha_fewshot|${small[*]} --mode multitask --model pha|pha-proportional/metrics.jsonl"
        "03_demo|03_pha_fewshot||")
  for spec in "${runs[@]}"; do
    IFS='|' read -r name program opts metrics <<<"$spec"
    for dev in cpu cuda; do
      rm -rf "$out/${name}_$dev"
      # shellcheck disable=SC2086  # opts: a list of words without spaces
      LD_LIBRARY_PATH="$carry/lib-examples:$LD_LIBRARY_PATH" OMP_NUM_THREADS=2 timeout 900 \
        "$carry/examples/$program" $opts --device "$dev" --out "$out/${name}_$dev" --json "$out/${name}_$dev.jsonl" \
        > "$out/${name}_$dev.txt" 2>&1
      rc=$?
      echo "$program $name --device $dev: rc $rc"; tail -n 12 "$out/${name}_$dev.txt"
      [ $rc -eq 0 ] || status=1
    done
    [ -n "$metrics" ] || continue
    python3 scripts/compare_loss_curves.py "$out/${name}_cpu/$metrics" "$out/${name}_cuda/$metrics" --tolerance 1e-4 |
      tee "$out/${name}_compare.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  done
  # Reduced-precision products on the GPU, the built-in default's 200 steps against the CPU's fp32 curve, within
  # stated bounds: TF32 (operands rounded to 10 mantissa bits) every step within 5e-2 absolute; bf16 (8 bits) and
  # fp16 (10 bits, with dynamic loss scaling) every mean of 20 steps within 5e-2, as the CPU's bf16 test compares.
  for precision in tf32 bf16 fp16; do
    rm -rf "$out/02_builtin_$precision"
    LD_LIBRARY_PATH="$carry/lib-examples:$LD_LIBRARY_PATH" timeout 900 "$carry/examples/02_camtl_glue" --steps 200 \
      --eval-every 100 --sampler proportional --quiet --device cuda --precision "$precision" \
      --out "$out/02_builtin_$precision" --json "$out/02_builtin_$precision.jsonl" > "$out/02_builtin_$precision.txt" 2>&1
    rc=$?
    echo "02_camtl_glue --device cuda --precision $precision: rc $rc"; tail -n 12 "$out/02_builtin_$precision.txt"
    [ $rc -eq 0 ] || status=1
    window=1; [ "$precision" = tf32 ] || window=20
    python3 scripts/compare_loss_curves.py "$out/02_builtin_cpu/metrics.jsonl" "$out/02_builtin_$precision/metrics.jsonl" \
      --tolerance 5e-2 --window "$window" | tee "$out/02_builtin_${precision}_compare.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  done
fi
if [[ " $checks " == *" examples "* ]]; then
  # 01_embed_sentences: the same sentences embedded on both devices, on the small checkpoint (its vocabulary's
  # words); every embedding within 1e-5 of the CPU's.
  words="$(head -n 40 "$carry/inputs/checkpoint/vocab.txt" | grep -v '^\[' | tr '\n' ' ')"
  python3 - "$words" > "$out/01_sentences.txt" <<'PY'
import random, sys
words = sys.argv[1].split()
rng = random.Random(1)
for i in range(70):  # three batches of up to 32, lengths 1..12
    print(" ".join(rng.choice(words) for _ in range(1 + i % 12)))
PY
  for dev in cpu cuda; do
    LD_LIBRARY_PATH="$carry/lib-examples:$LD_LIBRARY_PATH" timeout 300 "$carry/examples/01_embed_sentences" \
      --model "$carry/inputs/checkpoint" --device "$dev" "$out/01_sentences.txt" > "$out/01_$dev.txt" 2> "$out/01_$dev.err"
    rc=$?
    echo "01_embed_sentences --device $dev: rc $rc"; tail -n 2 "$out/01_$dev.err"
    [ $rc -eq 0 ] || status=1
  done
  python3 - "$out/01_cpu.txt" "$out/01_cuda.txt" <<'PY' | tee "$out/01_compare.txt"
import sys
a = [[float(v) for v in l.split()] for l in open(sys.argv[1])]
b = [[float(v) for v in l.split()] for l in open(sys.argv[2])]
assert a and len(a) == len(b), (len(a), len(b))
worst = max(abs(x - y) for r, s in zip(a, b) for x, y in zip(r, s))
print(f"01_embed_sentences: {len(a)} embeddings, max |cuda - cpu| = {worst:.2e}", "OK" if worst <= 1e-5 else "MISMATCH")
sys.exit(0 if worst <= 1e-5 else 1)
PY
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  # 00_train_encoder (2 epochs) and 04_compose_custom_model (200 steps) on both devices: the printed training
  # losses (00: 4 decimals) within 2e-3 of the CPU's, the dev scores within 0.02.
  for spec in "00_train_encoder|--epochs 2" "04_compose_custom_model|--steps 200"; do
    IFS='|' read -r program opts <<<"$spec"
    for dev in cpu cuda; do
      # shellcheck disable=SC2086  # opts: a list of words without spaces
      LD_LIBRARY_PATH="$carry/lib-examples:$LD_LIBRARY_PATH" timeout 600 "$carry/examples/$program" $opts --device "$dev" \
        > "$out/${program}_$dev.txt" 2>&1
      rc=$?
      echo "$program --device $dev: rc $rc"; tail -n 3 "$out/${program}_$dev.txt"
      [ $rc -eq 0 ] || status=1
    done
    python3 - "$out/${program}_cpu.txt" "$out/${program}_cuda.txt" <<'PY' | tee "$out/${program}_compare.txt"
import re, sys
def numbers(path):  # (training losses, dev scores) as the example prints them
    losses, scores = [], []
    for line in open(path):
        losses += [float(x) for x in re.findall(r"train loss (-?[0-9.]+)", line)]
        m = re.match(r"\s+(\w+)\s+(-?[0-9.]+)\s+(-?[0-9.]+)$", line)
        if m: scores += [float(m.group(2)), float(m.group(3))]
        scores += [float(x) for x in re.findall(r"held-out accuracy:? (-?[0-9.]+)", line)]
    return losses, scores
(la, sa), (lb, sb) = numbers(sys.argv[1]), numbers(sys.argv[2])
ok = len(la) == len(lb) and len(sa) == len(sb) and sa
dl = max((abs(x - y) for x, y in zip(la, lb)), default=0.0)
ds = max((abs(x - y) for x, y in zip(sa, sb)), default=float("nan"))
ok = ok and dl <= 2e-3 and ds <= 0.02
print(f"{sys.argv[1]}: {len(la)} losses, max diff {dl:.2e}; {len(sa)} scores, max diff {ds:.3f}:", "OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
PY
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  done
fi
if [[ " $checks " == *" bench "* ]]; then
  for step in pha_step camtl_step; do
    DEVICE=cuda PYTHON=python3 BENCH_FILTER='/cuda(/|$)' bash "benchmarks/compare_$step.sh" "$carry" 1 2>&1 |
      tee "$out/compare_$step.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    # TF32 on both sides (ours: cuda_products::tf32; PyTorch: allow_tf32), then bf16 (ours: cuda_products::bf16,
    # bf16 operands and fp32 activations; PyTorch: CUDA autocast, bf16 activations too)
    for precision in tf32 bf16; do
      DEVICE=cuda PYTHON=python3 PRECISION=$precision BENCH_FILTER=$precision bash "benchmarks/compare_$step.sh" \
        "$carry" 1 2>&1 | tee "$out/compare_${step}_$precision.txt"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    done
    # PyTorch's best on a GPU: bf16 autocast under torch.compile (the issue's "and torch.compile")
    DEVICE=cuda PYTHON=python3 PRECISION=bf16 PEER_COMPILE=1 BENCH_FILTER=bf16 bash "benchmarks/compare_$step.sh" \
      "$carry" 1 2>&1 | tee "$out/compare_${step}_bf16_compiled.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  done
fi
exit $status
