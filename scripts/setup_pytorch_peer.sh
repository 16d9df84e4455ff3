#!/usr/bin/env bash
# Creates the Python virtual environment with the newest PyTorch from PyPI that the benchmark comparisons
# (benchmarks/compare_*.sh, benchmarks/pytorch/*.py, shared/peer/encoder_layer_best.py) run against, and prints
# its python's path on stdout (everything else goes to stderr):
#
#   scripts/setup_pytorch_peer.sh [--upgrade]
#   python="$(scripts/setup_pytorch_peer.sh)"
#
# Where: ${HYPERADAPT_PEER_VENV:-$HOME/.cache/hyperadapt/peer-venv}, outside the repository.
# What: `pip install torch numpy` (then tokenizers and transformers) with no version pinned (the newest torch at
# the time it is installed), with all of torch's requirements. PyPI has one Linux x86-64 torch wheel, built with
# CUDA, whose CPU part carries MKL and oneDNN; libtorch.so links libtorch_cuda.so, which links cuBLAS, cuDNN,
# cuFile, cuSPARSELt, NCCL, NVSHMEM, ...,
# so `pip install --no-deps torch` gives a torch that fails to import (here: libcufile.so.0 not found) on a machine
# without those libraries: the CUDA packages (about 3.0 GB of wheels with torch 2.15.0: torch 0.54 GB, CUDA and triton 2.45 GB) have to
# come along even for the CPU peer.
# Idempotent: when the venv already imports torch nothing is installed; --upgrade moves it to the newest torch.
# The version installed is recorded in $venv/hyperadapt-peer.txt.
# Base interpreter: HYPERADAPT_PEER_BASE_PYTHON, default Debian's /usr/bin/python3 (python3 on PATH if absent);
# torch 2.15 needs Python >= 3.11. python3-venv comes from apt when the venv module is missing (root or sudo -n).
set -euo pipefail

venv="${HYPERADAPT_PEER_VENV:-$HOME/.cache/hyperadapt/peer-venv}"
upgrade=0
for arg in "$@"; do
  case "$arg" in
    --upgrade) upgrade=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
    *) echo "setup_pytorch_peer.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
log() { echo "setup_pytorch_peer.sh: $*" >&2; }

if [ -n "${HYPERADAPT_PEER_BASE_PYTHON:-}" ]; then
  base="$HYPERADAPT_PEER_BASE_PYTHON"
elif [ -x /usr/bin/python3 ]; then
  base=/usr/bin/python3
else
  base="$(command -v python3)"
fi

if [ ! -x "$venv/bin/python" ]; then
  if ! "$base" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then as_root=(); else as_root=(sudo -n); fi
    log "installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -q </dev/null >&2
    "${as_root[@]}" apt-get install -y -q --no-install-recommends python3-venv </dev/null >&2
  fi
  log "creating $venv from $base"
  mkdir -p "$(dirname "$venv")"
  rm -rf "$venv"
  "$base" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip install --disable-pip-version-check -q)

if [ "$upgrade" -eq 1 ] || ! "$py" -c 'import torch' >/dev/null 2>&1; then
  log "installing the newest torch from PyPI with its requirements (CUDA packages included: about 3 GB)"
  "${pip[@]}" --upgrade torch numpy >&2
  mode="pip install torch numpy"
  "$py" - "$venv" "$mode" <<'PY'
import datetime, os, sys, torch
venv, mode = sys.argv[1], sys.argv[2]
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(venv) for f in fs
           if not os.path.islink(os.path.join(d, f)))
with open(os.path.join(venv, "hyperadapt-peer.txt"), "w") as out:
    import numpy
    print(f"torch {torch.__version__} (numpy {numpy.__version__}) installed {datetime.date.today()} ({mode}); "
          f"venv {size / 2**20:.0f} MiB", file=out)
PY
fi

# Hugging Face's tokenizers (Rust WordPiece): the peer of the predictor benchmark (benchmarks/compare_predict.sh)
# tokenizes as a PyTorch user would.
if ! "$py" -c 'import tokenizers' >/dev/null 2>&1; then
  log "installing tokenizers from PyPI"
  "${pip[@]}" tokenizers >&2
fi

# Hugging Face's transformers: the peer's BERT for the results' reference points (scripts/pytorch_reference.py
# fine-tunes the same MiniLM with our recipes there).
if ! "$py" -c 'import transformers' >/dev/null 2>&1; then
  log "installing transformers from PyPI"
  "${pip[@]}" transformers >&2
fi

# A working CPU torch: imports, MKL and oneDNN present, a bf16 autocast matmul runs.
"$py" - <<'PY' >&2
import torch
a = torch.randn(64, 64)
with torch.autocast("cpu", dtype=torch.bfloat16):
    c = a @ a
assert c.dtype == torch.bfloat16, c.dtype
print(f"setup_pytorch_peer.sh: torch {torch.__version__}, MKL {torch.backends.mkl.is_available()}, "
      f"oneDNN {torch.backends.mkldnn.is_available()}, CUDA build {torch.version.cuda}")
PY
[ -f "$venv/hyperadapt-peer.txt" ] && log "$(cat "$venv/hyperadapt-peer.txt")"
echo "$py"
