"""The GLUE batches of the C++ step benchmarks (benchmarks/models/glue_batches.hpp, written with
HYPERADAPT_DUMP_GLUE_BATCHES=FILE) as PyTorch tensors, each batch padded to its longest row rounded up to a
multiple of 8: what a PyTorch user runs with dynamic padding (Hugging Face's DataCollatorWithPadding with
pad_to_multiple_of=8), PyTorch's usual best for variable-length batches."""
import json

import torch


def load(path, device="cpu"):
    """[(ids, types, mask, task, labels, scores, real_tokens)] per batch."""
    out = []
    for b in json.load(open(path))["batches"]:
        rows = len(b["ids"])
        longest = max(len(r) for r in b["ids"])
        t = max(8, (longest + 7) // 8 * 8)
        ids = torch.zeros(rows, t, dtype=torch.long)
        types = torch.zeros(rows, t, dtype=torch.long)
        mask = torch.zeros(rows, t, dtype=torch.long)
        for i, (r, ty) in enumerate(zip(b["ids"], b["types"])):
            ids[i, : len(r)] = torch.tensor(r)
            types[i, : len(ty)] = torch.tensor(ty)
            mask[i, : len(r)] = 1
        task = torch.tensor(b["task"])
        labels = torch.tensor(b["label"])
        scores = torch.tensor(b["score"], dtype=torch.float)
        real = sum(len(r) for r in b["ids"])
        out.append(tuple(x.to(device) for x in (ids, types, mask, task, labels, scores)) + (real,))
    return out
