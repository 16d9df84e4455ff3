#!/usr/bin/env python3
"""One PHA training step in PyTorch at the MiniLM shape (6 layers, hidden 384, 12 heads, FFN 1536), batch 32,
L = 128, fp32 or (--precision bf16) bf16 autocast around forward + loss: the peer of
benchmarks/models/bench_pha_step.cpp (hyperadapt::pha_bert with its defaults). The
model follows ../shared/docs/spec.md §2.10 (single pass, split 3) as include/hyperadapt/models/pha_bert.hpp does:

  * a post-LN BERT encoder; every layer's FFN sub-layer carries a parallel adapter
        A(h1) = ReLU(h1 Wd + bd) Wu + bu,   out = LN(h1 + dropout(FFN(h1)) + A(h1))
    with its own (shared, task-agnostic) weights in layers 0-2 and per-example generated weights in layers 3-5
    (applied with torch.bmm);
  * retriever: masked mean pool of layer 2's output -> Linear(384, 128) -> ReLU -> Linear(128, 64);
  * prototypes (6, 64); hypernetwork per generated layer l: g = LN(W2 ReLU(W1 [k_t; e_l] + b1) + b2) (eps 1e-6),
    then four linear heads for Wd (d*r), bd (r), Wu (r*d), bu (d);
  * pooler tanh(Linear(h[:, 0])); per-task linear heads with dropout 0.1 (cross-entropy, MSE for the
    regression task), averaged over the tasks in the batch;
  * + 0.1 x instance-instance supervised contrastive loss + 0.1 x prototype-instance loss (temperature 0.1,
    positive excluded from the prototype denominator), as include/hyperadapt/loss/pha_contrastive.hpp;
  * the reference's freezing: embeddings, every backbone weight and the pooler frozen; adapters, retriever,
    prototypes, hypernetwork and heads train.
Weights are random: only the time of the step matters here. Prints one JSON line: ms per step and per phase,
tokens/s, the process's peak RSS (ru_maxrss, MiB) and, on CUDA, torch.cuda.max_memory_allocated."""
import json
import math
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

import glue_batches  # benchmarks/pytorch/glue_batches.py
import step_options  # benchmarks/pytorch/step_options.py

P_DROP = 0.1


class Adapter(nn.Module):
    def __init__(self, d, r):
        super().__init__()
        self.down, self.up = nn.Linear(d, r), nn.Linear(r, d)

    def forward(self, x):
        return self.up(F.relu(self.down(x)))


def generated_adapter(x, w):  # x (B, L, d); w = (Wd (B, d*r), bd (B, r), Wu (B, r*d), bu (B, d))
    wd, bd, wu, bu = w
    b, _, d = x.shape
    r = bd.shape[1]
    h = F.relu(torch.bmm(x, wd.view(b, d, r)) + bd[:, None])
    return torch.bmm(h, wu.view(b, r, d)) + bu[:, None]


class Layer(nn.Module):
    def __init__(self, d, heads, ffn, r, own_adapter):
        super().__init__()
        self.d, self.h = d, heads
        self.qkv = nn.Linear(d, 3 * d)
        self.attn_out = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d, eps=1e-12)
        self.up, self.down = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-12)
        self.adapter = Adapter(d, r) if own_adapter else None

    def forward(self, x, add_mask, generated=None):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.h) + add_mask
        ctx = (F.dropout(scores.softmax(-1), P_DROP, self.training) @ v).transpose(1, 2).reshape(b, t, d)
        h1 = self.ln1(x + F.dropout(self.attn_out(ctx), P_DROP, self.training))
        y = h1 + F.dropout(self.down(F.gelu(self.up(h1))), P_DROP, self.training)
        if generated is not None:
            y = y + generated_adapter(h1, generated)
        elif self.adapter is not None:
            y = y + self.adapter(h1)
        return self.ln2(y)


class HyperNet(nn.Module):
    def __init__(self, cond, emb, layers, hidden, proj, d, r):
        super().__init__()
        self.layer_embed = nn.Embedding(layers, emb)
        self.linear1, self.linear2 = nn.Linear(cond + emb, hidden), nn.Linear(hidden, proj)
        self.ln = nn.LayerNorm(proj, eps=1e-6)
        self.weight_up, self.weight_down = nn.Linear(proj, r * d), nn.Linear(proj, d * r)
        self.bias_up, self.bias_down = nn.Linear(proj, d), nn.Linear(proj, r)

    def forward(self, k, layer):  # k (B, cond): the prototype of each example's task
        e = self.layer_embed.weight[layer].expand(k.shape[0], -1)
        g = self.ln(self.linear2(F.relu(self.linear1(torch.cat([k, e], dim=1)))))
        return self.weight_down(g), self.bias_down(g), self.weight_up(g), self.bias_up(g)


