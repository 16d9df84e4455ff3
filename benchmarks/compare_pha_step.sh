#!/usr/bin/env bash
# One PHA training step (MiniLM shape, batch 32, L 128, 2 threads): hyperadapt (bench_pha_step) and the same
# model in PyTorch (pytorch/pha_step.py) back to back, with the ratio (benchmarks/compare_step.sh).
#   usage: benchmarks/compare_pha_step.sh [build-dir] [threads]      (OMP_WAIT_POLICY and DEVICE=cuda pass through)
exec "$(cd "$(dirname "$0")" && pwd)/compare_step.sh" bench_pha_step pha_step.py "$@"
