#!/usr/bin/env python3
"""Checks hyperadapt's checkpoint saver against Hugging Face transformers.

hf_roundtrip (tests/tools/hf_roundtrip.cpp) loads all-MiniLM-L6-v2 with hyperadapt's loader and saves it
with hyperadapt's saver into a temporary folder; transformers.BertModel.from_pretrained then loads that folder.
Passes when transformers reports no missing, unexpected or mis-shaped key, every tensor equals the
original bit for bit, and the outputs on the reference sentence pairs are identical (max |diff| printed).

  .deps/refvenv/bin/python tests/reference/roundtrip_transformers.py --tool build-io/tests/hf_roundtrip
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file
from transformers import BertModel

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def find_tool():
    found = sorted(glob.glob(os.path.join(REPO, "build*", "tests", "hf_roundtrip")), key=os.path.getmtime)
    return found[-1] if found else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", default=find_tool(), help="the hf_roundtrip executable (default: newest build*/tests/hf_roundtrip)")
    ap.add_argument("--model", default=os.environ.get("HYPERADAPT_MODEL_DIR",
                                                      os.path.join(REPO, ".deps", "models", "all-MiniLM-L6-v2")))
    args = ap.parse_args()
    if not args.tool or not os.path.exists(args.tool):
        sys.exit("roundtrip_transformers.py: build hf_roundtrip first (cmake --build <build> --target hf_roundtrip)")

    torch.set_num_threads(1)
    original = BertModel.from_pretrained(args.model).eval()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([args.tool, args.model, out], check=True)
        saved, info = BertModel.from_pretrained(out, output_loading_info=True)
        saved.eval()
        print("transformers loading info:", info)
        problems = {k: v for k, v in info.items() if v}

        a, b = original.state_dict(), saved.state_dict()
        differing = [k for k in a if k not in b or a[k].shape != b[k].shape or not torch.equal(a[k], b[k])]
        print(f"state dict: {len(a)} tensors, {len(differing)} differ{': ' + ', '.join(differing[:5]) if differing else ''}")

        worst = 0.0
        refs = [os.path.join(REPO, "tests", "data", "reference", "minilm_pairs.safetensors"),
                os.path.join(REPO, ".deps", "reference", "minilm_glue_pairs.safetensors")]
        for ref in filter(os.path.exists, refs):
            t = load_file(ref)
            inputs = dict(input_ids=t["input_ids"], token_type_ids=t["token_type_ids"],
                          attention_mask=t["attention_mask"])
            with torch.no_grad():
                o1, o2 = original(**inputs), saved(**inputs)
            d_hidden = (o1.last_hidden_state - o2.last_hidden_state).abs().max().item()
            d_pooled = (o1.pooler_output - o2.pooler_output).abs().max().item()
            worst = max(worst, d_hidden, d_pooled)
            print(f"{os.path.basename(ref)}: {tuple(t['input_ids'].shape)} ids, max |diff| original vs "
                  f"hyperadapt-saved: last_hidden_state {d_hidden:.3g}, pooler_output {d_pooled:.3g}")

    ok = not problems and not differing and worst == 0.0
    print("ROUND TRIP", "OK" if ok else f"FAILED (loading problems {problems}, max diff {worst})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
