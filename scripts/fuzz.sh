#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (-fsanitize=fuzzer,address,undefined) and runs each
# on its corpus: the seeds of make_fuzz_seeds, rows of the shared task data when it is there, and the
# corpus earlier runs grew. Any crash, sanitizer report, leak, timeout (> 10 s per input), allocation past
# 2 GB or exception other than hyperadapt's own fails the script, leaving the input in the build folder.
#
#   scripts/fuzz.sh [--seconds N] [--runs N] [--targets "safetensors vocab ..."] [--build DIR] [--jobs N] [--fork N]
#                  [--max-len BYTES]
#
# --seconds N: at most N seconds per target (default 20 when --runs is not given: the CI budget).
# --runs N: N executions per target (the recorded campaign: --runs 10000000, docs/hardening.md); with
# --seconds too, whichever comes first. --fork N: N processes on the one corpus (libFuzzer's -fork), the runs
# counted over all of them. --max-len BYTES: the largest input libFuzzer makes (default 16384; libFuzzer's own
# default is 4096). Without clang or libFuzzer the script says so and exits 0, so that scripts/test.sh
# still runs everywhere else.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds=""
runs=""
targets="safetensors bert_config vocab wordpiece glue_tsv superglue_jsonl checkpoint model_card"
build="${HYPERADAPT_FUZZ_BUILD_DIR:-$root/build-fuzz}"
jobs="${HYPERADAPT_JOBS:-$(nproc 2>/dev/null || echo 2)}"
fork=""
max_len=16384
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --fork) fork="$2"; shift 2 ;;
    --max-len) max_len="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | cut -c3-; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -z "$runs" && -z "$seconds" ]] && seconds=20

clang="${HYPERADAPT_FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}"
if [[ -z "$clang" ]]; then
  echo "fuzz.sh: SKIPPED: clang++ not found (Debian: apt-get install clang libclang-rt-dev); no fuzz targets run"
  exit 0
fi
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$probe/p.cpp"
if ! "$clang" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2>"$probe/err"; then
  echo "fuzz.sh: SKIPPED: $clang cannot link libFuzzer ($(head -n 1 "$probe/err")); no fuzz targets run"
  exit 0
fi

# HYPERADAPT_FUZZ_OPTIMIZATION: the optimisation flags (default "-O2 -g", the campaigns'; scripts/test.sh: "-O1 -g1");
# NDEBUG as in RelWithDebInfo, the build type the campaigns were recorded with.
cmake -S "$root/tests/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$clang" -DCMAKE_BUILD_TYPE=Fuzz \
  "-DCMAKE_CXX_FLAGS_FUZZ=${HYPERADAPT_FUZZ_OPTIMIZATION:--O2 -g} -DNDEBUG" >/dev/null
# shellcheck disable=SC2086  # a list of target names
cmake --build "$build" --parallel "$jobs" --target make_fuzz_seeds $(printf 'fuzz_%s ' $targets)

seeds="$build/seeds"
rm -rf "$seeds"
"$build/make_fuzz_seeds" "$seeds"
# Rows of the real task data (not kept in the repository): the first lines of a few GLUE and SuperGLUE
# files, each behind the selector byte of its task, and the head of the BERT vocabulary.
data="${HYPERADAPT_SHARED_DATA:-$root/../shared/data}"
add_rows() {  # add_rows TARGET SELECTOR_BYTE NAME FILE
  [[ -f "$4" ]] || return 0
  { printf "\\x$(printf '%02x' "$2")"; head -n 12 "$4"; } >"$seeds/$1/shared_$3"
}
add_rows glue_tsv 0 cola "$data/glue/CoLA/dev.tsv"
add_rows glue_tsv 2 mrpc "$data/glue/MRPC/dev.tsv"
add_rows glue_tsv 3 stsb "$data/glue/STS-B/dev.tsv"
add_rows glue_tsv 5 mnli "$data/glue/MNLI/dev_matched.tsv"
add_rows glue_tsv 7 rte "$data/glue/RTE/dev.tsv"
add_rows superglue_jsonl 0 cb "$data/superglue/CB/val.jsonl"
add_rows superglue_jsonl 1 copa "$data/superglue/COPA/val.jsonl"
add_rows superglue_jsonl 3 boolq "$data/superglue/BoolQ/val.jsonl"
add_rows superglue_jsonl 4 wic "$data/superglue/WiC/val.jsonl"
if [[ -f "$data/glue/RTE/dev.tsv" ]]; then
  i=0
  while IFS=$'\t' read -r _ s1 s2 _ && (( i < 24 )); do
    { printf "\\x$(printf '%02x' $(( i * 37 % 256 )))"; printf '%s\t%s' "$s1" "$s2"; } >"$seeds/wordpiece/shared_rte_$i"
    i=$((i + 1))
  done < <(tail -n +2 "$data/glue/RTE/dev.tsv")
fi
[[ -f "$data/vocab/bert-base-uncased-vocab.txt" ]] &&
  head -n 2000 "$data/vocab/bert-base-uncased-vocab.txt" >"$seeds/vocab/shared_bert_head.txt"

status=0
for t in $targets; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus" "$build/artifacts/$t"
  budget=()
  [[ -n "$runs" ]] && budget+=(-runs="$runs")
  [[ -n "$seconds" ]] && budget+=(-max_total_time="$seconds")
  # --fork N: libFuzzer's fork mode, N processes fuzzing the one corpus (a campaign on N cores; -runs counts the
  # executions of all of them); it prints "#N: cov ..." lines and no final stat:: lines.
  [[ -n "$fork" ]] && budget+=(-fork="$fork")
  log="$build/fuzz_$t.log"
  echo "fuzz.sh: fuzz_$t (${budget[*]}), log $log"
  start=$(date +%s)
  if ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
     "$build/fuzz_$t" "${budget[@]}" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 -max_len="$max_len" \
       -dict="$root/tests/fuzz/json.dict" -print_funcs=0 -artifact_prefix="$build/artifacts/$t/" -print_final_stats=1 \
       "$corpus" "$seeds/$t" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [^ ]+' || true)
    if [[ -n "$fork" ]]; then  # fork mode: the last "#N: cov ..." line has the total
      execs=$(grep -oE '^#[0-9]+: cov' "$log" | tail -n 1 | grep -oE '[0-9]+' | head -n 1)
      rate=$(( ${execs:-0} / ( $(date +%s) - start > 0 ? $(date +%s) - start : 1 ) ))
    fi
    echo "fuzz.sh: fuzz_$t: ${execs:-?} executions in $(( $(date +%s) - start )) s (${rate:-?}/s), ${cov:-cov ?}, no findings"
  else
    status=1
    echo "fuzz.sh: fuzz_$t FAILED; the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
  fi
done
exit $status
