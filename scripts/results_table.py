#!/usr/bin/env python3
"""Turns the JSON lines written by 02_camtl_glue --json (scripts/run_camtl_results.sh) into the markdown tables of
docs/results.md: per configuration, the dev score per task (best over evaluations, as CA-MTL reports, and the
final checkpoint's), mean ± spread over seeds, the average, trainable parameters and the share of data used."""
import json
import statistics
import sys
from collections import defaultdict

TASKS = ["rte", "mrpc", "stsb", "cola", "sst2", "wnli"]


def config_of(r):
    if r["model"] == "single":
        return "(a) single-task full fine-tuning"
    if r["model"] == "mtl":
        return f"(b) multi-task full fine-tuning, {r['sampler']}"
    drops = [k for k, on in r["modules"].items() if not on]
    base = "(c) CA-MTL, proportional" if r["sampler"] == "proportional" else "(d) CA-MTL, MT-Uncertainty"
    return base + (" minus " + ", ".join(drops) if drops else "")


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    # single-task runs come one line per task: merge them per seed
    merged = defaultdict(lambda: {"best": {}, "final": {}, "trainable": 0, "fraction": [], "seconds": 0.0})
    for r in rows:
        key = (config_of(r), r["seed"])
        m = merged[key]
        m["best"].update(r["best"])
        m["final"].update(r["final"])
        m["trainable"] = max(m["trainable"], r["trainable"])
        m["backbone"] = r["backbone"]
        m["fraction"].append(r["fraction_used"])
        m["seconds"] += r["seconds"]
    by_config = defaultdict(list)
    for (config, seed), m in merged.items():
        by_config[config].append((seed, m))
    for which in ("best", "final"):
        label = "best dev score over evaluations (CA-MTL's reporting)" if which == "best" else "final checkpoint"
        print(f"\n{label}; mean over seeds (± half the range); metrics: MRPC mean(F1, acc), STS-B mean(Pearson, "
              "Spearman), CoLA MCC, others accuracy; ×100\n")
        print("| configuration | seeds | " + " | ".join(t.upper() for t in TASKS) + " | average | trainable / backbone | data used |")
        print("|---|---|" + "---:|" * (len(TASKS) + 3))
        for config in sorted(by_config):
            runs = by_config[config]
            cells = []
            avgs = []
            for seed, m in runs:
                avgs.append(100 * statistics.mean(m[which][t] for t in TASKS if t in m[which]))
            for t in TASKS:
                vals = [100 * m[which][t] for _, m in runs if t in m[which]]
                if not vals:
                    cells.append("–")
                    continue
                spread = (max(vals) - min(vals)) / 2
                cells.append(f"{statistics.mean(vals):.1f}" + (f" ± {spread:.1f}" if len(vals) > 1 else ""))
            m0 = runs[0][1]
            spread = (max(avgs) - min(avgs)) / 2
            frac = statistics.mean(f for _, m in runs for f in m["fraction"])
            print(f"| {config} | {', '.join(str(s) for s, _ in sorted(runs, key=lambda x: x[0]))} | " + " | ".join(cells) +
                  f" | **{statistics.mean(avgs):.1f}**" + (f" ± {spread:.1f}" if len(avgs) > 1 else "") +
                  f" | {m0['trainable'] / 1e6:.1f} M / {m0['backbone'] / 1e6:.1f} M ({100 * m0['trainable'] / m0['backbone']:.0f} %)"
                  f" | {100 * frac:.0f} % |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/results/camtl_runs.jsonl")
