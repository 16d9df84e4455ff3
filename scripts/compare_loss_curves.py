#!/usr/bin/env python3
"""Compares the training-loss curves of two runs' metrics.jsonl (an example's --out folder): step by step, the
same steps in both, every loss finite, and |loss_a - loss_b| <= TOL at every step (issue 13: a run on the GPU
against the same run on the CPU, fp32 within 1e-4). Prints the largest difference and where it is; exits 1 when a
step differs by more than TOL, a step is missing from one run, or a loss is not finite, 2 on unreadable input.

  usage: scripts/compare_loss_curves.py A/metrics.jsonl B/metrics.jsonl [--tolerance 1e-4] [--run NAME]
"""
import argparse
import json
import math
import sys


def train_losses(path, run):
    losses = {}
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    raise SystemExit(f"{path}:{number}: not JSON ({e.msg})") from None
                if r.get("split") != "train" or (run and r.get("run") != run):
                    continue
                losses[(r.get("run"), int(r["step"]))] = float(r["loss"])
    except OSError as e:
        print(f"{path}: {e.strerror}", file=sys.stderr)
        sys.exit(2)
    if not losses:
        print(f"{path}: no training losses" + (f" of run '{run}'" if run else ""), file=sys.stderr)
        sys.exit(2)
    return losses


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--run", default="", help="compare only the records of this run name")
    o = p.parse_args()
    a, b = train_losses(o.a, o.run), train_losses(o.b, o.run)
    problems = []
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        problems.append(f"steps in one run only: {o.a}: {only_a[:5]}, {o.b}: {only_b[:5]}")
    worst, where = 0.0, None
    for key in sorted(set(a) & set(b)):
        la, lb = a[key], b[key]
        if not (math.isfinite(la) and math.isfinite(lb)):
            problems.append(f"run {key[0]} step {key[1]}: loss {la} against {lb}")
            continue
        if abs(la - lb) > worst:
            worst, where = abs(la - lb), key
    shared = len(set(a) & set(b))
    at = f" (run {where[0]}, step {where[1]}: {a[where]:.8g} against {b[where]:.8g})" if where else ""
    print(f"{shared} steps compared; largest |difference| {worst:.3g}{at}; tolerance {o.tolerance:g}")
    if worst > o.tolerance:
        problems.append(f"largest difference {worst:.3g} exceeds {o.tolerance:g}")
    for why in problems:
        print("FAIL: " + why)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
