#!/usr/bin/env python3
"""Reference token ids for tests/text/test_wordpiece.cpp, from Hugging Face's slow BertTokenizer.

Writes two derived files (ids and hashes only; no task text is copied):

  tests/data/reference/tokenizer_dev.tsv
      Every text field of every GLUE dev and SuperGLUE val file in the shared data folder, tokenized with
      BertTokenizer(vocab, do_lower_case=True).encode(text, add_special_tokens=False), and every pair of the
      pair tasks encoded as tokenizer(a, b, max_length=128, truncation="longest_first", padding="max_length").
  tests/data/reference/tokenizer_codepoints.tsv
      For every code point c that Python's Unicode database assigns, the words BertTokenizer.tokenize hands to
      WordPiece for "x" + c + "y" (lower-cased and cased tokenizers), hashed per block of 256 code points.

Hash ("fnv64"): 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the bytes of the
ids written as little-endian uint32, printed as 16 lower-case hex digits. Code-point blocks hash, per code
point in ascending order, each word's UTF-8 bytes followed by 0x1F, then 0x1E.

Run with transformers 4.40.2 (scripts/setup_reference_env.sh builds such a venv):
    python tests/reference/make_tokenizer_reference.py [--shared-data DIR]
"""
import argparse
import hashlib
import json
import os
import struct
import sys
import unicodedata

import transformers
from transformers import BertTokenizer

EXPECTED_TRANSFORMERS = "4.40.2"
MAX_LENGTH = 128
FULL_IDS_PER_SOURCE = 0       # no full ids: token ids are the text, and task text must not enter the repository
FULL_IDS_NON_ASCII = 0        # (hashes and counts only)
FULL_PAIR_IDS_PER_SOURCE = 4

# id, path under the shared data folder, format, header line to skip, text fields (TSV: name:column),
# pairs encoded as tokenizer(a, b). COPA's two choices each pair with the premise.
SOURCES = [
    ("glue/CoLA", "glue/CoLA/dev.tsv", "tsv", 0, ["sentence:3"], []),
    ("glue/SST-2", "glue/SST-2/dev.tsv", "tsv", 1, ["sentence:0"], []),
    ("glue/MRPC", "glue/MRPC/dev.tsv", "tsv", 1, ["sentence1:3", "sentence2:4"], [("sentence1", "sentence2")]),
    ("glue/STS-B", "glue/STS-B/dev.tsv", "tsv", 1, ["sentence1:7", "sentence2:8"], [("sentence1", "sentence2")]),
    ("glue/QNLI", "glue/QNLI/dev.tsv", "tsv", 1, ["question:1", "sentence:2"], [("question", "sentence")]),
    ("glue/RTE", "glue/RTE/dev.tsv", "tsv", 1, ["sentence1:1", "sentence2:2"], [("sentence1", "sentence2")]),
    ("glue/WNLI", "glue/WNLI/dev.tsv", "tsv", 1, ["sentence1:1", "sentence2:2"], [("sentence1", "sentence2")]),
    ("superglue/CB", "superglue/CB/val.jsonl", "jsonl", 0, ["premise", "hypothesis"], [("premise", "hypothesis")]),
    ("superglue/RTE", "superglue/RTE/val.jsonl", "jsonl", 0, ["premise", "hypothesis"], [("premise", "hypothesis")]),
    ("superglue/BoolQ", "superglue/BoolQ/val.jsonl", "jsonl", 0, ["question", "passage"], [("question", "passage")]),
    ("superglue/COPA", "superglue/COPA/val.jsonl", "jsonl", 0, ["premise", "choice1", "choice2"],
     [("premise", "choice1"), ("premise", "choice2")]),
    ("superglue/WiC", "superglue/WiC/val.jsonl", "jsonl", 0, ["sentence1", "sentence2"], [("sentence1", "sentence2")]),
    ("superglue/WSC", "superglue/WSC/val.jsonl", "jsonl", 0, ["text"], []),
]


