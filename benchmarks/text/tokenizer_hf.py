#!/usr/bin/env python3
"""Hugging Face tokenizer throughput on one thread, on the sentences bench_tokenizer uses (SST-2 dev + QNLI dev
questions and sentences from the shared data), for docs/benchmarks.md.

    python benchmarks/text/tokenizer_hf.py [--shared-data DIR] [--repeats 5] [--slow]

Measures the Rust tokenizer (tokenizers.BertWordPieceTokenizer, lowercase, the BERT normalizer and
pre-tokenizer) encoding one sentence per call and encode_batch over the whole list, and
transformers.BertTokenizerFast(...) one by one. RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false are set
before tokenizers is imported, so encode_batch runs on one thread too. --slow also times the pure-Python
BertTokenizer that hyperadapt's ids are checked against. Best of --repeats runs; MB = 10^6 bytes of UTF-8.
"""
import argparse
import os
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import tokenizers  # noqa: E402
from tokenizers import BertWordPieceTokenizer  # noqa: E402


def read_column(path, col):
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")[1:]
    return [l.split("\t")[col] for l in lines if l]


def best_of(repeats, fn):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-data", default=os.environ.get("HYPERADAPT_SHARED_DATA",
                                                                os.path.join(repo, "..", "shared", "data")))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slow", action="store_true", help="also time transformers' pure-Python BertTokenizer")
    args = parser.parse_args()
    glue = os.path.join(args.shared_data, "glue")
    vocab = os.path.join(args.shared_data, "vocab", "bert-base-uncased-vocab.txt")
    if not os.path.exists(vocab):
        print(f"SKIPPED: shared data not found at {args.shared_data}")
        return
    sentences = read_column(os.path.join(glue, "SST-2", "dev.tsv"), 0)
    qnli = os.path.join(glue, "QNLI", "dev.tsv")
    sentences += read_column(qnli, 1) + read_column(qnli, 2)
    n = len(sentences)
    mb = sum(len(s.encode("utf-8")) for s in sentences) / 1e6
    print(f"{n} sentences, {mb * 1e6:.0f} bytes; tokenizers {tokenizers.__version__}, Python {sys.version.split()[0]}")

    def row(name, seconds):
        print(f"{name:<48} {n / seconds:>12,.0f} sentences/s {mb / seconds:>8.2f} MB/s")

    rust = BertWordPieceTokenizer(vocab, lowercase=True)
    rust.no_padding()
    rust.no_truncation()
    row("tokenizers BertWordPieceTokenizer.encode (1 by 1)", best_of(args.repeats, lambda: [rust.encode(s) for s in sentences]))
    row("tokenizers BertWordPieceTokenizer.encode_batch", best_of(args.repeats, lambda: rust.encode_batch(sentences)))

    from transformers import BertTokenizer, BertTokenizerFast
    fast = BertTokenizerFast(vocab, do_lower_case=True)
    row("transformers BertTokenizerFast(s) (1 by 1)", best_of(args.repeats, lambda: [fast(s) for s in sentences]))
    row("transformers BertTokenizerFast(list)", best_of(args.repeats, lambda: fast(sentences)))
    if args.slow:
        slow = BertTokenizer(vocab, do_lower_case=True)
        row("transformers BertTokenizer(s) (slow, 1 by 1)", best_of(1, lambda: [slow(s) for s in sentences]))

    # The Rust tokenizer and the slow one (hyperadapt's reference) agree on this set?
    slow_ids = None
    if args.slow:
        slow_ids = [slow(s)["input_ids"] for s in sentences]
        rust_ids = [e.ids for e in rust.encode_batch(sentences)]
        print(f"Rust ids equal to the slow tokenizer's: {sum(a == b for a, b in zip(slow_ids, rust_ids))} of {n}")


if __name__ == "__main__":
    main()
