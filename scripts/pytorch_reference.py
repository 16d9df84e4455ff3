#!/usr/bin/env python3
"""Issue 12's reference points, measured with the peer a user would pick: single-task full fine-tuning of the
same MiniLM in PyTorch and Hugging Face `transformers` (the newest from PyPI, in the venv of
scripts/setup_pytorch_peer.sh) with the recipe of one of our rows (docs/results.md), so that a score of ours can
be read against what the same recipe gives in the usual stack:

  pytorch-lr1e-4-e6   grid sst2's row lr1e-4-e6: SST-2, 1000 training examples, L <= 64, 6 epochs (192 steps),
                      lr 1e-4, evaluated every 24 steps (the budget check: does full fine-tuning reach 80 %?)
  pytorch-rte-n1000   grid rte's row rte-n1000 (row (a)'s RTE model): RTE, 1000 training examples, L <= 128,
                      3 epochs (96 steps), lr 2e-4, evaluated every 20 steps (is RTE's floor ours or MiniLM's?)

Both: a validation split of 200 carved from the training data (stratified by label), the training examples from
the rest, each batch padded to its longest row, batch 32, AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0.01
except biases and LayerNorm), linear warmup over round(10 %) of the steps then linear decay to 0, gradient
clipping at 1.0, dropout 0.1 in the encoder and before the head, one linear head on the masked mean of the last
layer (BERT's pooler not used, not trained), evaluated on validation every K steps and at the end; the model of
the best validation accuracy (the first on ties) is measured once on the full dev set.

What differs from our runs: the examples drawn (numpy's generator seeded with the data seed 100 + i, not our
counter-based draw), the initialisation and dropout streams (torch's, seeded i) and the head's initialisation
(N(0, 0.02), as ours, from another generator). So the rows are compared as rows (mean and interval), not paired.

  python="$(scripts/setup_pytorch_peer.sh)"      # torch, tokenizers and transformers from PyPI, in a venv
  "$python" scripts/pytorch_reference.py ROW --data ../shared/data [--seeds 1,2,3,4,5] [--threads 1]
          [--checkpoint .deps/models/all-MiniLM-L6-v2] [--records docs/results/protocol/pytorch_reference.jsonl]

Appends one JSON record per seed in the format of scripts/run_results.py (its grid and row as above), so
scripts/results_tables.py puts it in that grid's table; a seed already in the record file is skipped.
"""
import argparse
import copy
import csv
import datetime
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import transformers
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.dont_write_bytecode = True  # no __pycache__ left in scripts/
import run_results  # noqa: E402  (cpu_description, git)

# The shared settings, then each row's task and budget.
COMMON = {"validation": 200, "batch": 32, "weight_decay": 0.01, "warmup": 0.1, "clip": 1.0, "dropout": 0.1}
ROWS = {
    "pytorch-lr1e-4-e6": {"grid": "sst2", "task": "sst2", "n_train": 1000, "seq_len": 64, "epochs": 6, "lr": 1e-4,
                          "eval_every": 24},
    "pytorch-rte-n1000": {"grid": "rte", "task": "rte", "n_train": 1000, "seq_len": 128, "epochs": 3, "lr": 2e-4,
                          "eval_every": 20},
}
# Each task's file layout: the text columns and the labels, by header name.
TASKS = {"sst2": {"folder": "SST-2", "text": ["sentence"], "labels": ["0", "1"]},
         "rte": {"folder": "RTE", "text": ["sentence1", "sentence2"], "labels": ["entailment", "not_entailment"]}}


def read_task(path, task):
    """[(texts, label index)] of a GLUE TSV file; a malformed line stops with its file and line number."""
    spec = TASKS[task]
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = rows[0] if rows else []
    missing = [c for c in spec["text"] + ["label"] if c not in header]
    if missing:
        sys.exit(f"{path}:1: the header has no column {', '.join(missing)}")
    columns = [header.index(c) for c in spec["text"]]
    label_column = header.index("label")
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header) or row[label_column] not in spec["labels"]:
            sys.exit(f"{path}:{number}: expected {len(header)} fields and a label in {spec['labels']}, got {row!r}")
        out.append((tuple(row[c] for c in columns), spec["labels"].index(row[label_column])))
    return out


def draw(examples, data_seed, settings):
    """A stratified validation split (each label its share, largest remainder) and the training examples from the
    rest, both in the data's order."""
    rng = np.random.default_rng(data_seed)
    labels = np.array([y for _, y in examples])
    size = settings["validation"]
    shares = {y: size * np.mean(labels == y) for y in (0, 1)}
    counts = {y: int(share) for y, share in shares.items()}
    for y in sorted(shares, key=lambda y: shares[y] - counts[y], reverse=True)[:size - sum(counts.values())]:
        counts[y] += 1
    validation = np.concatenate([rng.choice(np.flatnonzero(labels == y), counts[y], replace=False) for y in (0, 1)])
    rest = np.setdiff1d(np.arange(len(examples)), validation)
    train = rng.choice(rest, settings["n_train"], replace=False)
    return [examples[i] for i in np.sort(train)], [examples[i] for i in np.sort(validation)]


class Classifier(nn.Module):
    def __init__(self, checkpoint, dropout):
        super().__init__()
        self.encoder = transformers.BertModel.from_pretrained(checkpoint, add_pooling_layer=False,
                                                              hidden_dropout_prob=dropout,
                                                              attention_probs_dropout_prob=dropout)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.config.hidden_size, 2)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return self.head(self.dropout(pooled))


