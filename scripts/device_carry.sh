#!/usr/bin/env bash
# Builds the GPU checks here (nvcc compiles without a GPU) and packs them with the shared libraries the
# device machine lacks (Boost.Test, Google Benchmark) into .devcarry/, the folder a GPU machine receives
# (git ignores it); scripts/device_checks.sh runs them there. The binaries need only glibc <= this
# machine's and the CUDA 13 runtime, cuBLAS and NCCL of the GPU machine (libnccl is ~220 MB, over the carry
# limit: device_checks.sh finds the one of PyTorch's wheels there).
#   usage: scripts/device_carry.sh [build-dir]      (default build-cuda; configured with CUDA and benchmarks)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-cuda}"
carry="$root/.devcarry"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHYPERADAPT_ENABLE_CUDA=ON \
  -DHYPERADAPT_BUILD_BENCHMARKS=ON -DHYPERADAPT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target test_cuda_backend test_cuda_models test_nccl_training bench_pha_step_cuda -j "${JOBS:-1}"
rm -rf "$carry"
mkdir -p "$carry/tests" "$carry/benchmarks" "$carry/lib"
cp "$build/tests/test_cuda_backend" "$build/tests/test_cuda_models" "$build/tests/test_nccl_training" "$carry/tests/"
cp "$build/benchmarks/bench_pha_step_cuda" "$carry/benchmarks/"
for bin in "$carry"/tests/* "$carry"/benchmarks/*; do
  ldd "$bin" | awk '/libboost|libbenchmark|libgomp/ {print $3}'
done | sort -u | xargs -r cp -L -t "$carry/lib/"
du -sh "$carry"
