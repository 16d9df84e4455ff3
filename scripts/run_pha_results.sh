#!/usr/bin/env bash
# Runs the PHA tables with examples/03_pha_fewshot: MiniLM (scripts/fetch_model.sh) on the shared GLUE and
# SuperGLUE copies, every line appended to one JSONL file.
#
# (a) Low-data multi-task: one model on RTE, MRPC, STS-B, CoLA, SST-2 and WNLI with n training examples per
#     task (n in N_TRAIN, default 100 500 1000), dev subsampled to 200 per task, L = 64, batch 16, models
#     pha, adapters, hyperformerpp (size-proportional sampling, as PHA's code mixes tasks) and camtl
#     (MT-Uncertainty, as its paper, at n = 100; size-proportional above, for CPU time: see below). Budget: every model gets the same number of steps for a given n:
#     steps(n) = min(ceil(10 epochs x 6n / 16), MAX_STEPS=1000), i.e. 375 for n = 100 (10 epochs) and 1000
#     for n = 500 and 1000 (about 2.7 and 1.3 epochs): the CPU budget caps the larger n (STEPS=S fixes all).
#     lr: ADAPTER_LR (default 1e-3) for the adapter models — PHA's and HyperFormer's 3e-4 is tuned for
#     5,000-65,000 steps, and at 3e-4 none of them left the majority class in a few hundred steps here —
#     and 1e-4 for CA-MTL (its row in docs/results.md). Heads read the masked mean of the last layer
#     (the example's default for all-MiniLM-L6-v2, whose [CLS] pooler was never trained). Dev is evaluated
#     every 125 steps; JSON has best and final scores.
# (b) Few-shot transfer to CB: per seed, one PHA source model on the six GLUE tasks with n = 1000 per task
#     (SOURCE_STEPS, default 375 steps as part (a); its weights go to SOURCE_DIR, default <build>/pha_sources, not
#     docs/, and an existing file is reused), then for k in 16 32 100 three arms with the same budget
#     (TRANSFER_STEPS, default 100 steps of min(16, k), dev = CB's full validation set, evaluated every 25):
#     pha (retrieved prototype + start_transfer), adapter (fresh per-task adapter from MiniLM), both at
#     ADAPTER_LR, and full (full fine-tuning of MiniLM, lr 5e-5).
#     The part (a) PHA run at n = SOURCE_N (default 1000) saves its weights under that name, so running part
#     (a) first makes part (b) reuse it instead of training another source.
# Seeds ${SEEDS:-12 13}; threads ${THREADS:-2}. PARTS="a b" picks the parts.
# docs/results.md was produced with MAX_STEPS=375 (every row of every n: 375 steps of 16, i.e. 10 epochs at
# n = 100, 2 at n = 500, 1 at n = 1000), one process per seed (SEEDS=12 and SEEDS=13 side by side,
# THREADS=1): N_TRAIN="100 1000" PARTS="a b", then N_TRAIN=500 PARTS=a.
#   usage: scripts/run_pha_results.sh [build-dir] [data-dir] [out.jsonl]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
data="${2:-$root/../shared/data}"
out="${3:-$root/docs/results/pha_runs.jsonl}"
bin="$build/examples/03_pha_fewshot"
ckpt="$root/.deps/models/all-MiniLM-L6-v2"
glue=rte,mrpc,stsb,cola,sst2,wnli
sources="${SOURCE_DIR:-$build/pha_sources}"
[ -x "$bin" ] || { echo "no $bin: build the 03_pha_fewshot target first" >&2; exit 1; }
[ -d "$ckpt" ] || { echo "no $ckpt: run scripts/fetch_model.sh first" >&2; exit 1; }
mkdir -p "$(dirname "$out")" "$sources"
run() {
  echo "== $*" >&2
  OMP_WAIT_POLICY=PASSIVE "$bin" --checkpoint "$ckpt" --data "$data" --seq-len 64 --batch 16 \
    --threads "${THREADS:-2}" --quiet --json "$out" "$@"
}
steps_for() {  # same budget for every model at a given n
  if [ -n "${STEPS:-}" ]; then echo "$STEPS"; return; fi
  local s=$(( (10 * 6 * $1 + 15) / 16 )) cap="${MAX_STEPS:-1000}"
  echo $(( s < cap ? s : cap ))
}
for part in ${PARTS:-a b}; do
  if [ "$part" = a ]; then
    for n in ${N_TRAIN:-100 500 1000}; do
      for seed in ${SEEDS:-12 13}; do
        common=(--mode multitask --tasks "$glue" --train-per-task "$n" --dev-per-task 200 --steps "$(steps_for "$n")"
                --eval-every 125 --seed "$seed")
        save=()
        # The n = SOURCE_N PHA model doubles as part (b)'s transfer source (same file name as part b uses).
        [ "$n" = "${SOURCE_N:-1000}" ] && save=(--save "$sources/pha_glue6_n${n}_seed$seed.safetensors")
        run "${common[@]}" --model pha --lr "${ADAPTER_LR:-1e-3}" "${save[@]}"
        run "${common[@]}" --model adapters --lr "${ADAPTER_LR:-1e-3}"
        run "${common[@]}" --model hyperformerpp --lr "${ADAPTER_LR:-1e-3}"
        # MT-Uncertainty adds a no-grad forward over T*b = 96 candidates to every step (about 3x the step
        # cost here): affordable at n = 100 only; above it CA-MTL samples size-proportionally.
        camtl_sampler=proportional
        [ "$n" -le 100 ] && camtl_sampler=mtu
        run "${common[@]}" --model camtl --sampler "$camtl_sampler" --lr 1e-4
      done
    done
  elif [ "$part" = b ]; then
    for seed in ${SEEDS:-12 13}; do
      src="$sources/pha_glue6_n1000_seed$seed.safetensors"
      if [ -f "$src" ] && [ -f "$src.json" ]; then
        echo "== reusing $src" >&2
      else
        run --mode multitask --model pha --tasks "$glue" --train-per-task 1000 --dev-per-task 200 \
          --steps "${SOURCE_STEPS:-375}" --eval-every 250 --lr "${ADAPTER_LR:-1e-3}" --seed "$seed" --save "$src"
      fi
      for k in 16 32 100; do
        common=(--mode transfer --tasks "$glue" --target cb --k "$k" --steps "${TRANSFER_STEPS:-100}"
                --eval-every 25 --seed "$seed")
        run "${common[@]}" --model pha --source "$src" --lr "${ADAPTER_LR:-1e-3}"
        run "${common[@]}" --model adapter --lr "${ADAPTER_LR:-1e-3}"
        run "${common[@]}" --model full --lr 5e-5
      done
    done
  else
    echo "unknown part '$part' (PARTS is a list of a and b)" >&2; exit 2
  fi
done
