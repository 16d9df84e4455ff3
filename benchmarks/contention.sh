#!/usr/bin/env bash
# How a 2-thread run degrades when another process holds a core (issue 11, item 6). Starts the load itself:
# one busy-looping process, no pinning (the scheduler places it, as another user's job would be placed).
# Cases, each quiet, then beside the load, then on one thread beside the load:
#   example   the README's built-in example (02_camtl_glue with no data: synthetic tasks), wall seconds
#   pha-step  the MiniLM PHA training step on GLUE lengths in length groups (bench_pha_step, OpenBLAS), ms/step
# Prints each case's times and the ratios the issue bounds: loaded / quiet (≤ 2 wanted) and loaded with
# `threads` / loaded with one thread (≤ 1 wanted).
#   usage: benchmarks/contention.sh [build-dir] [threads] [repeats]
#   EXTRA_ENV="OMP_DYNAMIC=true"  environment added to every timed command (to compare threading settings)
# OMP_WAIT_POLICY is PASSIVE unless set; OPENBLAS_CORETYPE is unset for this command only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${1:-$root/build}"
threads="${2:-2}"
repeats="${3:-2}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
unset OPENBLAS_CORETYPE
# A CPU that OpenBLAS 0.3.21 does not recognise gets its generic (Prescott, SSE3) kernels: name the kernels
# to use instead, e.g. BENCH_OPENBLAS_CORETYPE=SkylakeX (docs/benchmarks.md says which each figure ran).
[[ -n "${BENCH_OPENBLAS_CORETYPE:-}" ]] && export OPENBLAS_CORETYPE="$BENCH_OPENBLAS_CORETYPE"
read -r -a extra <<<"${EXTRA_ENV:-}"

example="$build/examples/02_camtl_glue"
step="$build/benchmarks/bench_pha_step"
# The benchmarks are not in the default build target (benchmarks/CMakeLists.txt): build what runs here (a
# folder of copied binaries, with no CMakeCache.txt, is run as it is: an earlier version's, to compare).
[[ -f "$build/CMakeCache.txt" ]] && cmake --build "$build" --target 02_camtl_glue bench_pha_step
for f in "$example" "$step"; do
  [[ -x "$f" ]] || { echo "contention.sh: $f is missing (build it first)" >&2; exit 1; }
done

load_pid=""
tmp="$(mktemp)"
start_load() { (while :; do :; done) & load_pid=$!; sleep 1; }
stop_load() { [[ -n "$load_pid" ]] && kill "$load_pid" 2>/dev/null; wait "$load_pid" 2>/dev/null || true; load_pid=""; }
trap 'stop_load; rm -f "$tmp"' EXIT

# The best of `repeats` runs (the machine is shared; the best is the least disturbed by anything else).
time_example() {  # threads -> seconds
  local best="" t
  for _ in $(seq "$repeats"); do
    /usr/bin/time -o "$tmp" -f '%e' env "${extra[@]}" "$example" --threads "$1" >/dev/null 2>&1
    t="$(tail -1 "$tmp")"
    if [[ -z "$best" ]] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best="$t"; fi
  done
  echo "$best"
}
time_step() {  # threads -> ms/step (bench_pha_step registers threads 1 and 2 for length groups)
  local out
  out="$(env "${extra[@]}" "$step" --benchmark_filter="pha_step/cblas/threads:$1/batches:3" \
         --benchmark_repetitions="$repeats" --benchmark_format=json 2>/dev/null)"
  python3 -c 'import json, sys
times = [b["real_time"] for b in json.load(sys.stdin)["benchmarks"] if b.get("run_type") == "iteration"]
print("%.1f" % min(times) if times else "nan")' <<<"$out"
}

declare -A r
for case in example pha-step; do
  fn=time_example; [[ "$case" == pha-step ]] && fn=time_step
  r[$case,quiet]="$($fn "$threads")"
  start_load
  r[$case,loaded]="$($fn "$threads")"
  r[$case,loaded1]="$($fn 1)"
  stop_load
done

echo "date $(date -u +%F' '%H:%M)  threads $threads  repeats $repeats (best of)  OMP_WAIT_POLICY=$OMP_WAIT_POLICY  ${EXTRA_ENV:-}"
printf '%-9s %10s %10s %14s %16s %20s\n' case quiet loaded "loaded 1 thr" "loaded/quiet" "loaded/loaded 1 thr"
for case in example pha-step; do
  unit=s; [[ "$case" == pha-step ]] && unit=ms
  python3 - "$case" "$unit" "${r[$case,quiet]}" "${r[$case,loaded]}" "${r[$case,loaded1]}" <<'PY'
import sys
case, unit, q, l, l1 = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
print(f"{case:9s} {q:8.1f}{unit:>2s} {l:8.1f}{unit:>2s} {l1:12.1f}{unit:>2s} {l / q:15.2f}x {l / l1:19.2f}x")
PY
done
echo "wanted: loaded/quiet <= 2, loaded/loaded 1 thr <= 1 (issue 11)"
