"""The command line the PyTorch step peers share (camtl_step.py, pha_step.py), and the torch settings it implies:
threads, TF32 (only with --precision tf32), the seed."""
import argparse

import torch


def parse(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--min-steps", type=int, default=0,
                    help="time at least this many steps (compare_memory.sh: every GLUE batch once)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batches", help="the C++ benchmark's GLUE batches (HYPERADAPT_DUMP_GLUE_BATCHES), each "
                    "padded to its longest row; tokens/s then counts real tokens")
    ap.add_argument("--precision", choices=("fp32", "bf16", "tf32"), default="fp32",
                    help="bf16: torch.autocast(bfloat16) around forward + loss; weights, gradients and AdamW stay fp32; "
                    "tf32 (a GPU): fp32 with torch.backends.cuda.matmul.allow_tf32")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (fp32, TF32 off as PyTorch's default)")
    ap.add_argument("--compile", action="store_true",
                    help="the model under torch.compile (default mode; the warm-up runs every batch once, so that "
                    "compilation for each shape happens before the timing)")
    a = ap.parse_args()
    if a.precision == "tf32" and a.device == "cpu":
        ap.error("--precision tf32 needs --device cuda")
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    return a