def batches(tokenizer, examples, order, batch, seq_len):
    """Batches of the examples in `order`, each padded to its longest row; pairs truncated longest-first."""
    for start in range(0, len(order), batch):
        chosen = [examples[i] for i in order[start:start + batch]]
        texts = [list(t) for t, _ in chosen]
        enc = tokenizer(*zip(*texts), padding=True, truncation=True, max_length=seq_len, return_tensors="pt")
        yield enc["input_ids"], enc["attention_mask"], torch.tensor([y for _, y in chosen])


@torch.inference_mode()
def accuracy(model, tokenizer, examples, seq_len):
    model.eval()
    right = 0
    for ids, mask, y in batches(tokenizer, examples, list(range(len(examples))), 64, seq_len):
        right += int((model(ids, mask).argmax(-1) == y).sum())
    model.train()
    return right / len(examples)


def settings_of(row):
    return {**COMMON, **ROWS[row]}


def digest(settings):
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def run(row, seed, args, train_all, dev):
    settings = settings_of(row)
    torch.manual_seed(seed)
    train, validation = draw(train_all, 100 + seed, settings)
    tokenizer = transformers.BertTokenizerFast.from_pretrained(args.checkpoint)
    model = Classifier(args.checkpoint, settings["dropout"])
    no_decay = {n for n, _ in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n}
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in model.named_parameters() if n not in no_decay], "weight_decay": settings["weight_decay"]},
         {"params": [p for n, p in model.named_parameters() if n in no_decay], "weight_decay": 0.0}],
        lr=settings["lr"], betas=(0.9, 0.999), eps=1e-8)
    per_epoch = -(-len(train) // settings["batch"])
    steps = per_epoch * settings["epochs"]
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, round(settings["warmup"] * steps), steps)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(seed)
    L = settings["seq_len"]
    curve, best, best_state, best_step, step, real_tokens = [], -1.0, None, 0, 0, 0
    started = time.perf_counter()
    model.train()
    for _ in range(settings["epochs"]):
        order = torch.randperm(len(train), generator=shuffle).tolist()
        for ids, mask, y in batches(tokenizer, train, order, settings["batch"], L):
            loss = loss_fn(model(ids, mask), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), settings["clip"])
            optimizer.step()
            scheduler.step()
            step += 1
            real_tokens += int(mask.sum())
            if step % settings["eval_every"] == 0 or step == steps:
                score = accuracy(model, tokenizer, validation, L)
                curve.append({"step": step, "average": score, "scores": {settings["task"]: score}})
                if score > best:
                    best, best_step, best_state = score, step, copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - started
    model.load_state_dict(best_state)
    test = accuracy(model, tokenizer, dev, L)
    counts = [sum(1 for _, y in train if y == label) for label in (0, 1)]
    majority = int(counts[1] > counts[0])
    floor = sum(1 for _, y in dev if y == majority) / len(dev)
    task = settings["task"]
    return {"grid": settings["grid"], "row": row, "seed": seed, "seed_index": seed, "data_seed": 100 + seed,
            "settings": digest(settings), "recipe": settings,
            "peer": {"torch": torch.__version__, "transformers": transformers.__version__},
            "model": "single", "head_input": "mean", "lr": settings["lr"], "lr_groups": [],
            "weight_decay": settings["weight_decay"], "warmup": settings["warmup"], "epochs": float(settings["epochs"]),
            "batch": settings["batch"], "seq_len": L, "steps": steps, "real_tokens": real_tokens,
            "seconds": seconds, "trainable": sum(p.numel() for p in model.parameters()),
            "backbone": sum(p.numel() for p in model.encoder.parameters()), "fraction_used": 1.0,
            "examples": {task: {"train": len(train), "validation": len(validation), "test": len(dev)}},
            "selection": "best validation average", "selected_step": best_step, "curve": curve,
            "validation": {task: best}, "test": {task: test}, "test_average": test, "floor": {task: floor},
            "threads": torch.get_num_threads(), "cpu": run_results.cpu_description()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("row", choices=sorted(ROWS))
    ap.add_argument("--data", required=True, help="the shared data folder (glue/<task>/train.tsv and dev.tsv)")
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, ".deps/models/all-MiniLM-L6-v2"))
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--records", default=os.path.join(ROOT, "docs/results/protocol/pytorch_reference.jsonl"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    settings = settings_of(args.row)
    folder = os.path.join(args.data, "glue", TASKS[settings["task"]]["folder"])
    train_all = read_task(os.path.join(folder, "train.tsv"), settings["task"])
    dev = read_task(os.path.join(folder, "dev.tsv"), settings["task"])
    done = set()
    if os.path.exists(args.records):
        with open(args.records) as f:
            done = {(r["row"], r["seed"], r["settings"]) for r in map(json.loads, f)}
    commit = run_results.git("rev-parse", "HEAD")
    dirty = bool(run_results.git("status", "--porcelain", "--", "scripts/pytorch_reference.py"))
    for seed in (int(s) for s in args.seeds.split(",")):
        if (args.row, seed, digest(settings)) in done:
            print(f"== {args.row} seed {seed}: already recorded", file=sys.stderr)
            continue
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        wall = time.perf_counter()
        record = run(args.row, seed, args, train_all, dev)
        record.update({"commit": commit, "dirty_tree": dirty, "started": started,
                       "process_seconds": time.perf_counter() - wall})
        with open(args.records, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"== {args.row} seed {seed}: dev {100 * record['test_average']:.1f}, validation "
              f"{100 * max(record['validation'].values()):.1f} at step {record['selected_step']}, "
              f"{record['seconds']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
