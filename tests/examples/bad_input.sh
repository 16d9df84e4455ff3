#!/usr/bin/env bash
# The bad-input matrix of docs/hardening.md for the examples: each case runs 02_camtl_glue or 03_pha_fewshot
# with one wrong input and checks that it exits non-zero (2 for a bad option, 1 for bad content found while
# reading), that the message names the culprit (option, file, tensor, step), that it neither hangs, crashes
# nor trips a sanitizer, and that files written before (a results file, a metrics log) are left as they were.
# Most cases fail while parsing; the few that train use the built-in default for a couple of steps.
#   usage: bad_input.sh PATH/02_camtl_glue PATH/03_pha_fewshot WORK_DIR
set -uo pipefail
b2="$1" b3="$2" work="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

cases=0 failed=0
fail() { echo "FAIL [$1]: $2" >&2; failed=$((failed + 1)); }

# expect NAME RC PATTERN CMD...: RC is the exit code wanted (or "nonzero"); PATTERN a fixed string (case
# folded) the output must hold.
expect() {
  local name="$1" want="$2" pattern="$3" out rc
  shift 3
  cases=$((cases + 1))
  out="$(timeout 120 "$@" 2>&1 </dev/null)"
  rc=$?
  if [ "$rc" -eq 124 ]; then fail "$name" "timed out (a hang)"; return; fi
  if [ "$rc" -gt 128 ]; then fail "$name" "killed by signal $((rc - 128)): $out"; return; fi
  if [ "$want" = nonzero ]; then
    [ "$rc" -ne 0 ] || fail "$name" "exit 0, wanted an error; output: $out"
  elif [ "$rc" -ne "$want" ]; then
    fail "$name" "exit $rc, wanted $want; output: $out"
  fi
  if ! grep -qiF -- "$pattern" <<<"$out"; then fail "$name" "output does not name '$pattern': $out"; fi
  if grep -qE "runtime error:|AddressSanitizer|LeakSanitizer|terminate called" <<<"$out"; then
    fail "$name" "sanitizer report or abort: $out"
  fi
}

# Inputs: a results file and a metrics log with earlier content that no case may change, a FIFO, a folder,
# a regular file, tiny checkpoints (good and broken) and a tiny GLUE folder with RTE.
printf '{"earlier": "result"}\n' >results.jsonl
mkdir -p folder earlier_run && printf '{"split": "train", "step": 1, "loss": 0.5}\n' >earlier_run/metrics.jsonl
mkfifo fifo
printf 'not a folder\n' >plain_file
cp results.jsonl results.before && cp earlier_run/metrics.jsonl metrics.before
for v in good hidden64 missing_query0 transposed_ffn0 huge_vocab big_vocab; do
  python3 "$here/make_inputs.py" checkpoint "ck_$v" "$v" || exit 1
done
python3 "$here/make_inputs.py" glue data && python3 "$here/make_inputs.py" glue data_empty_dev empty_dev || exit 1
real=(--checkpoint ck_good --data data --tasks rte --json results.jsonl)

