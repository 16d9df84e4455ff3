#!/usr/bin/env python3
"""The BERT encoder layer of benchmarks/layers/bench_encoder_layer.cpp, written as the plain PyTorch op
sequence of Hugging Face's BertLayer (post-LN, exact GELU, dropout 0.1 in training), timed the same way:
batch 16 x seq 128, fp32, a fresh forward (+ backward) per iteration. Prints one JSON line per case."""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


class BertLayer(torch.nn.Module):
    def __init__(self, hidden, heads, intermediate, p):
        super().__init__()
        self.h, self.heads, self.p = hidden, heads, p
        self.query = torch.nn.Linear(hidden, hidden)
        self.key = torch.nn.Linear(hidden, hidden)
        self.value = torch.nn.Linear(hidden, hidden)
        self.attn_out = torch.nn.Linear(hidden, hidden)
        self.attn_norm = torch.nn.LayerNorm(hidden, eps=1e-12)
        self.up = torch.nn.Linear(hidden, intermediate)
        self.down = torch.nn.Linear(intermediate, hidden)
        self.out_norm = torch.nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x, additive_mask):
        b, t, h = x.shape
        d = h // self.heads

        def split(y):
            return y.view(b, t, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + additive_mask
        probs = F.dropout(scores.softmax(-1), self.p, self.training)
        ctx = (probs @ v).transpose(1, 2).reshape(b, t, h)
        a = self.attn_norm(x + F.dropout(self.attn_out(ctx), self.p, self.training))
        f = self.down(F.gelu(self.up(a)))
        return self.out_norm(a + F.dropout(f, self.p, self.training))


def run(hidden, train, threads, seconds):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batch, seq = 16, 128
    layer = BertLayer(hidden, 12, 4 * hidden, 0.1)
    layer.train(train)
    x = torch.randn(batch, seq, hidden, requires_grad=train)
    mask = torch.zeros(batch, 1, 1, seq)
    dy = torch.randn(batch, seq, hidden)

    def step():
        if train:
            y = layer(x, mask)
            y.backward(dy)
        else:
            with torch.no_grad():
                layer(x, mask)

    for _ in range(2):
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    elapsed = (time.perf_counter() - start) / n
    return {"impl": "pytorch", "torch": torch.__version__, "hidden": hidden, "mode": "train" if train else "forward",
            "threads": threads, "ms": elapsed * 1e3, "tokens_per_s": batch * seq / elapsed}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--hidden", type=int, nargs="+", default=[384, 768])
    a = ap.parse_args()
    for h in a.hidden:
        for train in (False, True):
            print(json.dumps(run(h, train, a.threads, a.seconds)), flush=True)
