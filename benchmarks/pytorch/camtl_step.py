#!/usr/bin/env python3
"""One CA-MTL training step in PyTorch at the MiniLM shape (6 layers, hidden 384, 12 heads, FFN 1536), batch 32,
L = 128, fp32 or (--precision bf16) bf16 autocast around forward + loss, on the CPU or (--device cuda) a GPU: the
peer of benchmarks/models/bench_camtl_step.cpp. The model follows ../shared/docs/spec.md §1 as the authors' code does:
task embedding + shared transformation z' = W z + b; conditional alignment FiLM on the embedding output; CBDA
block-diagonal attention bias in every layer; plain LayerNorm in the lower half, conditional LayerNorm (gain only)
above; a conditional bottleneck (no activation) with its own conditional LayerNorm in the top
layer; per-task heads on the pooled output; cross-entropy averaged per task; lower half + embeddings frozen.
Weights are random: only the time of the step matters here. Prints one JSON line: ms per step, tokens/s and the
process's peak RSS (ru_maxrss, MiB; on a GPU also the peak of allocated device memory). On a GPU every timed step
ends with torch.cuda.synchronize(), so a step's time is its device time too."""
import json
import math
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

import glue_batches  # benchmarks/pytorch/glue_batches.py
import step_options  # benchmarks/pytorch/step_options.py


class FiLM(nn.Module):
    def __init__(self, d_cond, width):
        super().__init__()
        self.gb = nn.Linear(d_cond, 2 * width)
        nn.init.zeros_(self.gb.bias)

    def forward(self, cond, x):  # cond (B, d_cond); x (B, ..., width)
        gamma, beta = self.gb(cond).chunk(2, dim=-1)
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        return (1 + gamma.view(shape)) * x + beta.view(shape)


