#!/usr/bin/env bash
# Installs the dependencies, builds the first example (examples/00_train_encoder.cpp) and runs it: a small
# BERT-style encoder trained from scratch on a built-in synthetic task. Arguments go to the example, e.g.
#   scripts/example.sh --epochs 10 --seed 3 --threads 2
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${HYPERADAPT_BUILD_DIR:-$root/build}"
jobs="${HYPERADAPT_JOBS:-$(nproc 2>/dev/null || echo 2)}"

"$root/scripts/install_deps.sh"

# shellcheck disable=SC2086  # HYPERADAPT_CMAKE_ARGS is a list of arguments
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${HYPERADAPT_CMAKE_ARGS:-}
cmake --build "$build" --parallel "$jobs" --target 00_train_encoder
"$build/examples/00_train_encoder" "$@"
