#!/usr/bin/env bash
# One CA-MTL training step (MiniLM shape, batch 32, L 128, 2 threads): hyperadapt (bench_camtl_step) and the same
# model in PyTorch (pytorch/camtl_step.py) back to back, with the ratio (benchmarks/compare_step.sh).
#   usage: benchmarks/compare_camtl_step.sh [build-dir] [threads]      (OMP_WAIT_POLICY and DEVICE=cuda pass through)
exec "$(cd "$(dirname "$0")" && pwd)/compare_step.sh" bench_camtl_step camtl_step.py "$@"