# ---- options: each refused while parsing, rc 2, the message names the option -----------------------------
expect "02 empty task list" 2 "--tasks" "$b2" --checkpoint ck_good --data data --tasks ,
expect "02 empty task in list" 2 "empty task name" "$b2" --checkpoint ck_good --data data --tasks rte,,mrpc
expect "02 unknown task" 2 "unknown task 'nosuch'" "$b2" --checkpoint ck_good --data data --tasks rte,nosuch
expect "02 unknown model" 2 "--model" "$b2" --model foo --json results.jsonl
expect "02 unknown sampler" 2 "--sampler" "$b2" --sampler foo
expect "02 unknown head input" 2 "--head-input" "$b2" --head-input cls
expect "02 unknown option" 2 "--no-such-option" "$b2" --no-such-option
expect "02 option without value" 2 "--epochs" "$b2" --epochs
for v in 0 -3 nan inf x 1e9; do expect "02 --epochs $v" 2 "--epochs" "$b2" --epochs "$v" --json results.jsonl; done
for v in -5 1e12 1000000000000 x; do expect "02 --seq-len $v" 2 "--seq-len" "$b2" "${real[@]}" --seq-len "$v"; done
for v in 0 -1 1e3 99999999999; do expect "02 --batch $v" 2 "--batch" "$b2" --batch "$v"; done
for v in -4 1e9 two; do expect "02 --threads $v" 2 "--threads" "$b2" --threads "$v"; done
for v in fp8 BF16 ""; do expect "02 --precision '$v'" 2 "--precision" "$b2" --precision "$v"; done
for v in nan -1 inf; do expect "02 --lr $v" 2 "--lr" "$b2" --lr "$v"; done
for v in tpu gpu CUDA ""; do expect "02 --device '$v'" 2 "--device" "$b2" --device "$v"; done
for v in -1 1024 x; do expect "02 --gpu $v" 2 "--gpu" "$b2" --device cuda --gpu "$v"; done
expect "02 --gpu without --device cuda" 2 "--gpu" "$b2" --gpu 1
expect "02 --precision tf32 on the CPU" 2 "tf32 is the GPU's" "$b2" --precision tf32
expect "03 --precision tf32 on the CPU" 2 "tf32 is the GPU's" "$b3" --precision tf32
expect "02 --precision fp16 on the CPU" 2 "fp16 is the GPU's" "$b2" --precision fp16
expect "03 --precision fp16 on the CPU" 2 "fp16 is the GPU's" "$b3" --precision fp16
# Here (no GPU; with or without CUDA in the build): refused before anything is read or written, naming the device.
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  expect "02 --device cuda without a GPU" 1 "--device cuda" "$b2" --device cuda --json results.jsonl
  expect "02 --device cuda, real recipe, without a GPU" 1 "--device cuda" "$b2" "${real[@]}" --device cuda
  expect "03 --device cuda without a GPU" 1 "--device cuda" "$b3" --device cuda --json results.jsonl
  expect "03 --device cuda, real recipe, without a GPU" 1 "--device cuda" "$b3" --mode multitask --model pha "${real[@]}" --device cuda
  expect "02 --device cuda --precision bf16 without a GPU" 1 "--device cuda" "$b2" --device cuda --precision bf16
  expect "03 --device cuda --precision fp16 without a GPU" 1 "--device cuda" "$b3" --device cuda --precision fp16
elif "$b2" --help | grep -q -- "--gpu"; then  # a GPU machine: an index past its GPUs
  expect "02 --gpu past the machine's GPUs" 1 "--gpu 1023" "$b2" --device cuda --gpu 1023 --json results.jsonl
  expect "03 --gpu past the machine's GPUs" 1 "--gpu 1023" "$b3" --device cuda --gpu 1023 --json results.jsonl
