#!/usr/bin/env bash
# Crash safety of training checkpoints, with the crash_train driver (tests/tools/crash_train.cpp: a small
# BERT classifier trained for --steps steps, a checkpoint every --every steps, resumable).
#
#   crash_safety.sh --driver PATH [--trials N] [--seed S] [--steps N] [--every K] [--work DIR]
#       kill -9 trials. One uninterrupted reference run (every checkpoint kept). Then, per trial: a run in a
#       fresh folder is killed with SIGKILL after a random delay (uniform over the reference run's wall time),
#       and checked:
#         1. every checkpoint file under its final name is byte-identical to the reference run's file of that
#            step (the atomic writer never leaves a torn file under the final name);
#         2. a torn checkpoint is detected and skipped: when the kill landed inside a save, every other such
#            trial moves the temporary file to its final name (what a writer without atomic rename would have
#            left; the others leave it in place); in the trials with no temporary file, every other one
#            truncates the newest checkpoint at a random length. The resumed run must name each torn file in a
#            "skipped" line (a temporary file that was already complete is not torn and must load);
#         3. the resumed run starts from the newest complete checkpoint (or fresh when there is none);
#         4. the killed run's losses and the resumed run's losses equal the reference run's, bit for bit, and
#            the resumed run ends with the reference run's last checkpoint, byte for byte.
#       Prints one line per trial and a summary (trials, kills inside a save, torn files skipped, wall time).
#
#   crash_safety.sh --driver PATH --full-disk [--work DIR]
#       A full disk during a save, on a real file system: a small tmpfs, mostly filled by another file, mounted
#       in a private mount namespace (unshare; as root, or as a user where unprivileged user namespaces are
#       allowed; otherwise the check prints SKIPPED and passes: tests/train/test_checkpoint_full_disk.cpp
#       covers the case everywhere through /dev/full). The second save must fail with an error naming the file
#       and "No space left on device", the first checkpoint must stay intact and loadable, no temporary file
#       may remain, and once the other file is removed the run must resume and match the reference losses.
#
# Exit status: 0 when every check passes, 1 on a failed check, 2 on bad usage.
set -euo pipefail

driver="" trials=100 seed=1 steps=40 every=4 work="" full_disk=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --driver) driver="$2"; shift 2 ;;
    --trials) trials="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --every) every="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --full-disk) full_disk=1; shift ;;
    # Internal: the part of --full-disk that runs inside the private mount namespace.
    --in-namespace) full_disk=2; shift ;;
    *) echo "crash_safety.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [[ -z "$driver" || ! -x "$driver" ]]; then
  echo "crash_safety.sh: --driver must name the crash_train executable (got '${driver}')" >&2
  exit 2
fi
for n in "$trials" "$seed" "$steps" "$every"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "crash_safety.sh: '$n' is not a non-negative integer" >&2; exit 2; }
done
if [[ -z "$work" ]]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"

# One thread: the model is tiny, and OpenMP threads spinning on a busy machine would only slow the trials.
export OMP_NUM_THREADS=1

fail() {
  echo "crash_safety.sh: FAIL: $*" >&2
  exit 1
}

now_ns() { date +%s%N; }

# draw45: a 45-bit random number in r45 (from bash's seeded RANDOM, so a --seed repeats the choices).
r45=0
draw45() { r45=$(( (RANDOM << 30) | (RANDOM << 15) | RANDOM )); }

# losses FILE: the "step N loss X" lines of a driver's output, in order.
losses() { grep '^step ' "$1" || true; }

