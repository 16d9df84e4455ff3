#!/usr/bin/env bash
# The device options of the examples that are not recipes (02 and 03 have theirs in bad_input.sh), refused
# before anything is read, naming the option and the value. 01_embed_sentences: a device other than cpu or
# cuda, --gpu without --device cuda, --threads that is not a whole number in 1..1024, a GPU index out of
# 0..1023, --threads with --device cuda; --device cuda without CUDA in the build or without a GPU says which
# (checked on the small checkpoint tests/examples/make_inputs.py writes, since the checkpoint is looked for first).
# 04_compose_custom_model (CLI11 checks its options) and 00_train_encoder: the same for --device and --gpu.
#   device_options.sh <01_embed_sentences> <04_compose_custom_model> <00_train_encoder> <work dir>
set -uo pipefail
bin=$1
bin04=$2
bin00=$3
work=$4
fail() { echo "FAIL: $*"; exit 1; }
expect() {  # <expected message part> <args...>
  local want=$1; shift
  local out rc
  out=$("$bin" "$@" 2>&1); rc=$?
  [[ $rc -ne 0 ]] || fail "$*: exit status 0: $out"
  grep -qF -- "$want" <<<"$out" || fail "$*: expected '$want' in: $out"
  echo "ok: $(basename "$bin") $* -> $out"
}
expect "--device tpu: expected cpu or cuda" --device tpu
expect "--device CUDA: expected cpu or cuda" --device CUDA
expect "--gpu needs --device cuda" --gpu 1
expect "--gpu -1: expected a whole number from 0 to 1023" --device cuda --gpu -1
expect "--gpu 1024: expected a whole number from 0 to 1023" --device cuda --gpu 1024
expect "--threads x: expected a whole number from 1 to 1024" --threads x
expect "--threads 0: expected a whole number from 1 to 1024" --threads 0
expect "--threads 2x: expected a whole number from 1 to 1024" --threads 2x
expect "--threads is for --device cpu" --device cuda --threads 2
expect "--device needs a value" --device
# --device cuda: in a build without CUDA, or without a usable GPU, refused with a sentence that says which; on a
# GPU it runs (scripts/device_checks.sh compares its results with the CPU's).
cuda_refused_or_ran() {
  local out rc
  out=$("$bin" "$@" 2>&1); rc=$?
  if [[ $rc -eq 0 ]]; then echo "ok: $(basename "$bin") $* ran on a GPU"; return; fi
  grep -qE -- "--device cuda: (this build has no CUDA|no usable GPU|the CUDA runtime sees no GPU)" <<<"$out" ||
    fail "$*: exit status $rc without the sentence: $out"
  echo "ok: $(basename "$bin") $* -> $out"
}
rm -rf "$work" && mkdir -p "$work"
python3 "$(dirname "$0")/make_inputs.py" checkpoint "$work/checkpoint" good
echo "the cat sat" > "$work/one.txt"
out=$("$bin" --model "$work/checkpoint" "$work/one.txt" 2>&1) || fail "the small checkpoint on the CPU: $out"
help=$("$bin" --help 2>&1)
grep -qF -- "--device cpu|cuda" <<<"$help" || fail "--help does not list --device: $help"
cuda_refused_or_ran --model "$work/checkpoint" --device cuda "$work/one.txt"
bin=$bin04
expect "--device: tpu not in {cpu,cuda}" --device tpu
expect "--gpu: Value 1024 not in range 0 to 1023" --device cuda --gpu 1024
expect "--gpu needs --device cuda" --gpu 2
cuda_refused_or_ran --device cuda --steps 1
bin=$bin00
expect "--device x: expected cpu or cuda" --device x
expect "--gpu needs --device cuda" --gpu 1
expect "bad option or value: --gpu 1024" --device cuda --gpu 1024
cuda_refused_or_ran --device cuda --epochs 1
echo PASS
