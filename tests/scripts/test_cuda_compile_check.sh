#!/usr/bin/env bash
# cmake/cuda_compile_check.sh, the CUDA tests' compile check on a machine without a GPU, must be able to fail:
# a clean source passes and leaves an empty object file (so the build tool sees it up to date); an error in
# host code or in a kernel fails the build and leaves no object; a command without -o is refused.
#   test_cuda_compile_check.sh <nvcc> <work dir>
set -uo pipefail
nvcc=$1
work=$2
check="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/cmake/cuda_compile_check.sh"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }

cat >good.cu <<'CU'
template <class T> __global__ void scale(T* x, T a) { x[threadIdx.x] *= a; }
template <class T> T twice(T v) { return v + v; }
int main() { scale<float><<<1, 1>>>(nullptr, twice(1.5f)); return 0; }
CU
cat >host_error.cu <<'CU'
template <class T> int size_of(const T& t) { return t.no_such_member(); }
int main() { return size_of(1); }
CU
cat >device_error.cu <<'CU'
__global__ void kernel(int* x) { *x = no_such_variable; }
int main() { return 0; }
CU

"$check" "$nvcc" -c good.cu -o good.o >good.log 2>&1 || fail "a clean source failed: $(cat good.log)"
[[ -f good.o && ! -s good.o ]] || fail "a clean source left no empty object file"
for source in host_error device_error; do
  if "$check" "$nvcc" -c "$source.cu" -o "$source.o" >"$source.log" 2>&1; then
    fail "$source.cu passed the check"
  fi
  [[ -e $source.o ]] && fail "$source.cu left an object file"
  grep -q "error" "$source.log" || fail "$source.cu: no error in the output: $(cat "$source.log")"
done
out=$("$check" "$nvcc" -c good.cu 2>&1)
rc=$?
[[ $rc -eq 2 && $out == *"no -o <object>"* ]] || fail "a command without -o: rc $rc, $out"

[[ $failed -eq 0 ]] && echo "cuda_compile_check.sh: passes a clean source, fails host and device errors, refuses no -o"
exit $((failed > 0))
