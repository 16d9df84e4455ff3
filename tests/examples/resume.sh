#!/usr/bin/env bash
# A multi-task run resumed from a checkpoint continues exactly as the uninterrupted run: 02_camtl_glue's
# built-in synthetic tasks, 16 steps with a checkpoint every 8; the second run loses its step-16 checkpoint
# and its log, resumes from step 8 (--resume), and its train records for steps 9..16 (loss, gradient norm,
# learning rate) and its final dev scores must equal the uninterrupted run's byte for byte. Both samplers
# with state are covered: MT-Uncertainty (the default) and size-proportional.
#   usage: resume.sh PATH/02_camtl_glue WORK_DIR
set -uo pipefail
b2="$1" work="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
failed=0
# "groups": size-proportional sampling with a parameter group of its own (the heads, another rate and no
# decay) and model selection on a validation split, whose rates and choice must survive the resume too.
for sampler in mtu proportional groups; do
  common=(--sampler "$sampler" --steps 16 --checkpoint-every 8 --quiet)
  [ "$sampler" = groups ] && common=(--sampler proportional --steps 16 --checkpoint-every 8 --quiet
                                     --lr-group '^heads\.=3e-3,wd=0' --validation-per-task 100)
  "$b2" "${common[@]}" --out "whole_$sampler" >/dev/null || { echo "FAIL: uninterrupted run ($sampler)"; exit 1; }
  "$b2" "${common[@]}" --out "cut_$sampler" >/dev/null || { echo "FAIL: first run ($sampler)"; exit 1; }
  rm "cut_$sampler"/checkpoints/checkpoint-0000000016.safetensors "cut_$sampler/metrics.jsonl"
  out="$("$b2" "${common[@]}" --out "cut_$sampler" --resume)" || { echo "FAIL: resumed run ($sampler): $out"; exit 1; }
  grep -q "resumed from the checkpoint of step 8" <<<"$out" || { echo "FAIL: did not resume ($sampler): $out"; failed=1; }
  want="$(grep '"split":"train"' "whole_$sampler/metrics.jsonl" | tail -n 8; grep -E '"split":"(dev|validation)"' "whole_$sampler/metrics.jsonl" | tail -n 3)"
  got="$(grep '"split":"train"' "cut_$sampler/metrics.jsonl"; grep -E '"split":"(dev|validation)"' "cut_$sampler/metrics.jsonl" | tail -n 3)"
  if [ "$want" != "$got" ] || [ "$(grep -c '"split":"train"' <<<"$got")" -ne 8 ]; then
    echo "FAIL: resumed run differs from the uninterrupted one ($sampler)"
    diff <(echo "$want") <(echo "$got") | head -20
    failed=1
  else
    echo "ok: $sampler, steps 9..16 and the final dev scores equal byte for byte"
  fi
done
# A resume with other parameter groups than the checkpoints were trained with is refused, naming them.
out="$("$b2" --sampler proportional --steps 16 --checkpoint-every 8 --quiet --out cut_groups --resume 2>&1)"
rc=$?
if [ "$rc" -ne 1 ] || ! grep -q "trained with parameter groups '^heads" <<<"$out"; then
  echo "FAIL: a resume without the checkpoints' --lr-group was not refused (rc $rc): $out"
  failed=1
else
  echo "ok: a resume with other parameter groups is refused"
fi
# A checkpoint that validates but holds a NaN (planted, checksum re-sealed) is passed over: the run resumes
# from the one before, moves the poisoned file aside, and again matches the uninterrupted run.
ck=cut_proportional/checkpoints/checkpoint-0000000016.safetensors
poisoned="$(python3 "$here/poison_checkpoint.py" "$ck")" || { echo "FAIL: could not poison $ck"; exit 1; }
rm cut_proportional/metrics.jsonl
out="$("$b2" --sampler proportional --steps 16 --checkpoint-every 8 --quiet --out cut_proportional --resume)" ||
  { echo "FAIL: resume past a poisoned checkpoint: $out"; exit 1; }
if ! grep -q "parameter '$poisoned' holds a non-finite value" <<<"$out" || ! grep -q "of step 8)" <<<"$out"; then
  echo "FAIL: the poisoned checkpoint was not passed over: $out"; failed=1
elif [ "$(grep '"split":"train"' cut_proportional/metrics.jsonl)" != "$(grep '"split":"train"' whole_proportional/metrics.jsonl | tail -n 8)" ]; then
  echo "FAIL: the run resumed past a poisoned checkpoint differs from the uninterrupted one"; failed=1
else
  echo "ok: a checkpoint holding a NaN in '$poisoned' was passed over"
fi
exit "$failed"
