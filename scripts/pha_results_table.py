#!/usr/bin/env python3
"""Turns the JSON lines of examples/03_pha_fewshot --json (scripts/run_pha_results.sh) into the markdown tables
of docs/results.md: (a) low-data multi-task — per n and model, the dev score per task (best over the
evaluations), mean over seeds, the average (best and final) with its spread over seeds, trainable parameters
the papers' way (% of the backbone per task); (b) few-shot transfer to the target — per k and arm, the dev
metrics (best and final), mean over seeds, and the prototype PHA retrieved."""
import json
import statistics
import sys
from collections import defaultdict

TASKS = ["rte", "mrpc", "stsb", "cola", "sst2", "wnli"]
MODELS = ["pha", "pha (retriever-only)", "pha (off)", "adapters", "hyperformerpp", "camtl"]
ARMS = ["pha", "adapter", "full"]


def model_of(r, mixed_scaling):
    """Runs with their contrastive losses changed (--contrastive-retriever-only, --no-contrastive) get their own
    rows; so do runs with scaled regression targets when a file mixes scaled and raw ones."""
    c = r.get("contrastive", "reference")
    label = r["model"] if r["model"] != "pha" or c == "reference" else f"pha ({c})"
    if mixed_scaling and r.get("scale_regression"):
        label += ", STS-B targets / 5"
    return label


def latest_per_seed(rows, key):
    """A rerun of the same configuration and seed replaces the earlier line (runs are deterministic: the reruns
    seen so far reproduced their first run exactly)."""
    kept = {}
    for r in rows:
        kept[key(r) + (r["seed"],)] = r
    return list(kept.values())


def ordered(labels, preferred):
    return [m for m in preferred if m in labels] + sorted(m for m in labels if m not in preferred)


def mean_spread(values):
    m = statistics.mean(values)
    half = (max(values) - min(values)) / 2 if len(values) > 1 else 0.0
    return m, half


def multitask(rows):
    mixed = len({bool(r.get("scale_regression")) for r in rows}) > 1
    rows = latest_per_seed(rows, lambda r: (r["n_train"], model_of(r, mixed)))
    by = defaultdict(list)
    for r in rows:
        by[(r["n_train"], model_of(r, mixed))].append(r)
    out = []
    for n in sorted({k[0] for k in by}):
        out.append(f"\n**n = {n} training examples per task** "
                   f"({by[next(k for k in by if k[0] == n)][0]['steps']} steps of 16)\n")
        out.append("| model | seeds | " + " | ".join(TASKS) + " | avg best | avg final | trainable | % backbone/task |")
        out.append("|---|---|" + "---|" * len(TASKS) + "---|---|---|---|")
        for model in ordered({k[1] for k in by if k[0] == n}, MODELS):
            rs = sorted(by[(n, model)], key=lambda r: r["seed"])
            if not rs:
                continue
            cells = [f"{100 * statistics.mean(r['best'][t] for r in rs):.1f}" for t in TASKS]
            b, bs = mean_spread([100 * r["best_average"] for r in rs])
            f, fs = mean_spread([100 * r["final_average"] for r in rs])
            per_task = rs[0].get("percent_per_task")
            pct = f"{per_task:.2f}" if per_task is not None else \
                f"{100 * rs[0]['trainable'] / len(TASKS) / rs[0]['backbone']:.2f}"
            seeds = ",".join(str(r["seed"]) for r in rs)
            out.append(f"| {model} | {seeds} | " + " | ".join(cells) +
                       f" | {b:.1f} ± {bs:.1f} | {f:.1f} ± {fs:.1f} | {rs[0]['trainable']:,} | {pct} |")
    return out


def transfer(rows):
    rows = latest_per_seed(rows, lambda r: (r["k"], r["model"]))
    by = defaultdict(list)
    for r in rows:
        by[(r["k"], r["model"])].append(r)
    target = rows[0]["target"]
    out = [f"\n| k | arm | seeds | {target} best (mean) | {target} final (mean) | final metrics (mean) | retrieved |",
           "|---|---|---|---|---|---|---|"]
    for k in sorted({key[0] for key in by}):
        for arm in ARMS:
            rs = sorted(by.get((k, arm), []), key=lambda r: r["seed"])
            if not rs:
                continue
            best = statistics.mean(100 * r["best"][target] for r in rs)
            final = statistics.mean(100 * r["final"][target] for r in rs)
            metrics = defaultdict(list)
            for r in rs:
                for name, v in r.get("final_metrics", {}).get(target, {}).items():
                    metrics[name].append(100 * v)
            m = ", ".join(f"{name} {statistics.mean(v):.1f}" for name, v in sorted(metrics.items()))
            retrieved = ", ".join(r.get("retrieved", "") for r in rs) if arm == "pha" else ""
            seeds = ",".join(str(r["seed"]) for r in rs)
            out.append(f"| {k} | {arm} | {seeds} | {best:.1f} | {final:.1f} | {m} | {retrieved} |")
    return out


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    multi = [r for r in rows if r.get("mode") == "multitask" and r.get("n_train") is not None]
    trans = [r for r in rows if r.get("mode") == "transfer"]
    lines = []
    if multi:
        lines += ["### (a) Low-data multi-task training"] + multitask(multi)
    if trans:
        lines += ["", "### (b) Few-shot transfer"] + transfer(trans)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/results/pha_runs.jsonl")
