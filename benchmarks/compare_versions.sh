#!/usr/bin/env bash
# The library against an earlier version of itself: the CA-MTL and PHA training-step benchmarks
# (bench_camtl_step, bench_pha_step) of two builds, run alternately -- old then new, round after round -- so
# that the machine's drift falls on both sides alike. Prints each round's new/old time ratio and, per case,
# the median ratio and the geometric mean with its 95 % t interval (over the rounds' log ratios). Issue 10's
# "no slower than before (±3 %)" is read off the interval.
#
#   benchmarks/compare_versions.sh OLD_BUILD NEW_BUILD [rounds=8] [threads=2] [case=synthetic]
#
# The order alternates (old then new in odd rounds, new then old in even ones), so that a drift within a
# round does not always fall on the same side.
#
# OLD_BUILD / NEW_BUILD: build folders holding benchmarks/bench_camtl_step and bench_pha_step (an older
# commit's from a git worktree: `git worktree add ../old <commit> && cmake -S ../old -B ../old/build -G Ninja
# -DCMAKE_BUILD_TYPE=Release && ninja -C ../old/build bench_camtl_step bench_pha_step`). case: synthetic (the
# fixed 32 x 128 batch that every version has; the default) or an extra --benchmark_filter regex.
# The OpenBLAS cases run (OpenMP OpenBLAS, OMP_WAIT_POLICY=PASSIVE unless set, OPENBLAS_CORETYPE unset unless
# BENCH_OPENBLAS_CORETYPE names the kernels).
# Needs a quiet machine: nothing else may run while it does.
set -euo pipefail
old="$1"
new="$2"
rounds="${3:-8}"
threads="${4:-2}"
which="${5:-synthetic}"
for b in "$old" "$new"; do
  for bench in bench_camtl_step bench_pha_step; do
    [[ -x "$b/benchmarks/$bench" ]] || { echo "compare_versions.sh: $b/benchmarks/$bench is not built" >&2; exit 2; }
  done
done
if [[ "$which" == synthetic ]]; then
  # Before length-aware batches a case was named <model>_step/cblas/threads:N; since, .../batches:0.
  filter="^(camtl|pha)_step/cblas/threads:${threads}(/batches:0)?/min_time"
else
  filter="$which"
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" OMP_NUM_THREADS="$threads" HYPERADAPT_BENCH_THREADS="$threads"
unset OPENBLAS_CORETYPE
# A CPU that OpenBLAS 0.3.21 does not recognise gets its generic (Prescott, SSE3) kernels: name the kernels
# to use instead, e.g. BENCH_OPENBLAS_CORETYPE=SkylakeX (docs/benchmarks.md says which each figure ran).
[[ -n "${BENCH_OPENBLAS_CORETYPE:-}" ]] && export OPENBLAS_CORETYPE="$BENCH_OPENBLAS_CORETYPE"
echo "compare_versions.sh: old $old ($(cat "$old/source_commit" 2>/dev/null || echo '?')), new $new" \
     "($(cat "$new/source_commit" 2>/dev/null || echo '?')), $rounds rounds, $threads threads, OMP_WAIT_POLICY=$OMP_WAIT_POLICY," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
for r in $(seq 1 "$rounds"); do
  for bench in bench_camtl_step bench_pha_step; do
    sides="old new"; (( r % 2 == 0 )) && sides="new old"
    for side in $sides; do
      dir="$old"; [[ "$side" == new ]] && dir="$new"
      if ! "$dir/benchmarks/$bench" --benchmark_filter="$filter" --benchmark_format=json \
          --benchmark_out="$out/$r.$bench.$side.json" >/dev/null 2>"$out/err" || [[ ! -s "$out/$r.$bench.$side.json" ]]; then
        echo "compare_versions.sh: $dir/benchmarks/$bench --benchmark_filter='$filter' gave no result:" >&2
        cat "$out/err" >&2
        exit 1
      fi
    done
  done
  echo "compare_versions.sh: round $r of $rounds done ($(date +%H:%M:%S))"
done
python3 - "$out" "$rounds" <<'PY'
import json, math, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
# t quantiles (0.975) for small samples
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 19: 2.093, 24: 2.064, 29: 2.045,
        39: 2.023, 59: 2.001, 89: 1.987, 119: 1.980}
def t975(df):
    return T975.get(df) or T975[max(k for k in T975 if k <= df)]
def ms(path):
    b = [x for x in json.load(open(path))["benchmarks"] if x.get("run_type", "iteration") == "iteration"]
    if len(b) != 1:
        sys.exit(f"compare_versions.sh: {path}: expected one case, found {len(b)}")
    return b[0]["real_time"] * {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b[0]["time_unit"]], b[0]["iterations"]
for bench in ("bench_camtl_step", "bench_pha_step"):
    ratios, olds, news = [], [], []
    for r in range(1, rounds + 1):
        (o, oi), (n, ni) = ms(f"{out}/{r}.{bench}.old.json"), ms(f"{out}/{r}.{bench}.new.json")
        olds.append(o); news.append(n); ratios.append(n / o)
        print(f"{bench} round {r}: old {o:.1f} ms ({oi} steps), new {n:.1f} ms ({ni} steps), new/old {n / o:.3f}")
    logs = [math.log(x) for x in ratios]
    mean = statistics.fmean(logs)
    half = t975(len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs)) if len(logs) > 1 else float("nan")
    print(f"{bench}: old median {statistics.median(olds):.1f} ms/step, new median {statistics.median(news):.1f}; "
          f"new/old time: median {statistics.median(ratios):.3f}, geometric mean {math.exp(mean):.3f} "
          f"[95 % t interval {math.exp(mean - half):.3f}, {math.exp(mean + half):.3f}] over {len(ratios)} rounds")
PY
