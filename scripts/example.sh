#!/usr/bin/env bash
# Installs the dependencies, builds the main example (examples/02_camtl_glue.cpp; its recipe is
# examples/recipes/camtl_glue.cpp) and runs it: CA-MTL on a small random encoder and three built-in synthetic
# tasks, no download needed. Arguments go to the example, e.g.
#   scripts/example.sh --epochs 5 --seed 3 --threads 2 --sampler proportional
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HYPERADAPT_BUILD_DIR:-$root/build}"
jobs="${HYPERADAPT_JOBS:-$(nproc 2>/dev/null || echo 2)}"

"$root/scripts/install_deps.sh"

# shellcheck disable=SC2086  # HYPERADAPT_CMAKE_ARGS is a list of arguments
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${HYPERADAPT_CMAKE_ARGS:-}
cmake --build "$build" --parallel "$jobs" --target 02_camtl_glue
"$build/examples/02_camtl_glue" "$@"
