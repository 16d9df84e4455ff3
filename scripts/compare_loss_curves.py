#!/usr/bin/env python3
"""Compares the training-loss curves of two runs' metrics.jsonl (an example's --out folder): step by step, the
same steps in both, every loss finite, and |loss_a - loss_b| <= TOL at every step (issue 13: a run on the GPU
against the same run on the CPU, fp32 within 1e-4). Prints the largest difference and where it is; exits 1 when a
step differs by more than TOL, a step is missing from one run, or a loss is not finite, 2 on unreadable input.

With --window N the means of N consecutive steps are compared instead (steps 1..N, N+1..2N, ... of each run; a
shorter last window too): a reduced-precision run (bf16, fp16) follows the fp32 curve without tracking it step by
step, as tests/backend/test_onednn_gemm.cpp checks the CPU's bf16 (20-step means).

  usage: scripts/compare_loss_curves.py A/metrics.jsonl B/metrics.jsonl [--tolerance 1e-4] [--run NAME] [--window N]
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
    p.add_argument("--window", type=int, default=1, help="compare means of this many consecutive steps (default 1)")
    o = p.parse_args()
    if o.window < 1:
        p.error("--window must be at least 1")
    a, b = train_losses(o.a, o.run), train_losses(o.b, o.run)
    problems = []
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        problems.append(f"steps in one run only: {o.a}: {only_a[:5]}, {o.b}: {only_b[:5]}")
    shared = sorted(set(a) & set(b))
    for key in shared:
        if not (math.isfinite(a[key]) and math.isfinite(b[key])):
            problems.append(f"run {key[0]} step {key[1]}: loss {a[key]} against {b[key]}")
    # Windows of consecutive shared steps per run, each named by its first and last step.
    windows = []
    for run in sorted({k[0] for k in shared}, key=str):
        keys = [k for k in shared if k[0] == run and math.isfinite(a[k]) and math.isfinite(b[k])]
        for i in range(0, len(keys), o.window):
            part = keys[i:i + o.window]
            windows.append((run, part[0][1], part[-1][1], sum(a[k] for k in part) / len(part),
                            sum(b[k] for k in part) / len(part)))
    worst, where = 0.0, None
    for w in windows:
        if abs(w[3] - w[4]) > worst:
            worst, where = abs(w[3] - w[4]), w
    steps = f"steps {where[1]}-{where[2]}" if where and where[1] != where[2] else f"step {where[1]}" if where else ""
    at = f" (run {where[0]}, {steps}: {where[3]:.8g} against {where[4]:.8g})" if where else ""
    what = f"{len(windows)} means of {o.window} steps" if o.window > 1 else f"{len(shared)} steps"
    print(f"{what} compared; largest |difference| {worst:.3g}{at}; tolerance {o.tolerance:g}")
    if worst > o.tolerance:
        problems.append(f"largest difference {worst:.3g} exceeds {o.tolerance:g}")
    for why in problems:
        print("FAIL: " + why)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