def instance_loss(e, task, tau=0.1, weight=0.1):
    f = F.normalize(e, dim=1)
    s = f @ f.t() / tau
    n = s.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=e.device)
    pos = (task[:, None] == task[None, :]) & ~eye
    lse = torch.logsumexp(s.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    npos = pos.sum(1)
    anchors = npos > 0
    li = -((s - lse) * pos).sum(1)[anchors] / npos[anchors]
    return weight * li.mean() if anchors.any() else s.sum() * 0


def prototype_loss(e, prototypes, task, tau=0.1, weight=0.1):
    s = F.normalize(e, dim=1) @ F.normalize(prototypes, dim=1).t() / tau  # (B, tasks)
    positive = F.one_hot(task, prototypes.shape[0]).bool()
    lse = torch.logsumexp(s.masked_fill(positive, float("-inf")), dim=1)  # the positive excluded, as the code
    return weight * (lse - s[positive]).mean()


class Pha(nn.Module):
    def __init__(self, vocab, d, heads, ffn, layers, split, num_labels, r=64, proto=64, retr_hidden=128,
                 hyper_hidden=128, hyper_proj=64, layer_emb=64):
        super().__init__()
        self.split = split
        self.word, self.pos, self.tok_type = nn.Embedding(vocab, d), nn.Embedding(512, d), nn.Embedding(2, d)
        self.emb_ln = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(Layer(d, heads, ffn, r, own_adapter=i < split) for i in range(layers))
        self.retriever = nn.Sequential(nn.Linear(d, retr_hidden), nn.ReLU(), nn.Linear(retr_hidden, proto))
        self.prototypes = nn.Parameter(torch.randn(len(num_labels), proto))
        self.hypernet = HyperNet(proto, layer_emb, layers - split, hyper_hidden, hyper_proj, d, r)
        self.pooler = nn.Linear(d, d)
        self.heads = nn.ModuleList(nn.Linear(d, c) for c in num_labels)
        self.regression = [c == 1 for c in num_labels]
        # The reference's rule: only adapters, retriever, hypernetwork, prototypes and heads train.
        for name, p in self.named_parameters():
            backbone = name.startswith(("word.", "pos.", "tok_type.", "emb_ln.", "pooler.")) or \
                (name.startswith("layers.") and ".adapter." not in name)
            p.requires_grad_(not backbone)

    def forward(self, ids, types, mask, task, labels, scores):
        b, t = ids.shape
        x = self.emb_ln(self.word(ids) + self.pos(torch.arange(t, device=ids.device))[None] + self.tok_type(types))
        x = F.dropout(x, P_DROP, self.training)
        add_mask = (1.0 - mask[:, None, None, :].float()) * -10000.0
        for layer in self.layers[: self.split]:
            x = layer(x, add_mask)
        m = mask.float()
        pooled_x = (x * m[:, :, None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1e-9)
        e = self.retriever(pooled_x)
        k = self.prototypes[task]
        for i, layer in enumerate(self.layers[self.split:]):
            x = layer(x, add_mask, self.hypernet(k, i))
        pooled = torch.tanh(self.pooler(x[:, 0]))
        losses = []
        for tid, head in enumerate(self.heads):
            rows = (task == tid).nonzero().flatten()
            if len(rows):
                y = head(F.dropout(pooled[rows], P_DROP, self.training))
                losses.append(F.mse_loss(y.squeeze(1), scores[rows]) if self.regression[tid]
                              else F.cross_entropy(y, labels[rows]))
        loss = torch.stack(losses).mean()
        return loss + instance_loss(e, task) + prototype_loss(e, self.prototypes, task)


def main():
    a = step_options.parse(__doc__.splitlines()[0])
    num_labels = [2, 2, 1, 2, 2, 2]  # rte, mrpc, stsb (regression), cola, sst2, wnli
    dev = torch.device(a.device)
    model = Pha(30522, 384, 12, 1536, 6, 3, num_labels).to(dev).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5)
    forward = torch.compile(model) if a.compile else model
    ids = torch.randint(1000, 30000, (a.batch, a.seq))
    types = torch.zeros_like(ids)
    mask = torch.ones_like(ids)
    mask[: a.batch // 2, a.seq // 2:] = 0
    task = torch.arange(a.batch) % len(num_labels)
    labels = torch.randint(0, 2, (a.batch,))
    scores = torch.rand(a.batch) * 5
    ids, types, mask, task, labels, scores = (t.to(dev) for t in (ids, types, mask, task, labels, scores))
    batches = glue_batches.load(a.batches, dev) if a.batches else \
        [(ids, types, mask, task, labels, scores, a.batch * a.seq)]
    done = {"steps": 0, "tokens": 0}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    phases = {"forward": 0.0, "backward": 0.0, "clip": 0.0, "adamw": 0.0}

    def step():
        ids, types, mask, task, labels, scores, real = batches[done["steps"] % len(batches)]
        done["steps"] += 1
        done["tokens"] += real
        # Synchronized at each phase's end, as the C++ side, so both report where a step's time goes.
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = forward(ids, types, mask, task, labels, scores)
        sync()
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        sync()
        t3 = time.perf_counter()
        opt.step()
        sync()
        t4 = time.perf_counter()
        for k, d in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            phases[k] += d

    for _ in range(max(5, len(batches) if a.compile else 0)):
        step()
    phases = dict.fromkeys(phases, 0.0)
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
                      "seq": a.seq, "steps": n, "ms_per_step": ms,
                      **{f"{k}_ms": v / n * 1e3 for k, v in phases.items()}, "tokens_per_s": done["tokens"] / (n * ms) * 1e3,
                      "batches": "glue" if a.batches else "synthetic",
                      "trainable_params": trainable, **memory}))


if __name__ == "__main__":
    main()
