#!/usr/bin/env bash
# What a GPU machine checks, in one run (the device tool gives a session minutes, not hours): the CUDA backend's
# primitives and whole models against the CPU, a 1-rank NCCL training run against the plain one, then the PHA training step against PyTorch on the same GPU.
# Run on the GPU machine from the repository root after scripts/device_carry.sh filled .devcarry here:
#   run(command="bash scripts/device_checks.sh", carry=[".devcarry"])
# Logs and the benchmark JSON go to $OUT (or ./device-out). CHECKS="tests bench" (default) picks the parts.
set -uo pipefail
out="${OUT:-$PWD/device-out}"
mkdir -p "$out"
carry="$PWD/.devcarry"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
libs="$carry/lib"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && libs="$libs:$d"; done
# cuBLAS from PyTorch's wheels when the toolkit's is not on the default path
py_cublas="$(python3 -c 'import nvidia.cublas, os; print(os.path.join(os.path.dirname(nvidia.cublas.__file__), "lib"))' 2>/dev/null || true)"
[ -n "$py_cublas" ] && libs="$libs:$py_cublas"
# NCCL likewise (test_nccl_training)
py_nccl="$(python3 -c 'import nvidia.nccl, os; print(os.path.join(os.path.dirname(nvidia.nccl.__file__), "lib"))' 2>/dev/null || true)"
[ -n "$py_nccl" ] && libs="$libs:$py_nccl"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# One node, one GPU: NCCL's bootstrap over the loopback interface (the device machine reaches nothing outside),
# and its warnings in the test's log.
export NCCL_SOCKET_IFNAME="${NCCL_SOCKET_IFNAME:-lo}" NCCL_DEBUG="${NCCL_DEBUG:-WARN}"
status=0
checks="${CHECKS:-tests bench}"
[[ " $checks " == *" tests "* ]] && for t in test_cuda_backend test_cuda_models test_nccl_training; do
  ldd "$carry/tests/$t" | grep "not found" && status=1
  "$carry/tests/$t" --log_level=test_suite --report_level=short --color_output=no > "$out/$t.log" 2>&1
  rc=$?
  echo "$t: rc $rc"; grep -E "CUDA device|worst|error|failed|passed|Leaving test suite \"cuda\"" "$out/$t.log" | head -40
  [ $rc -eq 0 ] || status=1
done
if [[ " $checks " == *" bench "* ]]; then
  DEVICE=cuda PYTHON=python3 bash benchmarks/compare_pha_step.sh "$carry" 1 2>&1 | tee "$out/compare_pha_step.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
exit $status
