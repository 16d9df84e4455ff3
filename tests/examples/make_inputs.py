#!/usr/bin/env python3
"""Writes the small inputs tests/examples/bad_input.sh feeds the examples: a tiny BERT checkpoint folder
(config.json, vocab.txt, model.safetensors; standard library only, no numpy or torch) in one of several
deliberately broken variants, and a GLUE data folder with RTE only.

  make_inputs.py checkpoint DIR VARIANT   VARIANT: good | hidden64 | missing_query0 | transposed_ffn0 | huge_vocab
  make_inputs.py glue DIR [empty_dev]
"""
import json
import struct
import sys
from pathlib import Path

HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS = 32, 2, 4, 64, 64
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "on", "mat", "is", "not",
         "bird", "flies", "red", "blue", "house", "big", "small", ".", ","]


def bert_tensors(hidden, vocab):
    t = {
        "embeddings.word_embeddings.weight": [vocab, hidden],
        "embeddings.position_embeddings.weight": [POSITIONS, hidden],
        "embeddings.token_type_embeddings.weight": [2, hidden],
        "embeddings.LayerNorm.weight": [hidden],
        "embeddings.LayerNorm.bias": [hidden],
        "pooler.dense.weight": [hidden, hidden],
        "pooler.dense.bias": [hidden],
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for m in ("query", "key", "value"):
            t[p + f"attention.self.{m}.weight"] = [hidden, hidden]
            t[p + f"attention.self.{m}.bias"] = [hidden]
        t[p + "attention.output.dense.weight"] = [hidden, hidden]
        t[p + "attention.output.dense.bias"] = [hidden]
        t[p + "attention.output.LayerNorm.weight"] = [hidden]
        t[p + "attention.output.LayerNorm.bias"] = [hidden]
        t[p + "intermediate.dense.weight"] = [INTERMEDIATE, hidden]
        t[p + "intermediate.dense.bias"] = [INTERMEDIATE]
        t[p + "output.dense.weight"] = [hidden, INTERMEDIATE]
        t[p + "output.dense.bias"] = [hidden]
        t[p + "output.LayerNorm.weight"] = [hidden]
        t[p + "output.LayerNorm.bias"] = [hidden]
    return t


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for k, (name, shape) in enumerate(sorted(tensors.items())):
        n = 1
        for d in shape:
            n *= d
        # Small deterministic values (LayerNorm gains 1): a model that loads computes finite outputs.
        values = [1.0] * n if name.endswith("LayerNorm.weight") else [((i * 37 + k * 11) % 17 - 8) * 0.004 for i in range(n)]
        blob = struct.pack(f"<{n}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def checkpoint(out, variant):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "bert", "vocab_size": len(WORDS), "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
              "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE, "max_position_embeddings": POSITIONS,
              "type_vocab_size": 2, "hidden_act": "gelu"}
    if variant == "huge_vocab":
        config["vocab_size"] = 1000000000000
    (out / "config.json").write_text(json.dumps(config, indent=1))
    # big_vocab: a vocab.txt with more tokens than the checkpoint's embedding table (a tokenizer of another model)
    extra = [f"extra{i}" for i in range(8)] if variant == "big_vocab" else []
    (out / "vocab.txt").write_text("\n".join(WORDS + extra) + "\n")
    tensors = bert_tensors(64 if variant == "hidden64" else HIDDEN, len(WORDS))
    if variant == "missing_query0":
        del tensors["encoder.layer.0.attention.self.query.weight"]
    if variant == "transposed_ffn0":
        tensors["encoder.layer.0.intermediate.dense.weight"] = [HIDDEN, INTERMEDIATE]
    if variant != "huge_vocab":
        write_safetensors(out / "model.safetensors", tensors)


def glue(out, empty_dev):
    rte = Path(out) / "glue" / "RTE"
    rte.mkdir(parents=True, exist_ok=True)
    rows = ["index\tsentence1\tsentence2\tlabel"]
    pairs = [("the cat sat on the mat .", "a cat sat .", "entailment"),
             ("the dog is big .", "the dog is small .", "not_entailment"),
             ("a red bird flies .", "a bird flies .", "entailment"),
             ("the house is blue .", "the house is red .", "not_entailment")]
    for i in range(16):
        s1, s2, label = pairs[i % len(pairs)]
        rows.append(f"{i}\t{s1}\t{s2}\t{label}")
    (rte / "train.tsv").write_text("\n".join(rows) + "\n")
    (rte / "dev.tsv").write_text("\n".join(rows[:1] if empty_dev else rows[:9]) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "checkpoint":
        checkpoint(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "glue":
        glue(sys.argv[2], len(sys.argv) > 3 and sys.argv[3] == "empty_dev")
    else:
        sys.exit("usage: make_inputs.py checkpoint DIR VARIANT | glue DIR [empty_dev]")
