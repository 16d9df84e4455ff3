# shellcheck shell=bash disable=SC2154  # $threads comes from the sourcing script
# Sourced by benchmarks/compare_*.sh after they set $threads: picks the PyTorch peer's python and sets the
# thread environment both sides run under, for the comparison's command only.
#   PYTHON               the python to run PyTorch with; default the peer venv's, made by
#                        scripts/setup_pytorch_peer.sh (the newest torch from PyPI)
#   HYPERADAPT_PEER_VENV where that venv is (default ~/.cache/hyperadapt/peer-venv)
#   OMP_WAIT_POLICY      passed through; PASSIVE when unset
peer_venv="${HYPERADAPT_PEER_VENV:-$HOME/.cache/hyperadapt/peer-venv}"
python="${PYTHON:-$peer_venv/bin/python}"
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
  echo "$(basename "$0"): $python has no torch: run scripts/setup_pytorch_peer.sh (the newest PyTorch from PyPI," \
       "in $peer_venv), or set PYTHON to a python with torch" >&2
  exit 1
fi
# OPENBLAS_CORETYPE (set on some machines to pin OpenBLAS's kernels) is dropped so OpenBLAS picks the kernels
# for this CPU; the PyPI torch brings its own MKL and oneDNN and ignores it.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
# ... unless OpenBLAS 0.3.21 does not recognise the CPU and would fall back to its generic (Prescott) kernels:
# BENCH_OPENBLAS_CORETYPE=SkylakeX names the kernels to use instead.
[[ -n "${BENCH_OPENBLAS_CORETYPE:-}" ]] && export OPENBLAS_CORETYPE="$BENCH_OPENBLAS_CORETYPE"
export OMP_NUM_THREADS="$threads"
export HYPERADAPT_BENCH_THREADS="$threads"  # our layer and step benchmarks (bench::threads())
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# A PYTHON with Debian's torch reaches BLAS through libblas.so.3: point it at the OpenMP OpenBLAS our cblas
# provider links (the PyPI torch does not load libblas).
if [[ -d /usr/lib/x86_64-linux-gnu/openblas-openmp ]]; then
  export LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
