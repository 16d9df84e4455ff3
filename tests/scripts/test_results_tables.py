#!/usr/bin/env python3
"""Tests of scripts/results_tables.py on small made-up run records (no real runs): mean ± sd over seeds, the
Student-t interval for n = 5 and n = 2, paired differences over the common seeds only, row (a)'s per-task
records merged per seed, the floor's dagger, null scores, malformed lines (exit 2, file:line), the plot.
Every expected number is worked out by hand in the comments next to it.

  python3 -m unittest -v tests/scripts/test_results_tables.py      (HYPERADAPT_ROOT: the repository root)
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(os.environ.get("HYPERADAPT_ROOT") or Path(__file__).resolve().parents[2])
SCRIPT = ROOT / "scripts" / "results_tables.py"

sys.dont_write_bytecode = True  # no __pycache__ left in scripts/ by importing the script
spec = importlib.util.spec_from_file_location("results_tables", SCRIPT)
results_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_tables)

BACKBONE = 22_700_000
FLOOR = {"rte": 0.528, "stsb": None}  # STS-B's floor is null in the records: 0 by convention


def record(row, seed, test, model="camtl", trainable=8_500_000, steps=300, seconds=60.0, **extra):
    r = {"grid": "camtl", "row": row, "seed_index": seed, "settings": "s1", "args": [], "commit": "1234567890ab",
         "dirty_tree": False, "cpu": "Test CPU (avx2, 2 cpus)", "threads": 2, "model": model, "test": test,
         "floor": {t: FLOOR[t] for t in test}, "steps": steps, "batch": 32, "real_tokens": 1000, "seconds": seconds,
         "trainable": trainable, "backbone": BACKBONE, "fraction_used": 1.0, "selection": "best validation average",
         "curve": [{"step": 60, "average": 0.5, "scores": {t: 0.5 for t in test}}]}
    r.update(extra)
    return r


def single_task(seed, rte, stsb):
    """Row (a): one record per task and seed, each a separate single-task model (94 steps, 100 s / 50 s)."""
    return [record("a", seed, {"rte": rte}, model="single", trainable=22_713_986, steps=94, seconds=100.0),
            record("a", seed, {"stsb": stsb}, model="single", trainable=22_713_600, steps=94, seconds=50.0)]


def fixture_records():
    rs = []
    # (a) seeds 1, 2, 6; per-seed averages .60, .64, .20. Seed 6 is far off and shares no seed with (d), so
    # an unpaired comparison would move while the paired one must not.
    rs += single_task(1, 0.50, 0.70) + single_task(2, 0.54, 0.74) + single_task(6, 0.20, 0.20)
    # (b) seeds 1, 2: averages .50, .60. (c) seeds 1, 2: averages .52, .62 -- the same seed effect plus 2 points.
    rs += [record("b", 1, {"rte": 0.53, "stsb": 0.47}, model="mtl", trainable=22_700_100),
           record("b", 2, {"rte": 0.53, "stsb": 0.67}, model="mtl", trainable=22_700_100)]
    rs += [record("c", 1, {"rte": 0.55, "stsb": 0.49}), record("c", 2, {"rte": 0.55, "stsb": 0.69})]
    # (d) seeds 1..5: rte .60 .. .68, stsb .70 .. .78, averages .65 .. .73; seed 5 from a dirty tree.
    for i in range(5):
        rs.append(record("d", i + 1, {"rte": 0.60 + 0.02 * i, "stsb": 0.70 + 0.02 * i}, sampler="mtu",
                         fraction_used=1 / 6, dirty_tree=(i == 4)))
    # (d) minus CBDA: seed 1's STS-B is NaN (null), so seed 1 has no average.
    rs += [record("d-cbda", 1, {"rte": 0.61, "stsb": None}), record("d-cbda", 2, {"rte": 0.63, "stsb": 0.75})]
    return rs


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def run_script(*args, env=None):
    p = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                       env=env, cwd=ROOT)
    return p.returncode, p.stdout, p.stderr


def run_on(records):
    """results_tables.py over these records (one JSONL file in a temporary folder): (returncode, stdout, stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.jsonl"
        write_jsonl(path, records)
        return run_script(path)


def table_line(output, start):
    lines = [line for line in output.splitlines() if line.startswith(start)]
    if len(lines) != 1:
        raise AssertionError(f"expected one line starting with {start!r}, found {len(lines)} in:\n{output}")
    return lines[0]


class FixtureOutput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = Path(cls.tmp.name) / "camtl.jsonl"
        write_jsonl(cls.path, fixture_records())
        cls.rc, cls.out, cls.err = run_script(cls.path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_runs(self):
        self.assertEqual(self.rc, 0, self.err)

    def test_n5_mean_sd_and_t_interval(self):
        # rte 60..68: mean 64.0, sd sqrt((16+4+0+4+16)/4) = sqrt(10) = 3.16; the same for stsb and the average.
        # Average 69.0, half width t(4) * sd / sqrt(5) = 2.776 * 3.1623 / 2.2361 = 3.926: [65.07, 72.93].
        self.assertEqual(table_line(self.out, "| (d) CA-MTL, MT-Uncertainty |"),
                         "| (d) CA-MTL, MT-Uncertainty | 64.0 ± 3.2 | 74.0 ± 3.2 | 69.0 ± 3.2 | 5 | [65.1, 72.9] "
                         "| 8.5 M / 22.7 M (37 %) |")

    def test_n2_t_interval_and_floor_dagger_at_the_floor(self):
        # rte 53.0 on both seeds is within 1 point of the floor 52.8: dagger. Averages 50, 60: mean 55.0,
        # sd 7.07, half width 12.706 * 7.0711 / 1.4142 = 63.53: [-8.5, 118.5].
        self.assertEqual(table_line(self.out, "| (b) multi-task"),
                         "| (b) multi-task full fine-tuning, proportional | 53.0 ± 0.0 † | 57.0 ± 14.1 | 55.0 ± 7.1 "
                         "| 2 | [-8.5, 118.5] | 22.7 M / 22.7 M (100 %) |")

    def test_no_dagger_above_the_floor(self):
        # rte 55.0 is 2.2 points above the floor 52.8: no mark.
        self.assertEqual(table_line(self.out, "| (c) CA-MTL, proportional |"),
                         "| (c) CA-MTL, proportional | 55.0 ± 0.0 | 59.0 ± 14.1 | 57.0 ± 7.1 | 2 | [-6.5, 120.5] "
                         "| 8.5 M / 22.7 M (37 %) |")

    def test_row_a_merged_per_seed(self):
        # Three seeds, each two single-task records. rte .50 .54 .20: mean 41.3, sd 18.6, below the floor: dagger.
        # stsb .70 .74 .20: mean 54.7, sd 30.1. Averages .60 .64 .20: mean 48.0, sd sqrt((144+256+784)/2) = 24.33,
        # half width 4.303 * 24.331 / 1.7321 = 60.45: [-12.4, 108.4]; 26.4 is the floor average, no mark.
        self.assertEqual(table_line(self.out, "| (a) single-task"),
                         "| (a) single-task full fine-tuning | 41.3 ± 18.6 † | 54.7 ± 30.1 | 48.0 ± 24.3 | 3 "
                         "| [-12.4, 108.4] | 2 × 22.7 M / 22.7 M (100 % each) |")
        # The budget sums the two models per seed: 188 steps and 150 s per seed, 450 s over three seeds.
        budget = table_line(self.out, "- (a) single-task full fine-tuning:")
        self.assertIn("188 steps × 32 summed over 2 single-task models per seed", budget)
        self.assertIn("7 min 30 s of training in all (2 min 30 s per seed)", budget)
        self.assertIn("seeds 1, 2, 6", budget)

    def test_floor_row(self):
        # rte 52.8, STS-B 0 (null floor: a constant has no correlation), average 26.4.
        self.assertEqual(table_line(self.out, "| constant predictor"),
                         "| constant predictor (majority class of the training split) | 52.8 | 0.0 | 26.4 | | | |")
        self.assertIn("† the mean is within 1 point of the constant predictor's score", self.out)

    def test_null_scores(self):
        # STS-B null on seed 1: the cell is seed 2's 75.0 with its count; seed 1 has no average, so the average
        # is seed 2's (.63 + .75) / 2 = 69.0 alone, with its count too.
        self.assertEqual(table_line(self.out, "| (d) minus CBDA |"),
                         "| (d) minus CBDA | 62.0 ± 1.4 | 75.0 (1 of 2 seeds) | 69.0 (1 of 2 seeds) | 1 "
                         "| n = 1, no interval "
                         "| 8.5 M / 22.7 M (37 %) |")

    def test_paired_over_common_seeds_only(self):
        # (d) - (a) on seeds 1 and 2 only (seed 6 is not in (d); seeds 3-5 not in (a)): averages .65 - .60 and
        # .67 - .64 = 5 and 3 points, mean +4.0, sd 1.414, half width 12.706 * 1.414 / 1.414 = 12.7.
        # Unpaired, the rows' means 69.0 - 48.0 would give +21.0.
        line = table_line(self.out, "| (d) CA-MTL, MT-Uncertainty − (a)")
        self.assertTrue(line.endswith("| +4.0 | 2 | [-8.7, +16.7] |"), line)
        # Per task: rte .60-.50, .62-.54 = 10, 8 points: mean 9.0, half width 12.706 * 1.414 / 1.414 = 12.7.
        self.assertIn("| +9.0 [-3.7, +21.7] |", line)

    def test_pairing_removes_the_seed_effect(self):
        # (c) - (b): both seeds differ by exactly 2 points, so the paired interval has zero width, although each
        # row's own interval is [-8.5, 118.5] wide (an unpaired comparison could not tell them apart).
        line = table_line(self.out, "| (c) CA-MTL, proportional − (b)")
        self.assertTrue(line.endswith("| +2.0 | 2 | [+2.0, +2.0] |"), line)
        # (d) - (c): averages .65 - .52 and .67 - .62 = 13 and 5 points: mean 9.0, sd 5.657,
        # half width 12.706 * 5.657 / 1.414 = 50.8.
        line = table_line(self.out, "| (d) CA-MTL, MT-Uncertainty − (c)")
        self.assertTrue(line.endswith("| +9.0 | 2 | [-41.8, +59.8] |"), line)

    def test_paired_with_one_pair_and_null(self):
        # (d) minus CBDA - (d): rte on seeds 1 and 2 (+1, +1 points); STS-B (.75 - .72) and the average
        # (.69 - .67) only on seed 2.
        line = table_line(self.out, "| (d) minus CBDA − (d)")
        self.assertEqual(line, "| (d) minus CBDA − (d) CA-MTL, MT-Uncertainty (ablation) | +1.0 [+1.0, +1.0] | +3.0 (n = 1) "
                               "| +2.0 | 1 | n = 1, no interval |")

    def test_dirty_tree_flagged(self):
        budget = table_line(self.out, "- (d) CA-MTL, MT-Uncertainty:")
        self.assertIn("commit 1234567 (**uncommitted changes**)", budget)
        self.assertIn("data used 17 %", budget)
        self.assertIn("uncommitted changes under include/ or examples/", self.out)

    def test_metrics_line(self):
        self.assertIn("MRPC = mean(F1, accuracy), STS-B = mean(Pearson, Spearman), CoLA = Matthews correlation",
                      self.out)


class Functions(unittest.TestCase):
    def test_t_quantiles(self):
        self.assertEqual(results_tables.t_quantile_975(1), 12.706)
        self.assertEqual(results_tables.t_quantile_975(4), 2.776)
        self.assertEqual(results_tables.t_quantile_975(30), 2.042)
        self.assertEqual(results_tables.t_quantile_975(31), 1.960)

    def test_floor_margin_boundary(self):
        # Within 1 point means 53.8 against 52.8 is marked and 53.9 is not.
        self.assertTrue(results_tables.at_floor(0.538, 0.528))
        self.assertFalse(results_tables.at_floor(0.539, 0.528))
        self.assertTrue(results_tables.at_floor(0.40, 0.528))  # below the floor
        self.assertFalse(results_tables.at_floor(0.40, None))  # unknown floor: no mark

    def test_single_task_curves_merge(self):
        # The rte model is evaluated at 20 and 40, the stsb model only at 20 (it finished): at 40 the stsb score
        # carries over, so the average is (.6 + .7) / 2.
        run = results_tables.Run("camtl", "a", 1)
        run.curves = [[(20, {"rte": 0.5}), (40, {"rte": 0.6})], [(20, {"stsb": 0.7})]]
        curve = results_tables.run_curve(run, ["rte", "stsb"])
        self.assertEqual([s for s, _ in curve], [20, 40])
        self.assertAlmostEqual(curve[0][1], 0.6)
        self.assertAlmostEqual(curve[1][1], 0.65)


class Errors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_malformed_line_names_file_and_line(self):
        bad = self.dir / "bad.jsonl"
        bad.write_text(json.dumps(record("d", 1, {"rte": 0.6, "stsb": 0.7})) + "\n\n{not json\n")
        rc, out, err = run_script(bad)
        self.assertEqual(rc, 2)
        self.assertIn(f"{bad}:3: not a JSON record", err)
        self.assertEqual(out, "")

    def test_record_without_grid_fields(self):
        path = self.dir / "old.jsonl"
        r = record("d", 1, {"rte": 0.6, "stsb": 0.7})
        del r["grid"]
        write_jsonl(path, [r])
        rc, _, err = run_script(path)
        self.assertEqual(rc, 2)
        self.assertIn(f"{path}:1: no field 'grid'", err)

    def test_missing_file(self):
        rc, _, err = run_script(self.dir / "absent.jsonl")
        self.assertEqual(rc, 2)
        self.assertIn("absent.jsonl: cannot read", err)


class Plots(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        write_jsonl(self.dir / "camtl.jsonl", fixture_records())

    def tearDown(self):
        self.tmp.cleanup()

    @unittest.skipIf(shutil.which("gnuplot") is None, "gnuplot is not installed")
    def test_png_written_and_linked(self):
        out = self.dir / "results.md"
        rc, _, err = run_script(self.dir / "camtl.jsonl", "--plots", self.dir / "plots", "--out", out)
        self.assertEqual(rc, 0, err)
        png = self.dir / "plots" / "camtl_curves.png"
        self.assertEqual(png.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
        self.assertIn("![learning curves of grid camtl](plots/camtl_curves.png)", out.read_text())

    def test_without_gnuplot_a_visible_note(self):
        # A PATH without gnuplot (the interpreter is called by its full path).
        env = dict(os.environ, PATH=str(self.dir))
        rc, out, err = run_script(self.dir / "camtl.jsonl", "--plots", self.dir / "plots", env=env)
        self.assertEqual(rc, 0, err)
        self.assertIn("**No learning-curve plot for grid `camtl`: gnuplot is not installed.**", out)
        self.assertIn("gnuplot not found", err)
        self.assertFalse((self.dir / "plots" / "camtl_curves.png").exists())


class ValidationColumn(unittest.TestCase):
    def test_the_selection_criterion_is_the_mean_validation_average_per_row(self):
        # Two rows of a sweep, two seeds each; validation averages (.70+.80)/2 = .75 and .85 for "sweep-x";
        # .60 and .64 for "sweep-y" (row a merges its per-task records: (.70 + .90)/2 = .80 and .70).
        rs = [record("sweep-x", 1, {"rte": 0.6}, validation={"rte": 0.75}),
              record("sweep-x", 2, {"rte": 0.6}, validation={"rte": 0.85}),
              record("sweep-y", 1, {"rte": 0.6}, validation={"rte": 0.60}),
              record("sweep-y", 2, {"rte": 0.6}, validation={"rte": 0.64}),
              record("a", 1, {"rte": 0.6}, model="single", validation={"rte": 0.70}),
              record("a", 1, {"stsb": 0.6}, model="single", validation={"stsb": 0.90}),
              record("a", 2, {"rte": 0.6}, model="single", validation={"rte": 0.60}),
              record("a", 2, {"stsb": 0.6}, model="single", validation={"stsb": 0.80})]
        rc, out, err = run_on(rs)
        self.assertEqual(rc, 0, err)
        self.assertIn("| sweep-x | 80.0 ± 7.1 | 2 |", out)   # sd of 75, 85: 7.07
        self.assertIn("| sweep-y | 62.0 ± 2.8 | 2 |", out)   # sd of 60, 64: 2.83
        self.assertIn("| (a) single-task full fine-tuning | 75.0 ± 7.1 | 2 |", out)

    def test_a_pair_trained_at_different_rates_says_so(self):
        # d-paper at 2e-4 against (d) at 5e-4 compares rates as well as formulas; the ablation d-cbda trains at
        # (d)'s rate and says nothing. A group's rate is shown with its pattern, its "|" escaped for the table.
        rs = []
        for seed in (1, 2):
            rs += [record("d", seed, {"rte": 0.6}, lr=5e-4, lr_groups=[]),
                   record("d-paper", seed, {"rte": 0.6}, lr=2e-4, lr_groups=[]),
                   record("d-cbda", seed, {"rte": 0.6}, lr=5e-4, lr_groups=[]),
                   record("n1000-pha", seed, {"rte": 0.6}, lr=1e-3, lr_groups=["^(a|b)\\.=0.0003"]),
                   record("n1000-adapters", seed, {"rte": 0.6}, lr=1.5e-4)]
        rc, out, err = run_on(rs)
        self.assertEqual(rc, 0, err)
        self.assertIn("(MT-Uncertainty: the paper's formula against the code's; trained at 2e-4 against 5e-4) |",
                      table_line(out, "| (d) with the paper's MT-Uncertainty formula (U = Ĥ / H_max) − (d)"))
        self.assertIn("(ablation) |", table_line(out, "| (d) minus CBDA − (d)"))
        self.assertIn("; trained at 1e-3 (^(a\\|b)\\.=3e-4) against 1.5e-4) |",
                      table_line(out, "| n = 1000: PHA − n = 1000: per-task adapters (r = 64)"))
        self.assertEqual(results_tables.rates_of({"lr": 1e-3, "lr_groups": ["^(a|b)\\.=0.0003"]}),
                         "1e-3 (^(a|b)\\.=3e-4)")

    def test_hyperformerpp_enters_the_pha_comparison_at_its_sweeps_validation_choice(self):
        # HyperFormer++'s five n = 100 candidates: "-lr3e-3" has the highest validation average (.70) but the
        # lowest dev score; "-gen3e-4" the highest dev (.90) at a lower validation average (.60). The choice is by
        # validation, so PHA's choice (its generator at 3e-4: validation .80) pairs with "-lr3e-3": dev .50 − .30
        # = +20.0 at each of the three seeds. Without one candidate's records no choice is made and the plain row stands.
        pha = {"n100-pha": 0.5, "n100-pha-lr3e-4": 0.5, "n100-pha-lr3e-3": 0.5, "n100-pha-gen3e-4": 0.8,
               "n100-pha-gen3e-3": 0.5}
        hyperformer = {"n100-hyperformerpp": (0.5, 0.5), "n100-hyperformerpp-lr3e-4": (0.5, 0.5),
                       "n100-hyperformerpp-lr3e-3": (0.7, 0.3), "n100-hyperformerpp-gen3e-4": (0.6, 0.9),
                       "n100-hyperformerpp-gen3e-3": (0.5, 0.5)}
        rs = []
        for seed in (1, 2, 3):
            rs += [record(row, seed, {"rte": 0.5}, grid="pha", validation={"rte": v}) for row, v in pha.items()]
            rs += [record(row, seed, {"rte": dev}, grid="pha", validation={"rte": v})
                   for row, (v, dev) in hyperformer.items()]
        rc, out, err = run_on(rs)
        self.assertEqual(rc, 0, err)
        line = table_line(out, "| n = 100: PHA, generator at 3e-4 (sweep) − n = 100: HyperFormer++")
        self.assertTrue(line.startswith("| n = 100: PHA, generator at 3e-4 (sweep) − n = 100: HyperFormer++, lr "
                                        "3e-3 (sweep) (PHA against HyperFormer++) | +20.0"), line)
        rc, out, err = run_on([r for r in rs if r["row"] != "n100-hyperformerpp-gen3e-3"])
        self.assertEqual(rc, 0, err)
        self.assertTrue(table_line(out, "| n = 100: PHA, generator at 3e-4 (sweep) − n = 100: HyperFormer++")
                        .startswith("| n = 100: PHA, generator at 3e-4 (sweep) − n = 100: HyperFormer++ (PHA against"))

    def test_the_cb_arms_enter_their_comparisons_at_their_sweeps_validation_choice(self):
        # k = 16: the adapter's candidates "-lr3e-3" (validation .70, dev .40) and the row itself (.50, .60); full
        # fine-tuning's "-lr1e-4" (.80, .45). PHA transfer (dev .50) then pairs with the chosen candidates: against
        # the adapter +10.0, against full fine-tuning +5.0 at each seed. Without a candidate, or with fewer than
        # the sweeps' three seeds in common (a sweep still running), the plain rows stand.
        cands = {"k16-adapter": (0.5, 0.6), "k16-adapter-lr3e-4": (0.4, 0.9), "k16-adapter-lr3e-3": (0.7, 0.4),
                 "k16-full": (0.5, 0.6), "k16-full-lr2e-5": (0.3, 0.9), "k16-full-lr1e-4": (0.8, 0.45)}
        rs = []
        for seed in (1, 2, 3):
            rs.append(record("k16-pha", seed, {"rte": 0.5}, grid="cb", validation={"rte": 0.5}))
            rs += [record(row, seed, {"rte": dev}, grid="cb", validation={"rte": v}) for row, (v, dev) in cands.items()]
        rc, out, err = run_on(rs)
        self.assertEqual(rc, 0, err)
        line = table_line(out, "| k = 16: PHA transfer (retrieved prototype) − k = 16: fresh per-task adapter")
        self.assertTrue(line.startswith("| k = 16: PHA transfer (retrieved prototype) − k = 16: fresh per-task "
                                        "adapter, lr 3e-3 (sweep) (PHA transfer against a fresh adapter) | +10.0"), line)
        line = table_line(out, "| k = 16: PHA transfer (retrieved prototype) − k = 16: full fine-tuning")
        self.assertTrue(line.startswith("| k = 16: PHA transfer (retrieved prototype) − k = 16: full fine-tuning, "
                                        "lr 1e-4 (sweep) (PHA transfer against full fine-tuning) | +5.0"), line)
        for partial in ([r for r in rs if r["row"] not in ("k16-adapter-lr3e-4", "k16-full-lr2e-5")],
                        [r for r in rs if r["seed_index"] < 3 or r["row"] in ("k16-pha", "k16-adapter", "k16-full")]):
            rc, out, err = run_on(partial)
            self.assertEqual(rc, 0, err)
            self.assertTrue(table_line(out, "| k = 16: PHA transfer (retrieved prototype) − k = 16: fresh per-task "
                                            "adapter").startswith(
                "| k = 16: PHA transfer (retrieved prototype) − k = 16: fresh per-task adapter (PHA transfer against a "
                "fresh adapter) | -10.0"))

    def test_the_peer_row_is_compared_unpaired_with_welch(self):
        # Ours .50, .54: mean 52.0, var/n = 0.0008 / 2 = 4e-4. The peer .40, .42, .44: mean 42.0, var/n =
        # 0.0004 / 3 = 1.333e-4. Difference +10.0, se sqrt(5.333e-4) = 0.02309; df = (5.333e-4)^2 / ((4e-4)^2 / 1 +
        # (1.333e-4)^2 / 2) = 1.68, rounded down to 1: t 12.706, half width 29.34 points. The peer's draws are not
        # ours, so no paired line may appear.
        rs = [record("rte-n1000", 1, {"rte": 0.50}), record("rte-n1000", 2, {"rte": 0.54}),
              record("pytorch-rte-n1000", 1, {"rte": 0.40}), record("pytorch-rte-n1000", 2, {"rte": 0.42}),
              record("pytorch-rte-n1000", 3, {"rte": 0.44})]
        rc, out, err = run_on(rs)
        self.assertEqual(rc, 0, err)
        line = table_line(out, "| RTE n = 1000, full fine-tuning: lr 2e-4, 3 epochs (row (a)'s RTE model) − RTE n = "
                               "1000, full fine-tuning in PyTorch")
        self.assertTrue(line.endswith("(ours against PyTorch + transformers, the same recipe) | +10.0 | 2 and 3 "
                                      "| [-19.3, +39.3] |"), line)
        self.assertNotIn("Paired differences", out)
        # Equal sizes and variances: df = 2 (n - 1) = 2 exactly, t 4.303, se sqrt(1 + 1); difference 1.
        low, high = results_tables.welch_interval([1.0, 3.0], [0.0, 2.0])
        self.assertAlmostEqual(low, 1 - 4.303 * 2 ** 0.5)
        self.assertAlmostEqual(high, 1 + 4.303 * 2 ** 0.5)
        self.assertIsNone(results_tables.welch_interval([1.0], [0.0, 2.0]))

    def test_the_floor_row_leaves_out_the_peer_draws(self):
        # Ours at a floor of 52.8 on both seeds; the peer's third draw had the other class as its majority (47.2).
        # The floor row is our draws' 52.8, not (4 x 52.8 + 47.2) / 5 = 51.7; the peer row keeps its own floor.
        rs = [record("rte-n1000", 1, {"rte": 0.60}), record("rte-n1000", 2, {"rte": 0.62}),
              record("pytorch-rte-n1000", 1, {"rte": 0.60}), record("pytorch-rte-n1000", 2, {"rte": 0.62}),
              record("pytorch-rte-n1000", 3, {"rte": 0.472}, floor={"rte": 0.472})]
        rc, out, err = run_on(rs)
        self.assertEqual(rc, 0, err)
        self.assertEqual(table_line(out, "| constant predictor"),
                         "| constant predictor (majority class of the training split) | 52.8 | 52.8 | | | |")


if __name__ == "__main__":
    unittest.main()
