#!/bin/sh
# CUDA_COMPILER_LAUNCHER of the CUDA tests on a machine without a GPU (HYPERADAPT_CUDA_TESTS_COMPILE_ONLY): runs
# the nvcc command it is given with the host compiler's -fsyntax-only, so the device code is compiled in full
# (cicc, ptxas) and the host code is parsed, instantiated and checked, but not compiled to machine code; then
# leaves an empty object file where nvcc's would have been, so the build tool sees the source as up to date
# until it or a header it includes changes (nvcc still writes the dependency file).
set -e
out=
previous=
for argument in "$@"; do
  if [ "$previous" = "-o" ]; then out=$argument; fi
  previous=$argument
done
if [ -z "$out" ]; then
  echo "cuda_compile_check.sh: no -o <object> in the nvcc command" >&2
  exit 2
fi
"$@" -Xcompiler=-fsyntax-only
: >"$out"
