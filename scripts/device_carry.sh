#!/usr/bin/env bash
# Builds the GPU checks here (nvcc compiles without a GPU) and packs them with the shared libraries the
# device machine lacks (Boost.Test, Google Benchmark) into .devcarry/, the folder a GPU machine receives
# (git ignores it); scripts/device_checks.sh runs them there. The binaries need only glibc <= this
# machine's and the CUDA 13 runtime, cuBLAS and NCCL of the GPU machine (libnccl is ~220 MB, over the carry
# limit: device_checks.sh finds the one of PyTorch's wheels there). 02_camtl_glue and 03_pha_fewshot (--device cuda
# against --device cpu) also need OpenBLAS, oneDNN and utf8proc, 80 MB together: they travel xz-compressed (lib-examples.tar.xz),
# with the small checkpoint and GLUE folder of tests/examples/make_inputs.py.
# With CARRY_SANITIZER=1 it adds NVIDIA's compute-sanitizer (the PyPI wheel nvidia-cuda-sanitizer-api of this
# toolkit's release, 14 MB) for device_checks.sh's CHECKS=sanitize (memcheck and racecheck of the CUDA tests); off by
# default, the carry's 64 MiB are otherwise nearly used.
#   usage: scripts/device_carry.sh [build-dir]      (default build-cuda; configured with CUDA and benchmarks)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build-cuda}"
carry="$root/.devcarry"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHYPERADAPT_ENABLE_CUDA=ON \
  -DHYPERADAPT_BUILD_BENCHMARKS=ON -DHYPERADAPT_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" --target test_cuda_backend test_cuda_models test_nccl_training bench_pha_step_cuda bench_camtl_step_cuda 00_train_encoder 01_embed_sentences 02_camtl_glue 03_pha_fewshot 04_compose_custom_model \
  -j "${JOBS:-1}"
rm -rf "$carry"
mkdir -p "$carry/tests" "$carry/benchmarks" "$carry/examples" "$carry/lib" "$carry/inputs"
cp "$build/tests/test_cuda_backend" "$build/tests/test_cuda_models" "$build/tests/test_nccl_training" "$carry/tests/"
cp "$build/benchmarks/bench_pha_step_cuda" "$build/benchmarks/bench_camtl_step_cuda" "$carry/benchmarks/"
cp "$build/examples/00_train_encoder" "$build/examples/01_embed_sentences" "$build/examples/02_camtl_glue" \
   "$build/examples/03_pha_fewshot" "$build/examples/04_compose_custom_model" "$carry/examples/"
for bin in "$carry"/tests/* "$carry"/benchmarks/*; do
  ldd "$bin" | awk '/libboost|libbenchmark|libgomp/ {print $3}'
done | sort -u | xargs -r cp -L -t "$carry/lib/"
# The example's libraries beyond glibc, libstdc++ and CUDA's (the device machine is bare), compressed.
staged="$(mktemp -d)"
trap 'rm -rf "$staged"' EXIT
ldd "$carry/examples/02_camtl_glue" | awk '$3 ~ /^\// {print $3}' |
  grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|ld-linux[^/]*|libdl|libpthread|librt|libcudart|libcublas[^/]*)\.so' |
  xargs -r cp -L -t "$staged/"
tar -C "$staged" -cJf "$carry/lib-examples.tar.xz" .
if [[ "${CARRY_SANITIZER:-0}" == 1 ]]; then
  # The wheel of the nvcc release in use (13.0.x: 13.0.*), unpacked on the device by device_checks.sh.
  release="$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')"
  [[ -n "$release" ]] || release="$(/usr/local/cuda/bin/nvcc --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')"
  mkdir -p "$carry/sanitizer"
  python3 -m pip download --quiet --no-deps "nvidia-cuda-sanitizer-api==$release.*" -d "$carry/sanitizer"
fi
python3 "$root/tests/examples/make_inputs.py" checkpoint "$carry/inputs/checkpoint" good
python3 "$root/tests/examples/make_inputs.py" glue "$carry/inputs/data"
du -sh "$carry"