class CLN(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.mod = nn.Linear(d, 2 * d)

    def forward(self, x, z):
        gamma, beta = self.mod(z).chunk(2, dim=-1)
        gain = (1 + gamma) * self.weight + beta  # (B, d): gain only, as the code
        return F.layer_norm(x, x.shape[-1:], None, None, 1e-12) * gain[:, None, :] + self.bias


class CBDA(nn.Module):
    def __init__(self, d, L):
        super().__init__()
        assert d % L == 0
        self.L, n = L, d // L
        self.s = math.ceil(L / n)
        self.A = nn.Parameter(torch.zeros(L, self.s))
        self.film = FiLM(d, self.s)
        # Row i belongs to block i // s, which covers columns [(i // s) * s, (i // s + 1) * s), cropped to L:
        # M[b, i, j] = A'[b, i, j - (i // s) * s] inside the block, 0 outside (torch.block_diag, vectorised).
        rows = torch.arange(L)[:, None]
        col = torch.arange(L)[None, :] - (rows // self.s) * self.s
        self.register_buffer("valid", ((col >= 0) & (col < self.s)).float())
        self.register_buffer("col", col.clamp(0, self.s - 1))

    def forward(self, z):
        a = self.film(z, self.A.expand(z.shape[0], -1, -1))  # (B, L, s)
        return a.gather(2, self.col.expand(z.shape[0], -1, -1)) * self.valid


class Layer(nn.Module):
    def __init__(self, d, heads, ffn, L, conditional, adapter):
        super().__init__()
        self.d, self.h = d, heads
        self.qkv = nn.Linear(d, 3 * d)
        self.cbda = CBDA(d, L)
        self.attn_out = nn.Linear(d, d)
        self.up, self.down = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.conditional = conditional
        self.ln1 = CLN(d) if conditional else nn.LayerNorm(d, eps=1e-12)
        self.ln2 = CLN(d) if conditional else nn.LayerNorm(d, eps=1e-12)
        self.adapter = adapter
        if adapter:
            self.emb_transf = nn.Linear(d, d)
            self.hidden_film = FiLM(d, d)
            self.bn_down, self.bn_up = nn.Linear(d, d // 3), nn.Linear(d // 3, d)
            self.ln3 = CLN(d)

    def norm(self, ln, x, z):
        return ln(x, z) if self.conditional else ln(x)

    def forward(self, x, add_mask, z):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        # A batch shorter than L gets the top-left corner of the bias (as the C++ side).
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.h) + self.cbda(z)[:, None, :t, :t] + add_mask
        ctx = (F.dropout(scores.softmax(-1), 0.1, self.training) @ v).transpose(1, 2).reshape(b, t, d)
        a = self.norm(self.ln1, x + F.dropout(self.attn_out(ctx), 0.1, self.training), z)
        f = self.norm(self.ln2, a + F.dropout(self.down(F.gelu(self.up(a))), 0.1, self.training), z)
        if not self.adapter:
            return f
        h = self.hidden_film(self.emb_transf(z), f)
        return self.ln3(self.bn_up(self.bn_down(h)) + a, z)


class CaMtl(nn.Module):
    def __init__(self, vocab, d, heads, ffn, layers, L, num_labels):
        super().__init__()
        self.word, self.pos, self.tok_type = nn.Embedding(vocab, d), nn.Embedding(512, d), nn.Embedding(2, d)
        self.emb_ln = nn.LayerNorm(d, eps=1e-12)
        self.task_emb = nn.Embedding(len(num_labels), d)
        self.task_transform = nn.Linear(d, d)
        self.align = FiLM(d, d)
        half = layers // 2
        self.layers = nn.ModuleList(
            Layer(d, heads, ffn, L, conditional=i >= half, adapter=i == layers - 1) for i in range(layers))
        self.pooler = nn.Linear(d, d)
        self.heads = nn.ModuleList(nn.Linear(d, c) for c in num_labels)
        for p in list(self.word.parameters()) + list(self.pos.parameters()) + list(self.tok_type.parameters()) + \
                list(self.emb_ln.parameters()):
            p.requires_grad_(False)
        for layer in self.layers[:half]:  # the reference's freeze: the CBDA projection stays frozen too
            for name, p in layer.named_parameters():
                p.requires_grad_(name == "cbda.A")

    def forward(self, ids, types, mask, task, labels):
        b, t = ids.shape
        z = self.task_emb(task)
        zp = self.task_transform(z)
        x = self.emb_ln(self.word(ids) + self.pos(torch.arange(t, device=ids.device))[None] + self.tok_type(types))
        x = self.align(z, F.dropout(x, 0.1, self.training))
        add_mask = (1.0 - mask[:, None, None, :].float()) * -10000.0
        for layer in self.layers:
            x = layer(x, add_mask, zp)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        losses = []
        for tid, head in enumerate(self.heads):
            rows = (task == tid).nonzero().flatten()
            if len(rows):
                losses.append(F.cross_entropy(head(F.dropout(pooled[rows], 0.1, self.training)), labels[rows]))
        return torch.stack(losses).mean()


def main():
    a = step_options.parse(__doc__.splitlines()[0])
    num_labels = [2, 2, 2, 2, 2, 2]
    dev = torch.device(a.device)
    model = CaMtl(30522, 384, 12, 1536, 6, a.seq, num_labels).to(dev).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5)
    forward = torch.compile(model) if a.compile else model
    ids = torch.randint(1000, 30000, (a.batch, a.seq))
    types = torch.zeros_like(ids)
    mask = torch.ones_like(ids)
    mask[: a.batch // 2, a.seq // 2:] = 0
    task = torch.arange(a.batch) % len(num_labels)
    labels = torch.randint(0, 2, (a.batch,))
    ids, types, mask, task, labels = (t.to(dev) for t in (ids, types, mask, task, labels))
    batches = glue_batches.load(a.batches, dev) if a.batches else [(ids, types, mask, task, labels, None, a.batch * a.seq)]
    done = {"steps": 0, "tokens": 0}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def step():
        ids, types, mask, task, labels, _, real = batches[done["steps"] % len(batches)]
        done["steps"] += 1
        done["tokens"] += real
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = forward(ids, types, mask, task, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sync()

    for _ in range(max(2, len(batches) if a.compile else 0)):
        step()
    done["tokens"] = 0
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < a.seconds or n < a.min_steps:
        step()
        n += 1
    ms = (time.perf_counter() - start) / n * 1e3
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    memory = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if dev.type == "cuda":
        memory["peak_cuda_allocated_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "device": a.device, "precision": a.precision, "compiled": a.compile,
                      "threads": a.threads, "torch_threads": torch.get_num_threads(), "batch": a.batch,
                      "seq": a.seq, "steps": n, "ms_per_step": ms, "tokens_per_s": done["tokens"] / (n * ms) * 1e3,
                      "batches": "glue" if a.batches else "synthetic",
                      "trainable_params": trainable, **memory}))


if __name__ == "__main__":
    main()
