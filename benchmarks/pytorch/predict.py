#!/usr/bin/env python3
"""The peer of benchmarks/serve/bench_predictor.cpp: the same model directory (kind multitask_bert: a BERT
encoder, the masked mean or the pooler, one linear head per task) run by PyTorch under torch.inference_mode(),
text in: Hugging Face's `tokenizers` (Rust WordPiece, the directory's vocab.txt, its lower-casing and longest
input), dynamic padding (each batch to its longest row), the encoder in plain torch with
F.scaled_dot_product_attention, softmax out. Batch 1 (one sentence per call: latency) and batch 32 (32
consecutive sentences per call: throughput), fp32 and bf16 autocast.

  predict.py MODEL_DIR SENTENCES [--task T] [--threads 2] [--seconds 5] [--check OURS.jsonl]

Prints one JSON line per case: sentences/s, p50/p90/max ms per call. --check compares the fp32 probabilities of
the first sentences with hyperadapt's (`hyperadapt predict --output OURS.jsonl` on the same file) and prints the
largest difference, so that the two sides are known to run the same model."""
import argparse
import json
import math
import struct
import time

import torch
import torch.nn.functional as F
from tokenizers import BertWordPieceTokenizer


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        a, b = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(e["shape"])
    return out


class Bert(torch.nn.Module):
    def __init__(self, cfg, w, heads_read, head_w, head_b):
        super().__init__()
        self.cfg, self.w, self.mean = cfg, w, heads_read == "mean"
        self.h, self.d = cfg["num_attention_heads"], cfg["hidden_size"]
        self.eps = cfg["layer_norm_eps"]
        self.layers = cfg["num_hidden_layers"]
        self.head_w, self.head_b = head_w, head_b
        p = "encoder.layer.{}."
        # Query, key and value as one product, as PyTorch users fuse them.
        self.qkv = [(torch.cat([w[(p + "attention.self." + k + ".weight").format(i)] for k in ("query", "key", "value")]),
                     torch.cat([w[(p + "attention.self." + k + ".bias").format(i)] for k in ("query", "key", "value")]))
                    for i in range(self.layers)]

    def forward(self, ids, types, mask):
        w, d, h = self.w, self.d, self.h
        b, n = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n][None]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = F.layer_norm(x, (d,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        bias = torch.zeros(b, 1, 1, n, dtype=x.dtype).masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qkv = F.linear(x, *self.qkv[i]).view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=bias.to(qkv.dtype))
            a = a.transpose(1, 2).reshape(b, n, d)
            a = F.linear(a, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
            x = F.layer_norm(x + a, (d,), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
            f = F.gelu(F.linear(x, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))
            f = F.linear(f, w[p + "output.dense.weight"], w[p + "output.dense.bias"])
            x = F.layer_norm(x + f, (d,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        if self.mean:
            m = mask[:, :, None].to(x.dtype)
            s = (x * m).sum(1) / m.sum(1).clamp(min=1)
        else:
            s = torch.tanh(F.linear(x[:, 0], w["pooler.dense.weight"], w["pooler.dense.bias"]))
        return F.linear(s, self.head_w, self.head_b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("sentences")
    ap.add_argument("--task")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--check")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    card = json.load(open(f"{a.model}/hyperadapt.json"))
    assert card["model"]["kind"] == "multitask_bert", "this peer runs multitask_bert directories"
    task = a.task or card["tasks"][0]["name"]
    cfg = json.load(open(f"{a.model}/config.json"))
    w = read_safetensors(f"{a.model}/model.safetensors")
    t = read_safetensors(f"{a.model}/task_parameters.safetensors")
    model = Bert(cfg, w, card["model"]["options"]["heads_read"], t[f"heads.{task}.weight"], t[f"heads.{task}.bias"])
    tok = BertWordPieceTokenizer(f"{a.model}/vocab.txt", lowercase=card["tokenizer"]["lower_case"])
    tok.enable_truncation(card["tokenizer"]["max_length"])
    tok.enable_padding()
    sentences = [l.rstrip("\n") for l in open(a.sentences, encoding="utf-8") if l.strip()]

    def predict(batch):
        enc = tok.encode_batch(batch)
        ids = torch.tensor([e.ids for e in enc])
        types = torch.tensor([e.type_ids for e in enc])
        mask = torch.tensor([e.attention_mask for e in enc])
        return torch.softmax(model(ids, types, mask).float(), -1)

    if a.check:
        ours = [json.loads(l) for l in open(a.check)]
        with torch.inference_mode():
            p = predict(sentences[:len(ours)])
        diff = max(abs(float(p[i][k]) - o["probabilities"][k]) for i, o in enumerate(ours) for k in range(len(o["probabilities"])))
        agree = sum(int(p[i].argmax()) == o["label"] for i, o in enumerate(ours))
        print(json.dumps({"check": "fp32 probabilities against hyperadapt predict", "sentences": len(ours),
                          "max_abs_diff": diff, "labels_agree": agree}))

    for precision in ("fp32", "bf16"):
        for batch in (1, 32):
            ms, done, at = [], 0, 0
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                for _ in range(3):  # warm-up
                    predict(sentences[:batch])
                start = time.perf_counter()
                while time.perf_counter() - start < a.seconds:
                    if at + batch > len(sentences):
                        at = 0
                    t0 = time.perf_counter()
                    predict(sentences[at:at + batch])
                    ms.append(1000 * (time.perf_counter() - t0))
                    at += batch
                    done += batch
                wall = time.perf_counter() - start
            ms.sort()
            print(json.dumps({"side": "pytorch", "precision": precision, "batch": batch, "threads": a.threads,
                              "sentences_per_s": done / wall, "p50_ms": ms[len(ms) // 2], "p90_ms": ms[len(ms) * 9 // 10],
                              "max_ms": ms[-1], "torch": torch.__version__}))


if __name__ == "__main__":
    main()