def fnv64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def hash_ids(ids) -> str:
    return "%016x" % fnv64(struct.pack("<%dI" % len(ids), *ids))


def read_rows(path, fmt, header, fields):
    """Rows as {field: text}. Lines end at "\\n" (a trailing "\\r" is dropped); TSV has quoting disabled."""
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [l[:-1] if l.endswith("\r") else l for l in lines][header:]
    rows = []
    for n, line in enumerate(lines):
        if fmt == "tsv":
            cols = line.split("\t")
            row = {}
            for spec in fields:
                name, col = spec.split(":")
                if int(col) >= len(cols):
                    sys.exit(f"{path}: data row {n} has {len(cols)} columns, expected more than {col}")
                row[name] = cols[int(col)]
        else:
            obj = json.loads(line)
            row = {name: obj[name] for name in fields}
            for name, value in row.items():
                if not isinstance(value, str):
                    sys.exit(f"{path}: row {n} field {name} is not a string")
        for name, value in row.items():
            value.encode("utf-8")  # lone surrogates from a JSON escape would not survive the C++ side
        rows.append(row)
    return rows


class _PreTokenizedOnly:
    """Stands in for WordpieceTokenizer so that BertTokenizer.tokenize returns BasicTokenizer's words."""

    def tokenize(self, text):
        return [text]