# ---- full disk -------------------------------------------------------------------------------------------
if [[ $full_disk -eq 2 ]]; then
  # Inside the namespace: $work/disk becomes a tmpfs of 3.5 checkpoints, two of them taken by a filler file.
  # Step 4's save fits; step 8's temporary file cannot (the step-4 file is still there while it is written),
  # so that save hits ENOSPC. Removing the filler makes room again (a remount may be refused in a user
  # namespace).
  ref="$work/reference"
  size=$(stat -c %s "$ref/checkpoint-0000000004.safetensors")
  disk="$work/disk"
  mkdir -p "$disk"
  if ! mount -t tmpfs -o "size=$((size * 7 / 2))" crash_safety_full_disk "$disk"; then
    echo "SKIPPED: a tmpfs may not be mounted here; test_train_checkpoint_full_disk covers a full disk through /dev/full"
    exit 0
  fi
  head -c $((size * 2)) /dev/zero >"$disk/filler"
  mkdir "$disk/run"
  status=0
  "$driver" train --dir "$disk/run" --steps 8 --every 4 --keep 1 >"$work/full.out" 2>"$work/full.err" || status=$?
  cat "$work/full.err" >&2
  [[ $status -eq 1 ]] || fail "the save onto the full tmpfs did not fail with status 1 (status $status)"
  want="$disk/run/checkpoint-0000000008.safetensors"
  grep -qF "$want" "$work/full.err" || fail "the error does not name the file $want: $(cat "$work/full.err")"
  grep -qF "No space left on device" "$work/full.err" || fail "the error does not name the cause (ENOSPC): $(cat "$work/full.err")"
  listing="$(ls -A "$disk/run")"  # the filler lies beside run/
  [[ "$listing" == "checkpoint-0000000004.safetensors" ]] || fail "after the failed save the folder holds: $listing"
  cmp -s "$disk/run/checkpoint-0000000004.safetensors" "$ref/checkpoint-0000000004.safetensors" ||
    fail "the previous checkpoint changed during the failed save"
  "$driver" check "$disk/run/checkpoint-0000000004.safetensors" | grep -qx "valid 4" ||
    fail "the previous checkpoint does not load after the failed save"
  [[ "$(losses "$work/full.out")" == "$(losses "$ref/out" | head -n 8)" ]] || fail "losses before the full disk differ from the reference"

  # Room again: the run resumes from step 4 and ends where the reference run ends.
  rm "$disk/filler"
  "$driver" train --dir "$disk/run" --steps 8 --every 4 --keep 1 >"$work/resumed.out"
  grep -qx "resumed 4 $disk/run/checkpoint-0000000004.safetensors" "$work/resumed.out" ||
    fail "the run did not resume from step 4: $(head -n 3 "$work/resumed.out")"
  [[ "$(losses "$work/resumed.out")" == "$(losses "$ref/out" | sed -n 5,8p)" ]] || fail "the resumed losses differ from the reference"
  cmp -s "$disk/run/checkpoint-0000000008.safetensors" "$ref/checkpoint-0000000008.safetensors" ||
    fail "the resumed run's step-8 checkpoint differs from the reference"
  umount "$disk"
  echo "full disk: save of step 8 failed with '$(tail -n 1 "$work/full.err")'; step 4 intact and loadable, no temporary file; resumed once there was room, losses equal"
  rm -rf "$disk" "$ref" "$work"/*.out "$work"/*.err  # on success only: a failure leaves everything for a look
  exit 0
fi

if [[ $full_disk -eq 1 ]]; then
  rm -rf "$work/reference" "$work/disk"
  mkdir -p "$work/reference"
  "$driver" train --dir "$work/reference" --steps 8 --every 4 --keep 1000 >"$work/reference/out"
  self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
  inner=("$self" --driver "$driver" --work "$work" --in-namespace)
  if [[ "$(id -u)" -eq 0 ]] && unshare --mount --propagation private true 2>/dev/null; then
    exec unshare --mount --propagation private "${inner[@]}"
  elif unshare --user --map-root-user --mount true 2>/dev/null; then
    exec unshare --user --map-root-user --mount "${inner[@]}"
  fi
  echo "SKIPPED: no private mount namespace for a small tmpfs here (unshare refused); test_train_checkpoint_full_disk covers a full disk through /dev/full"
  exit 0
fi

# ---- kill -9 trials ----------------------------------------------------------------------------------------
ref="$work/reference"
rm -rf "$ref"
mkdir -p "$ref"
start=$(now_ns)
"$driver" train --dir "$ref" --steps "$steps" --every "$every" --keep 1000000 >"$ref/out"
ref_ns=$(( $(now_ns) - start ))
mapfile -t ref_losses < <(losses "$ref/out")
[[ ${#ref_losses[@]} -eq $steps ]] || fail "the reference run printed ${#ref_losses[@]} losses, expected $steps"
final_step=$steps
final_file="$(printf 'checkpoint-%010d.safetensors' "$final_step")"
echo "reference run: $steps steps, a checkpoint every $every, $(( ref_ns / 1000000 )) ms, $(stat -c %s "$ref/$final_file") bytes per checkpoint"

RANDOM=$seed
mid_save=0 during_writes=0 partial_moved=0 torn_skipped=0 finished_before_kill=0 fresh_restarts=0 stale_temporaries=0
suite_start=$(now_ns)
trial_dir="$work/trial"
for ((t = 1; t <= trials; ++t)); do
  rm -rf "$trial_dir"
  mkdir -p "$trial_dir"
  run="$trial_dir/run"
  # The moment: once the run has printed a random number of losses (0 to steps-1), a random delay of up to
  # two mean step times (the reference run's wall time over its steps, saves included). Tied to the run's
  # progress rather than to the clock, the kills spread over the whole run even when the machine is busy.
  after=$(( RANDOM % steps ))
  draw45
  delay_ns=$(( r45 % (2 * ref_ns / steps) ))
  "$driver" train --dir "$run" --steps "$steps" --every "$every" >"$trial_dir/killed.out" 2>"$trial_dir/killed.err" &
  pid=$!
  while (( $(grep -c '^step ' "$trial_dir/killed.out" || true) < after )) && kill -0 "$pid" 2>/dev/null; do
    sleep 0.002
  done
  sleep "$(printf '%d.%09d' $((delay_ns / 1000000000)) $((delay_ns % 1000000000)))"
  kill -KILL "$pid" 2>/dev/null || true
  status=0
  { wait "$pid" || status=$?; } 2>/dev/null  # without bash's "Killed" line
  if [[ $status -eq 0 ]]; then
    finished_before_kill=$((finished_before_kill + 1))
  elif [[ $status -ne 137 ]]; then
    fail "trial $t: the killed run ended with status $status: $(cat "$trial_dir/killed.err")"
  fi

  # The killed run's losses are the reference's first ones.
  mapfile -t got < <(losses "$trial_dir/killed.out")
  for ((i = 0; i < ${#got[@]}; ++i)); do
    [[ "${got[i]}" == "${ref_losses[i]}" ]] || fail "trial $t: the killed run's '${got[i]}' differs from the reference's '${ref_losses[i]}'"
  done

  # 1. Files under their final names are complete.
  shopt -s nullglob
  finals=("$run"/checkpoint-*.safetensors)
  temporaries=("$run"/checkpoint-*.safetensors.tmp.*)
  shopt -u nullglob
  for f in "${finals[@]}"; do
    cmp -s "$f" "$ref/$(basename "$f")" || fail "trial $t: $(basename "$f") after kill -9 differs from the reference's (torn under its final name)"
  done

  # 2. Torn files: a partial temporary file under its final name, or the newest checkpoint truncated.
  torn=()
  what="-"
  if [[ ${#temporaries[@]} -gt 0 ]]; then
    mid_save=$((mid_save + 1))
    what="killed inside a save"
    tmp="${temporaries[-1]}"
    name="$(basename "$tmp")"
    name="${name%%.tmp.*}"
    if cmp -s "$tmp" "$ref/$name"; then
      what="$what, after its last write (fsync or rename)"
    else
      what="$what, during its writes"
      during_writes=$((during_writes + 1))
    fi
    if (( mid_save % 2 == 1 )); then
      # Under its final name, a complete temporary file must load and a partial one must be skipped.
      mv "$tmp" "$run/$name"
      if cmp -s "$run/$name" "$ref/$name"; then
        what="$what; the complete file moved to $name"
      else
        torn+=("$run/$name")
        partial_moved=$((partial_moved + 1))
        what="$what; the partial file moved to $name"
      fi
    else
      what="$what; temporary file left in place"
    fi
  elif [[ ${#finals[@]} -gt 0 && $(( t % 2 )) -eq 0 ]]; then
    newest="${finals[-1]}"
    size=$(stat -c %s "$newest")
    draw45
    cut=$(( r45 % size ))
    truncate -s "$cut" "$newest"
    torn+=("$newest")
    what="$(basename "$newest") truncated to $cut of $size bytes"
  fi

  # 3. The newest complete checkpoint: the newest file identical to the reference's.
  expect_step=0
  shopt -s nullglob
  for f in "$run"/checkpoint-*.safetensors; do
    if cmp -s "$f" "$ref/$(basename "$f")"; then
      s="$(basename "$f" .safetensors)"
      s=$((10#${s#checkpoint-}))
      (( s > expect_step )) && expect_step=$s
    fi
  done
  shopt -u nullglob

  "$driver" train --dir "$run" --steps "$steps" --every "$every" >"$trial_dir/resumed.out" 2>"$trial_dir/resumed.err" ||
    fail "trial $t: the resumed run failed: $(cat "$trial_dir/resumed.err")"
  if [[ $expect_step -eq 0 ]]; then
    grep -qx fresh "$trial_dir/resumed.out" || fail "trial $t: expected a fresh start, got: $(grep -v '^step\|^saved' "$trial_dir/resumed.out" | head -n 3)"
    fresh_restarts=$((fresh_restarts + 1))
  else
    want="resumed $expect_step $run/$(printf 'checkpoint-%010d.safetensors' "$expect_step")"
    grep -qxF "$want" "$trial_dir/resumed.out" ||
      fail "trial $t: expected '$want', got: $(grep -v '^step\|^saved' "$trial_dir/resumed.out" | head -n 3)"
  fi
  for f in "${torn[@]}"; do
    grep -q "^skipped .*$(basename "$f")" "$trial_dir/resumed.out" || fail "trial $t: the torn $(basename "$f") was not reported as skipped"
    torn_skipped=$((torn_skipped + 1))
  done

  # 4. Bit-for-bit losses after the resume, and the same final checkpoint.
  mapfile -t got < <(losses "$trial_dir/resumed.out")
  [[ ${#got[@]} -eq $((steps - expect_step)) ]] || fail "trial $t: the resumed run printed ${#got[@]} losses, expected $((steps - expect_step))"
  for ((i = 0; i < ${#got[@]}; ++i)); do
    [[ "${got[i]}" == "${ref_losses[expect_step + i]}" ]] ||
      fail "trial $t: the resumed run's '${got[i]}' differs from the reference's '${ref_losses[expect_step + i]}'"
  done
  cmp -s "$run/$final_file" "$ref/$final_file" || fail "trial $t: the resumed run's last checkpoint differs from the reference's"
  shopt -s nullglob
  left=("$run"/*.tmp.*)
  shopt -u nullglob
  stale_temporaries=$((stale_temporaries + ${#left[@]}))

  printf 'trial %3d: killed %3d ms after loss %2d, %2d losses before the kill, resumed at step %2d (%s)\n' \
    "$t" $((delay_ns / 1000000)) "$after" "$(losses "$trial_dir/killed.out" | wc -l)" "$expect_step" "$what"
done
rm -rf "$trial_dir" "$ref"  # on success only: a failed trial leaves its folder and the reference for a look
echo "crash_safety.sh: $trials/$trials trials passed in $(( ($(now_ns) - suite_start) / 1000000000 )) s (seed $seed):" \
     "$mid_save kills inside a save ($during_writes during its writes, $partial_moved of those moved under the final name)," \
     "$torn_skipped torn files detected and skipped, $fresh_restarts fresh restarts," \
     "$finished_before_kill runs finished before the kill; $stale_temporaries stale temporary files still in the run folders at the end"