fi
expect "02 --train-per-task -1" 2 "--train-per-task" "$b2" "${real[@]}" --train-per-task -1
expect "02 --eval-every -1" 2 "--eval-every" "$b2" --eval-every -1
expect "02 --steps -1" 2 "--steps" "$b2" --steps -1
expect "02 --seed -1" 2 "--seed" "$b2" --seed -1
expect "02 --checkpoint missing" 2 "--checkpoint" "$b2" --checkpoint no/such/dir --data data
expect "02 --checkpoint is a file" 2 "--checkpoint" "$b2" --checkpoint plain_file --data data
expect "02 --data missing" 2 "--data" "$b2" --checkpoint ck_good --data no/such/dir
expect "02 --checkpoint without --data" 2 "--data" "$b2" --checkpoint ck_good
expect "02 --tasks without a checkpoint" 2 "--tasks" "$b2" --tasks rte
expect "02 --json in a missing folder" 2 "--json" "$b2" --json no/such/dir/r.jsonl
expect "02 --json is a folder" 2 "--json" "$b2" --json folder
expect "02 --json is a FIFO" 2 "--json" "$b2" --json fifo
expect "02 --out is a file" 2 "--out" "$b2" --out plain_file
expect "02 --out under a file" 2 "--out" "$b2" --out plain_file/run
expect "02 --resume without --out" 2 "--resume" "$b2" --resume
expect "02 --checkpoint-every without --out" 2 "--checkpoint-every" "$b2" --checkpoint-every 5
expect "02 --allow-partial-backbone without a checkpoint" 2 "--allow-partial-backbone" "$b2" --allow-partial-backbone
expect "02 --lr-group without a rate" 2 "--lr-group" "$b2" --lr-group adapter --json results.jsonl
expect "02 --lr-group bad pattern" 2 "not a valid regular expression" "$b2" --lr-group '(=1e-3' --json results.jsonl
expect "02 --lr-group unknown option" 2 "unknown or repeated option 'momentum=0.9'" "$b2" --lr-group 'heads=1e-3,momentum=0.9'
expect "02 --lr-group matching no parameter" 1 "'nosuch=0.001' matches no parameter" "$b2" --lr-group nosuch=1e-3 --steps 2 --quiet --json results.jsonl
expect "02 --data-seed not a number" 2 "--data-seed" "$b2" --data-seed x
expect "02 validation split of every example" 1 "would leave none to train on" "$b2" "${real[@]}" --model mtl --seq-len 8 --validation-per-task 16
expect "03 --validation-per-task in the built-in default" 2 "--validation-per-task" "$b3" --validation-per-task 4
expect "03 unknown mode" 2 "--mode" "$b3" --mode train
expect "03 unknown model" 2 "--model" "$b3" --mode multitask --checkpoint ck_good --data data --model foo
expect "03 model of the other mode" 2 "--model" "$b3" --mode multitask --checkpoint ck_good --data data --model full
expect "03 empty task list" 2 "--tasks" "$b3" --mode multitask --checkpoint ck_good --data data --tasks ,
expect "03 unknown target" 2 "--target" "$b3" --mode transfer --checkpoint ck_good --data data --model full --target nosuch
expect "03 --k 0" 2 "--k" "$b3" --mode transfer --checkpoint ck_good --data data --model full --k 0
expect "03 --epochs nan" 2 "--epochs" "$b3" --epochs nan
expect "03 --threads -4" 2 "--threads" "$b3" --threads -4
expect "03 --precision fp8" 2 "--precision" "$b3" --precision fp8
expect "03 --passes three" 2 "--passes" "$b3" --passes three
expect "03 --source missing" 2 "--source" "$b3" --mode transfer --checkpoint ck_good --data data --source no.safetensors
expect "03 --source is a FIFO" 2 "--source" "$b3" --mode transfer --checkpoint ck_good --data data --source fifo
expect "03 --source is a folder" 2 "--source" "$b3" --mode transfer --checkpoint ck_good --data data --source folder
expect "03 --tune of another mode" 2 "--tune" "$b3" --mode multitask --checkpoint ck_good --data data --tune prototype-head
expect "03 --tune of another arm" 2 "--tune" "$b3" --mode transfer --checkpoint ck_good --data data --model full --tune prototype-head
expect "03 --tune unknown" 2 "--tune" "$b3" --mode transfer --checkpoint ck_good --data data --source plain_file --tune head
expect "03 --save into a missing folder" 2 "--save" "$b3" --mode multitask --checkpoint ck_good --data data --save no/such/m.safetensors
expect "03 --save is a folder" 2 "--save" "$b3" --mode multitask --checkpoint ck_good --data data --save folder
expect "03 --save with camtl" 2 "--save" "$b3" --mode multitask --checkpoint ck_good --data data --model camtl --save m.safetensors
expect "03 --json is a FIFO" 2 "--json" "$b3" --json fifo
expect "03 --data without --mode" 2 "--mode" "$b3" --data data

# ---- content: found while reading, before training, rc 1, the message names file, field or tensor -------
expect "02 config vocab_size 1e12" 1 "vocab_size" "$b2" --checkpoint ck_huge_vocab --data data --tasks rte --json results.jsonl
expect "02 --seq-len beyond the positions" 1 "--seq-len 128" "$b2" "${real[@]}" --seq-len 128
expect "02 CBDA length does not divide hidden" 1 "does not divide the hidden size" "$b2" "${real[@]}" --seq-len 6
expect "02 checkpoint of hidden 64" 1 "'embeddings.word_embeddings.weight' is [23, 64] in the checkpoint" "$b2" --checkpoint ck_hidden64 --data data --tasks rte --seq-len 16 --json results.jsonl
expect "02 checkpoint without a layer-0 tensor" 1 "encoder.layer.0.attention.self.query.weight" \
  "$b2" --checkpoint ck_missing_query0 --data data --tasks rte --seq-len 16 --json results.jsonl
expect "02 checkpoint with a transposed tensor" 1 "encoder.layer.0.intermediate.dense.weight" \
  "$b2" --checkpoint ck_transposed_ffn0 --data data --tasks rte --seq-len 16 --json results.jsonl