def code_point_blocks(vocab_file):
    lower = BertTokenizer(vocab_file, do_lower_case=True)
    cased = BertTokenizer(vocab_file, do_lower_case=False)
    for tok in (lower, cased):
        tok.wordpiece_tokenizer = _PreTokenizedOnly()
    unassigned, blocks = [], []
    start = None
    for cp in range(0x110000):
        is_cn = unicodedata.category(chr(cp)) == "Cn"
        if is_cn and start is None:
            start = cp
        if not is_cn and start is not None:
            unassigned.append((start, cp - 1))
            start = None
    if start is not None:
        unassigned.append((start, 0x10FFFF))
    for base in range(0, 0x110000, 256):
        hashes = []
        count = 0
        for tok in (lower, cased):
            data = bytearray()
            count = 0
            for cp in range(base, base + 256):
                if 0xD800 <= cp <= 0xDFFF or unicodedata.category(chr(cp)) == "Cn":
                    continue
                count += 1
                for word in tok.tokenize("x" + chr(cp) + "y"):
                    data += word.encode("utf-8") + b"\x1f"
                data += b"\x1e"
            hashes.append("%016x" % fnv64(bytes(data)))
        if count:
            blocks.append((base, count, hashes[0], hashes[1]))
    return unassigned, blocks


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-data", default=os.environ.get("HYPERADAPT_SHARED_DATA",
                                                                os.path.join(repo, "..", "shared", "data")))
    parser.add_argument("--out-dir", default=os.path.join(repo, "tests", "data", "reference"))
    parser.add_argument("--skip-code-points", action="store_true", help="only rewrite tokenizer_dev.tsv")
    args = parser.parse_args()
    if transformers.__version__ != EXPECTED_TRANSFORMERS:
        sys.exit(f"transformers {transformers.__version__} found, the reference needs {EXPECTED_TRANSFORMERS}")
    import logging
    transformers.logging.set_verbosity_error()
    logging.getLogger("transformers").setLevel(logging.ERROR)

    vocab_rel = "vocab/bert-base-uncased-vocab.txt"
    vocab_file = os.path.join(args.shared_data, vocab_rel)
    with open(vocab_file, "rb") as f:
        vocab_sha = hashlib.sha256(f.read()).hexdigest()
    tok = BertTokenizer(vocab_file, do_lower_case=True)
    os.makedirs(args.out_dir, exist_ok=True)

    out = [
        "# Generated by tests/reference/make_tokenizer_reference.py; derived ids and hashes only (no task text).",
        f"# transformers {transformers.__version__} BertTokenizer (slow), do_lower_case=True; Python "
        f"{sys.version.split()[0]}, Unicode {unicodedata.unidata_version}.",
        "# fnv64 = FNV-1a 64 (basis cbf29ce484222325, prime 100000001b3) over the ids as little-endian uint32.",
        "# source <id> <path> <tsv|jsonl> <header lines> <rows> <field[:column],...> <pairs: a+b,... of field",
        "#        indices, or ->; the s and p lines of its rows follow, in row order",
        "# s <row> <field index> <count> <fnv64(ids)> [ids]      encode(text, add_special_tokens=False)",
        "# p <row> <pair index> <tokens> <fnv64(ids)> <fnv64(token_type_ids)> [unpadded ids]",
        f"#        tokenizer(a, b, max_length={MAX_LENGTH}, truncation='longest_first', padding='max_length')",
        f"vocab\t{vocab_rel}\t{len(tok.vocab)}\t{vocab_sha}",
        f"max_length\t{MAX_LENGTH}",
    ]
    singles = pairs = 0
    non_ascii_full = 0
    for sid, rel, fmt, header, fields, pair_specs in SOURCES:
        rows = read_rows(os.path.join(args.shared_data, rel), fmt, header, fields)
        names = [f.split(":")[0] for f in fields]
        pair_index = ",".join(f"{names.index(a)}+{names.index(b)}" for a, b in pair_specs) or "-"
        out.append(f"source\t{sid}\t{rel}\t{fmt}\t{header}\t{len(rows)}\t{','.join(fields)}\t{pair_index}")
        for r, row in enumerate(rows):
            for k, name in enumerate(names):
                text = row[name]
                ids = tok.encode(text, add_special_tokens=False)
                line = f"s\t{r}\t{k}\t{len(ids)}\t{hash_ids(ids)}"
                full = r < FULL_IDS_PER_SOURCE
                if not full and not text.isascii() and non_ascii_full < FULL_IDS_NON_ASCII:
                    full = True
                    non_ascii_full += 1
                if full:
                    line += "\t" + " ".join(map(str, ids))
                out.append(line)
                singles += 1
            for k, (a, b) in enumerate(pair_specs):
                enc = tok(row[a], row[b], max_length=MAX_LENGTH, truncation="longest_first", padding="max_length")
                ids, types, mask = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
                n = sum(mask)
                assert mask == [1] * n + [0] * (len(mask) - n)
                line = f"p\t{r}\t{k}\t{n}\t{hash_ids(ids)}\t{hash_ids(types)}"
                if r < FULL_PAIR_IDS_PER_SOURCE:
                    line += "\t" + " ".join(map(str, ids[:n]))
                out.append(line)
                pairs += 1
    path = os.path.join(args.out_dir, "tokenizer_dev.tsv")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(out) + "\n")
    print(f"{path}: {singles} sentences, {pairs} pairs, {os.path.getsize(path)} bytes")

    if args.skip_code_points:
        return
    unassigned, blocks = code_point_blocks(vocab_file)
    out = [
        "# Generated by tests/reference/make_tokenizer_reference.py from transformers "
        f"{transformers.__version__} on Python {sys.version.split()[0]} (Unicode {unicodedata.unidata_version}).",
        "# For each code point c (ascending; surrogates and Python's unassigned 'Cn' code points skipped) the",
        "# words BertTokenizer.tokenize passes to WordPiece for 'x' + c + 'y', each as UTF-8 + 0x1F, then 0x1E;",
        "# fnv64 of that per block of 256 code points, for do_lower_case=True and do_lower_case=False.",
        "# cn <first> <last>                    Python's unassigned ranges (hex)",
        "# block <first> <count> <fnv64 lower> <fnv64 cased>",
        f"unicode\t{unicodedata.unidata_version}",
    ]
    out += [f"cn\t{a:x}\t{b:x}" for a, b in unassigned]
    out += [f"block\t{base:x}\t{count}\t{hl}\t{hc}" for base, count, hl, hc in blocks]
    path = os.path.join(args.out_dir, "tokenizer_codepoints.tsv")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(out) + "\n")
    print(f"{path}: {sum(b[1] for b in blocks)} code points in {len(blocks)} blocks, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
