"""PyTorch's matrix products on the encoder's shapes, y = x W^T (torch.nn.functional.linear), the peer of
bench_gemm's hyperadapt_gemm cases: fp32 (MKL's SGEMM in the PyPI wheel); bf16 autocast on fp32 operands (both
cast to bf16 on every call, as our onednn_gemm rounds both; oneDNN's matmul); and bf16 tensors (no cast: what a
product inside an autocast region costs once its operands are bf16 already). One JSON line per case, GFLOP/s of
the best of `--repeats` timings of `--seconds` each.
  usage: gemm.py --threads 2 [--seconds 1] [--repeats 5] [--shapes 2048x2304x768 ...]
"""
import argparse
import json
import time

import torch

SHAPES = ["2048x2304x768", "2048x768x768", "2048x3072x768", "2048x768x3072", "2048x1536x384", "2048x384x1536"]


def rate(fn, flops, seconds, repeats):
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        best = min(best, elapsed / calls)
    return flops / best * 1e-9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--shapes", nargs="*", default=SHAPES, help="m x n x k")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with torch.inference_mode():
        for shape in a.shapes:
            m, n, k = (int(v) for v in shape.split("x"))
            x, w = torch.randn(m, k), torch.randn(n, k)
            xb, wb = x.to(torch.bfloat16), w.to(torch.bfloat16)
            flops = 2.0 * m * n * k

            def autocast_bf16():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return torch.nn.functional.linear(x, w)

            cases = {"fp32": lambda: torch.nn.functional.linear(x, w), "bf16 autocast": autocast_bf16,
                     "bf16 tensors": lambda: torch.nn.functional.linear(xb, wb)}
            for case, fn in cases.items():
                print(json.dumps({"m": m, "n": n, "k": k, "case": case, "threads": a.threads,
                                  "gflops": rate(fn, flops, a.seconds, a.repeats)}), flush=True)


if __name__ == "__main__":
    main()