expect "02 mtl checkpoint of hidden 64" 1 "encoder.layer.0" "$b2" --checkpoint ck_hidden64 --data data --tasks rte --seq-len 16 --model mtl
pha=(--mode multitask --data data --tasks rte --seq-len 16 --steps 1)
expect "03 pha checkpoint of hidden 64" 1 "does not fit the backbone" "$b3" "${pha[@]}" --checkpoint ck_hidden64
expect "03 pha checkpoint without a layer-0 tensor" 1 "1 missing: encoder.layer.0.attention.self.query.weight" \
  "$b3" "${pha[@]}" --checkpoint ck_missing_query0
expect "03 camtl checkpoint with a transposed tensor" 1 "encoder.layer.0.intermediate.dense.weight' is [32, 64]" \
  "$b3" "${pha[@]}" --checkpoint ck_transposed_ffn0 --model camtl
expect "02 empty dev split" 1 "dev split" "$b2" --checkpoint ck_good --data data_empty_dev --tasks rte --seq-len 16 --json results.jsonl
expect "03 empty dev split" 1 "dev split" "$b3" --mode multitask --checkpoint ck_good --data data_empty_dev --tasks rte --seq-len 16
expect "03 config vocab_size 1e12" 1 "vocab_size" "$b3" --mode multitask --checkpoint ck_huge_vocab --data data --tasks rte
expect "02 vocab.txt larger than the checkpoint's table" 1 "vocab.txt: 31 tokens, but config.json says vocab_size 23" \
  "$b2" --checkpoint ck_big_vocab --data data --tasks rte --seq-len 16 --json results.jsonl
expect "03 vocab.txt larger than the checkpoint's table" 1 "config.json says vocab_size 23" \
  "$b3" --mode multitask --checkpoint ck_big_vocab --data data --tasks rte --seq-len 16

# ---- numerics: lr 1e6 makes the loss NaN within a few steps --------------------------------------------
nan=(--sampler proportional --lr 1e6 --steps 8 --quiet --json results.jsonl)
expect "02 non-finite loss stops" 1 "the first parameter whose gradient is not finite is '" "$b2" "${nan[@]}"
expect "02 non-finite loss names the step" 1 "train_multitask: step " "$b2" "${nan[@]}"
expect "02 --skip-nonfinite counts the skipped steps" 0 "updates skipped for a non-finite loss or gradient" \
  "$b2" --sampler proportional --lr 1e6 --steps 8 --quiet --skip-nonfinite

# ---- checkpoints: a fresh run refuses a folder that holds another run's, before training ----------------
cases=$((cases + 1))
"$b2" --steps 2 --checkpoint-every 1 --quiet --out ckpt_run >/dev/null 2>&1 || fail "first checkpointed run" "exit $?"
expect "02 fresh run into a folder with checkpoints" 1 "already holds 2 checkpoint(s)" \
  "$b2" --steps 2 --checkpoint-every 1 --quiet --out ckpt_run

# ---- outputs: no shell, torn logs tolerated -----------------------------------------------------------
cases=$((cases + 1))
out="$(timeout 120 "$b2" --steps 2 --quiet --out 'run_$(touch INJECTED)' 2>&1)" || fail "--out with shell syntax" "exit $?: $out"
[ ! -e INJECTED ] || fail "--out with shell syntax" "a command in --out ran"
[ -s 'run_$(touch INJECTED)/metrics.jsonl' ] || fail "--out with shell syntax" "no metrics.jsonl in the folder named as given"
printf '{"split": "dev", "step": 1, "task": "order", "sco' >>earlier_run/metrics.jsonl  # a line torn by a crash
cp earlier_run/metrics.jsonl metrics.torn
expect "02 torn line in an existing metrics.jsonl" 0 "unreadable line(s) passed over" "$b2" --steps 2 --out earlier_run
cases=$((cases + 1))
head -c "$(stat -c %s metrics.torn)" earlier_run/metrics.jsonl | cmp -s - metrics.torn ||
  fail "torn metrics.jsonl" "the earlier lines were written over"
[ "$(sed -n 3p earlier_run/metrics.jsonl | head -c 1)" = "{" ] || fail "torn metrics.jsonl" "the first new record did not start a new line"

# ---- nothing written over ---------------------------------------------------------------------------
cases=$((cases + 1))
cmp -s results.jsonl results.before || fail "results.jsonl unchanged" "a failed run changed it: $(cat results.jsonl)"
[ -p fifo ] || fail "the FIFO is still a FIFO" "it was replaced"

echo "bad_input.sh: $cases cases, $failed failed"
[ "$failed" -eq 0 ]
