#!/usr/bin/env bash
# Creates the Python environment that computes hyperadapt's reference numbers with Hugging Face
# transformers (tests/reference/*.py): Debian's PyTorch (python3-torch 1.13, CPU) seen through a venv with
# --system-site-packages, plus pinned transformers and tokenizers from PyPI.
#
#   scripts/setup_reference_env.sh [DIR]     DIR defaults to <repo>/.deps/refvenv (git-ignored)
#   DIR/bin/python tests/reference/make_bert_reference.py
#
# Idempotent: a second run installs nothing. Needs root (or passwordless sudo) for apt the first time.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo/.deps/refvenv}"
# Pins: the versions the committed reference files were made with (transformers 4.40 still accepts torch
# 1.13; tokenizers 0.19 is what it requires), and every package pip brought in with them, so a rebuild months
# later resolves to the same set.
pip_packages=(transformers==4.40.2 tokenizers==0.19.1 safetensors==0.8.0 huggingface_hub==0.36.2 hf_xet==1.8.0
              filelock==4.3.1 fsspec==2026.9.0 packaging==26.4 regex==2026.11.19 tqdm==4.70.1)
apt_packages=(python3-torch python3-venv python3-pip)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then as_root=(); else as_root=(sudo -n); fi
  echo "setup_reference_env.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -q </dev/null
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

# Debian's python, not whatever python3 comes first on PATH: python3-torch is installed for it only.
if [ ! -x "$venv/bin/python" ] || ! grep -q '^include-system-site-packages = true' "$venv/pyvenv.cfg" 2>/dev/null; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi

check="import sys, torch
from importlib.metadata import version
pins = dict(p.split('==') for p in sys.argv[1:])
wrong = {n: version(n) for n in pins if version(n) != pins[n]}
assert not wrong, wrong"
if ! "$venv/bin/python" -c "$check" "${pip_packages[@]}" >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install --disable-pip-version-check -q "${pip_packages[@]}"
fi
"$venv/bin/python" -c "$check" "${pip_packages[@]}"
"$venv/bin/python" -c 'import torch, transformers, tokenizers; print("reference environment:", torch.__version__, "torch,", transformers.__version__, "transformers,", tokenizers.__version__, "tokenizers")'
echo "python: $venv/bin/python"
