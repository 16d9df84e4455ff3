#!/usr/bin/env bash
# 01_embed_sentences never prints a non-finite embedding, nor OK for NaN cosines: with one NaN planted in
# layer 1's query weight of a copy of all-MiniLM-L6-v2, the built-in self-check and the file mode both exit 1
# and name the module that first produced a NaN (encoder.layer.1.attention.self). The untouched checkpoint
# passes the self-check. Without the checkpoint: SKIPPED, exit 0.
#   embed_non_finite.sh <01_embed_sentences> <model dir> <work dir>   ($HYPERADAPT_MODEL_DIR overrides the model)
set -euo pipefail
bin=$1
model=${HYPERADAPT_MODEL_DIR:-$2}
work=$3
if [[ ! -f $model/model.safetensors ]]; then
  echo "SKIPPED: no checkpoint in $model (scripts/fetch_model.sh)"
  exit 0
fi
fail() { echo "FAIL: $*"; exit 1; }

out=$("$bin" --model "$model" --threads 2 2>&1) || fail "the untouched checkpoint fails its self-check: $out"
grep -q ': OK$' <<<"$out" || fail "no OK from the untouched checkpoint: $out"

rm -rf "$work"
mkdir -p "$work/model"
for f in config.json vocab.txt sentence_bert_config.json; do
  [[ -f $model/$f ]] && cp "$model/$f" "$work/model/"
done
cp "$model/model.safetensors" "$work/model/"
file=$work/model/model.safetensors
# safetensors: an 8-byte little-endian header length, the JSON header, then the data.
header_len=$(od -An -t u8 -N8 "$file" | tr -d ' ')
entry=$(dd if="$file" bs=1 skip=8 count="$header_len" 2>/dev/null |
        grep -o '"encoder.layer.1.attention.self.query.weight":{[^}]*}') || fail "no layer-1 query weight in $file"
grep -q '"dtype":"F32"' <<<"$entry" || fail "expected F32: $entry"
begin=$(sed -E 's/.*"data_offsets":\[([0-9]+),.*/\1/' <<<"$entry")
# Element 1000 of the (384, 384) weight becomes a quiet NaN (0x7fc00000, little-endian).
printf '\x00\x00\xc0\x7f' | dd of="$file" bs=1 seek=$((8 + header_len + begin + 4 * 1000)) conv=notrunc 2>/dev/null

check_refused() {  # <what> <exit status> <output>
  [[ $2 -eq 1 ]] || fail "$1: exit status $2, expected 1: $3"
  grep -q 'non-finite' <<<"$3" || fail "$1: no 'non-finite' in: $3"
  grep -q 'encoder.layer.1.attention.self' <<<"$3" || fail "$1: the module is not named: $3"
  if grep -q ': OK$' <<<"$3"; then fail "$1: printed OK: $3"; fi
}
rc=0
out=$("$bin" --model "$work/model" --threads 2 2>&1) || rc=$?
check_refused "self-check" "$rc" "$out"
rc=0
out=$(printf 'A first sentence.\nAnd a second one.\n' | "$bin" --model "$work/model" --threads 2 - 2>&1) || rc=$?
check_refused "sentences from stdin" "$rc" "$out"
grep -q 'sentence 1 ' <<<"$out" || fail "the sentence is not named: $out"
echo "PASS: $(grep -o 'anomaly detected[^(]*' <<<"$out" | head -1)"
rm -rf "$work"
