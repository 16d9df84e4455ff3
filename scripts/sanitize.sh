#!/usr/bin/env bash
# Builds the CPU test suite with AddressSanitizer + UndefinedBehaviorSanitizer (-DHYPERADAPT_SANITIZE=
# address,undefined: -fno-sanitize-recover=undefined, -fno-omit-frame-pointer) in build-sanitize/ and runs
# it. Any report ends the test that made it, so the run passes only when it is clean. Leaks are checked too.
#
#   HYPERADAPT_SANITIZE_BUILD_DIR  the build folder (default: build-sanitize)
#   HYPERADAPT_SANITIZE_TESTS      "all" (default): every CPU test; "ci": the subset scripts/test.sh runs
#                                  (below); "none": nothing; or CTest names separated by spaces
#   HYPERADAPT_JOBS                build and test jobs (default: all cores)
#   HYPERADAPT_CMAKE_ARGS          extra CMake arguments
#
#   HYPERADAPT_SANITIZE_OPTIMIZATION  the -O flag (default: -O0 for "ci", -O1 otherwise)
#
# Line tables (-g1): reports with file:line. "all" compiles with -O1: every test then runs at a fraction of
# Release speed instead of the hundredth that -O0 gives Eigen code. The CI subset handles files and buffers,
# not big products: at -O0 it runs in seconds all the same and compiles in half the time (test_checkpoint.cpp:
# 41 s against 88 s), and ASan misses nothing an optimiser would have folded away. Assertions stay on (no
# NDEBUG), Eigen's included.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HYPERADAPT_SANITIZE_BUILD_DIR:-$root/build-sanitize}"
jobs="${HYPERADAPT_JOBS:-$(nproc 2>/dev/null || echo 2)}"
tests="${HYPERADAPT_SANITIZE_TESTS:-all}"
optimization="${HYPERADAPT_SANITIZE_OPTIMIZATION:-$([[ "$tests" == ci ]] && echo -O0 || echo -O1)}"

# The CI subset (docs/hardening.md, "Sanitizers"): training checkpoints and their crash safety (kill -9 trials,
# a full disk), safetensors reading and writing, the optimizer, the parameter registry and the metrics: the
# code that handles files and raw buffers by hand. Under the sanitizers a translation unit takes about 2.4x
# its Release compile time, so the whole suite would not fit CI's 20 minutes next to the Release suite and
# the fuzzers; the file readers left out (GLUE/SuperGLUE, vocab, WordPiece) run under ASan + UBSan in the
# fuzzers, and "all" runs every CPU test.
# The kill -9 and full-tmpfs scripts (crash_safety_*) are left to "all": the Release suite runs them, their
# sanitized driver alone costs about 70 s of compiling, and the checkpoint code they drive is sanitized here
# through test_train_checkpoint and test_train_checkpoint_full_disk (CI stays under 20 minutes).
ci_tests="test_train_checkpoint test_train_checkpoint_full_disk test_io_safetensors test_optim test_nn_parameters
test_data_metrics test_serve_request_batcher"
case "$tests" in
  none) echo "sanitize.sh: HYPERADAPT_SANITIZE_TESTS=none: no sanitizer run"; exit 0 ;;
  ci) tests="$ci_tests" ;;
esac

# shellcheck disable=SC2086  # HYPERADAPT_CMAKE_ARGS is a list of arguments
# The tests' own -O flag (tests/CMakeLists.txt, HYPERADAPT_TEST_OPTIMIZATION) follows, so it is set too.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize "-DCMAKE_CXX_FLAGS_SANITIZE=$optimization -g1" \
  "-DHYPERADAPT_TEST_OPTIMIZATION=$optimization" -DHYPERADAPT_SANITIZE=address,undefined -DHYPERADAPT_ENABLE_CUDA=OFF \
  -DHYPERADAPT_BUILD_BENCHMARKS=OFF ${HYPERADAPT_CMAKE_ARGS:-}  # examples on: "all" runs their tests too

ctest_select=()
if [[ "$tests" == "all" ]]; then
  cmake --build "$build" --parallel "$jobs"
  # Not the compile-fail checks (the compiler only) nor the install checks (unsanitized downstream builds).
  ctest_select=(-LE "failtest|install")
else
  read -r -d '' -a names <<<"$tests" || true  # names may span lines
  targets=()
  for t in "${names[@]}"; do
    case "$t" in
      crash_safety_*) targets+=(crash_train) ;;  # a script around the crash_train driver
      *) targets+=("$t") ;;
    esac
  done
  cmake --build "$build" --parallel "$jobs" --target "${targets[@]}"
  regex="$(printf '|%s' "${names[@]}")"
  ctest_select=(-R "^(${regex:1})\$")
fi

# halt_on_error/abort: the first report ends the test with a failure. The test programs' own child processes
# (crash_safety.sh's killed runs) inherit the options.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_init_order=1:check_initialization_order=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# One share of the cores per test running beside the others (scripts/test.sh says why).
cores="$(nproc 2>/dev/null || echo 2)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( cores / jobs > 0 ? cores / jobs : 1 ))}"
export OMP_WAIT_POLICY=PASSIVE
ctest --test-dir "$build" --output-on-failure --parallel "$jobs" "${ctest_select[@]}"
