#!/usr/bin/env python3
"""Tests of scripts/run_results.py with a stand-in example (a small Python program that writes one record per
call to --json, as 02_camtl_glue and 03_pha_fewshot do): the seed / data-seed pairing, the record's settings
and provenance (the commit a frozen copy of the binaries names in source_commit), runs already recorded
skipped, --max-runs, a missing PHA source skipped with its reason, a failing run stopping the grid, the
sweep rows' parameter groups, and --best-of choosing by validation only.

  python3 -m unittest -v tests/scripts/test_run_results.py      (HYPERADAPT_ROOT: the repository root)
"""
import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

ROOT = Path(os.environ.get("HYPERADAPT_ROOT") or Path(__file__).resolve().parents[2])
SCRIPT = ROOT / "scripts" / "run_results.py"

# The stand-in example: its test scores are a function of --seed and of --lr (so that a test can tell runs apart),
# its validation scores of --lr only; FAIL_SEED in the environment makes that seed fail.
FAKE = textwrap.dedent("""\
    #!/usr/bin/env python3
    import json, os, sys
    a = sys.argv[1:]
    get = lambda k: a[a.index(k) + 1]
    seed, lr = int(get("--seed")), float(get("--lr"))
    if os.environ.get("FAIL_SEED") == str(seed):
        print("exploded", file=sys.stderr)
        sys.exit(3)
    with open(get("--json"), "a") as f:
        f.write(json.dumps({"test": {"rte": 0.5 + seed / 100}, "test_average": 0.5 + seed / 100,
                            "validation": {"rte": lr * 100}, "seed": seed, "data_seed": int(get("--data-seed")),
                            "argv": a}) + "\\n")
""")


class RunResults(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.build = self.dir / "build"
        (self.build / "examples").mkdir(parents=True)
        for name in ("02_camtl_glue", "03_pha_fewshot"):
            p = self.build / "examples" / name
            p.write_text(FAKE)
            p.chmod(p.stat().st_mode | stat.S_IXUSR)
        self.records = self.dir / "records.jsonl"

    def tearDown(self):
        self.tmp.cleanup()

    def run_grid(self, *args, env=None, check=True):
        cmd = [sys.executable, str(SCRIPT), *args, "--build", str(self.build), "--records", str(self.records),
               "--checkpoint", str(self.dir / "ck"), "--data", str(self.dir / "data"),
               "--sources", str(self.dir / "sources")]
        p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def lines(self):
        return [json.loads(x) for x in self.records.read_text().splitlines() if x.strip()] if self.records.exists() else []

    def test_seed_pairing_settings_and_provenance(self):
        (self.build / "source_commit").write_text("0123456789abcdef0123456789abcdef01234567 dirty\n")
        self.run_grid("camtl", "--rows", "a,c", "--seeds", "2,3")
        recs = self.lines()
        # Seed-major: every row gains a seed before any row gains the next.
        self.assertEqual([(r["row"], r["seed_index"]) for r in recs], [("a", 2), ("c", 2), ("a", 3), ("c", 3)])
        for r in recs:
            self.assertEqual(r["seed"], r["seed_index"])
            self.assertEqual(r["data_seed"], 100 + r["seed_index"])
            self.assertEqual(r["commit"], "0123456789abcdef0123456789abcdef01234567")  # the binaries', not HEAD's
            self.assertTrue(r["dirty_tree"])
            self.assertEqual(r["grid"], "camtl")
            self.assertEqual(len(r["settings"]), 12)
            self.assertIn("--model", r["args"])
        self.assertNotEqual(recs[0]["settings"], recs[1]["settings"])

    def test_recorded_runs_are_skipped_and_max_runs_stops(self):
        self.run_grid("camtl", "--rows", "a", "--seeds", "1,2,3", "--max-runs", "2")
        self.assertEqual([r["seed_index"] for r in self.lines()], [1, 2])
        self.run_grid("camtl", "--rows", "a", "--seeds", "1,2,3")
        self.assertEqual([r["seed_index"] for r in self.lines()], [1, 2, 3])  # 1 and 2 not again

    def test_failed_run_stops_the_grid_and_records_nothing_for_it(self):
        p = self.run_grid("camtl", "--rows", "a", "--seeds", "1,2,3", env={"FAIL_SEED": "2"}, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("seed 2 failed", p.stderr)
        self.assertIn("exploded", p.stderr)
        self.assertEqual([r["seed_index"] for r in self.lines()], [1])

    def test_missing_pha_source_is_skipped_with_its_reason(self):
        p = self.run_grid("cb", "--rows", "k16-pha,k16-pha-prototype,k16-adapter", "--seeds", "1")
        self.assertIn("pha_glue6_n1000_seed1.safetensors is missing", p.stderr)
        self.assertEqual([r["row"] for r in self.lines()], ["k16-adapter"])
        (self.dir / "sources").mkdir()
        (self.dir / "sources" / "pha_glue6_n1000_seed1.safetensors").write_text("stand-in")
        self.run_grid("cb", "--rows", "k16-pha,k16-pha-prototype", "--seeds", "1")
        recs = {r["row"]: r for r in self.lines()}
        self.assertIn("--source", recs["k16-pha"]["argv"])
        self.assertIn("prototype-head", recs["k16-pha-prototype"]["argv"])
        self.assertNotIn("--tune", recs["k16-pha"]["argv"])

    def test_sweep_rows_give_the_named_group_its_own_rate(self):
        self.run_grid("camtl", "--rows", "c-cond1e-3", "--seeds", "1")
        argv = self.lines()[0]["argv"]
        group = argv[argv.index("--lr-group") + 1]
        self.assertTrue(group.endswith("=1e-3"), group)
        self.assertEqual(argv[argv.index("--lr") + 1], "2e-4")
        self.run_grid("pha", "--rows", "n100-pha-gen3e-3", "--seeds", "1")
        argv = self.lines()[1]["argv"]
        self.assertEqual(argv[argv.index("--lr-group") + 1], r"^(retriever|prototypes|hypernet)\.=3e-3")

    def test_best_of_chooses_by_validation_over_common_seeds(self):
        # lr 1e-4 (c-lr1e-4) validates at 0.01, 2e-4 (c) at 0.02, 5e-4 (c-lr5e-4) at 0.05: c-lr5e-4 wins although
        # the stand-in gives every row the same test score.
        self.run_grid("camtl", "--rows", "c,c-lr1e-4,c-lr5e-4", "--seeds", "1")
        p = self.run_grid("camtl", "--best-of", "c,c-lr1e-4,c-lr5e-4", "--seeds", "2")
        self.assertIn("-> c-lr5e-4", p.stderr)
        self.assertEqual([(r["row"], r["seed_index"]) for r in self.lines()][-1], ("c-lr5e-4", 2))

    def test_unknown_row_is_refused(self):
        p = self.run_grid("camtl", "--rows", "z", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("has no row 'z'", p.stderr)


if __name__ == "__main__":
    unittest.main()
