#!/usr/bin/env bash
# Installs the dependencies, builds everything (Release, Ninja) in build/ and runs the whole test suite.
# Exits non-zero on any failure. Extra CMake arguments may be passed in HYPERADAPT_CMAKE_ARGS, another build
# folder in HYPERADAPT_BUILD_DIR, a job count in HYPERADAPT_JOBS (default: all cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HYPERADAPT_BUILD_DIR:-$root/build}"
jobs="${HYPERADAPT_JOBS:-$(nproc 2>/dev/null || echo 2)}"

"$root/scripts/install_deps.sh"

# shellcheck disable=SC2086  # HYPERADAPT_CMAKE_ARGS is a list of arguments
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${HYPERADAPT_CMAKE_ARGS:-}
cmake --build "$build" --parallel "$jobs"
ctest --test-dir "$build" --output-on-failure --parallel "$jobs"
