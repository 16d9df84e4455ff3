#!/usr/bin/env python3
"""Turns the JSONL run records of scripts/run_results.py into the markdown tables of docs/results.md, following
the results protocol: per grid, a budget line per row, the main table (GLUE dev score of the selected model,
mean ± sd over seeds, the average with its 95 % t-interval), the constant predictor's floor with every cell at
or near it marked, paired differences against each row's baseline, and the metric definitions. With --plots,
one learning-curve PNG per grid (validation average against step), drawn with gnuplot.

  usage: scripts/results_tables.py RECORDS.jsonl [RECORDS.jsonl ...] [--plots DIR] [--out FILE]

Exit status 2 on a record file that cannot be read or a line that is not a record (the message names
file:line).
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

# GLUE's usual order; tasks not listed here follow in alphabetical order.
TASK_ORDER = ["rte", "mrpc", "stsb", "cola", "sst2", "wnli", "qnli", "qqp", "mnli", "cb"]
TASK_NAMES = {"rte": "RTE", "mrpc": "MRPC", "stsb": "STS-B", "cola": "CoLA", "sst2": "SST-2", "wnli": "WNLI",
              "qnli": "QNLI", "qqp": "QQP", "mnli": "MNLI", "cb": "CB"}
# The metrics each task's score averages (the library's task registry); used to check the records.
TASK_METRICS = {"mrpc": {"f1", "accuracy"}, "stsb": {"pearson", "spearman"}, "cola": {"matthews"},
                "qqp": {"f1", "accuracy"}, "cb": {"macro_f1", "accuracy"}}

ROW_ORDER = ["a", "b", "c", "d", "d-paper", "d-floor", "c-bf16", "c-lr1e-4", "c-lr5e-4", "c-cond1e-3", "c-cond3e-3",
             "d-alignment", "d-cbda", "d-cln", "d-adapter", "full-ft", "lr1e-4", "lr2e-4",
             "lr5e-5-e6", "lr1e-4-e6", "lr1e-4-e6-bf16", "pytorch-lr1e-4-e6", "rte-n1000", "rte-n1000-lr5e-5", "rte-all",
             "pytorch-rte-n1000"]
ROW_NAMES = {
    "a": "(a) single-task full fine-tuning",
    "b": "(b) multi-task full fine-tuning, proportional",
    "c": "(c) CA-MTL, proportional",
    "d": "(d) CA-MTL, MT-Uncertainty",
    "d-paper": "(d) with the paper's MT-Uncertainty formula (U = Ĥ / H_max)",
    "d-floor": "(d) with half of every batch shared evenly among the tasks (ours: against starvation)",
    "c-bf16": "(c) with bf16 products (--precision bf16)",
    "c-lr1e-4": "(c) at peak lr 1e-4",
    "c-lr5e-4": "(c) at peak lr 5e-4",
    "c-cond1e-3": "(c), conditional modules at lr 1e-3",
    "c-cond3e-3": "(c), conditional modules at lr 3e-3",
    "d-alignment": "(d) minus alignment",
    "d-cbda": "(d) minus CBDA",
    "d-cln": "(d) minus CLN",
    "d-adapter": "(d) minus adapter",
    "full-ft": "SST-2 n = 1000, full fine-tuning: lr 5e-5, 3 epochs",
    "lr1e-4": "SST-2 n = 1000, full fine-tuning: lr 1e-4, 3 epochs",
    "lr2e-4": "SST-2 n = 1000, full fine-tuning: lr 2e-4, 3 epochs",
    "lr5e-5-e6": "SST-2 n = 1000, full fine-tuning: lr 5e-5, 6 epochs",
    "lr1e-4-e6": "SST-2 n = 1000, full fine-tuning: lr 1e-4, 6 epochs",
    "lr1e-4-e6-bf16": "SST-2 n = 1000, full fine-tuning: lr 1e-4, 6 epochs, bf16 products (--precision bf16)",
    "pytorch-lr1e-4-e6": "SST-2 n = 1000, full fine-tuning in PyTorch + Hugging Face transformers: lr 1e-4, 6 epochs "
                         "(the peer's reference point; other examples drawn, not paired)",
    "rte-n1000": "RTE n = 1000, full fine-tuning: lr 2e-4, 3 epochs (row (a)'s RTE model)",
    "rte-n1000-lr5e-5": "RTE n = 1000, full fine-tuning: lr 5e-5, 3 epochs",
    "rte-all": "RTE, all 2,290 training examples, full fine-tuning: lr 2e-4, 3 epochs",
    "pytorch-rte-n1000": "RTE n = 1000, full fine-tuning in PyTorch + Hugging Face transformers: lr 2e-4, 3 epochs "
                         "(the peer's reference point; other examples drawn, not paired)",
}
# The PHA grid's rows: "n<examples per task>-<model>", ordered by n, then by this list.
PHA_MODELS = [("pha", "PHA"), ("adapters", "per-task adapters (r = 64)"),
              ("adapters-matched", "per-task adapters, PHA's trainable parameters (r = 213)"),
              ("hyperformerpp", "HyperFormer++"), ("camtl", "CA-MTL, MT-Uncertainty"),
              ("pha-no-contrastive", "PHA without L_ins, L_pro"), ("pha-retriever-only", "PHA, contrastive on the retriever only"),
              ("full", "single-task full fine-tuning (what 100 examples teach MiniLM at all)"),
              ("pha-e6", "PHA, twice the epochs (the floor test for CoLA and MRPC)"),
              ("adapters-e6", "per-task adapters (r = 64), twice the epochs"),
              ("adapters-matched-e6", "per-task adapters, PHA's trainable parameters (r = 213), twice the epochs"),
              ("hyperformerpp-e6", "HyperFormer++, twice the epochs"),
              ("camtl-e6", "CA-MTL, MT-Uncertainty, twice the epochs"),
              ("pha-no-contrastive-e6", "PHA without L_ins, L_pro, twice the epochs"),
              ("pha-retriever-only-e6", "PHA, contrastive on the retriever only, twice the epochs"),
              ("pha-e28", "PHA, 28 epochs (n = 1000's steps)"),
              ("adapters-e28", "per-task adapters (r = 64), 28 epochs (n = 1000's steps)")]
for _n in (100, 500, 1000):
    for _model, _name in PHA_MODELS:
        ROW_ORDER.append(f"n{_n}-{_model}")
        ROW_NAMES[f"n{_n}-{_model}"] = f"n = {_n}: {_name}"

# The learning-rate sweeps at n = 100 (every row at 1e-3 unless named): PHA's, the adapters' and HyperFormer++'s one
# rate, and PHA's generator (retriever, prototypes, hypernetwork) or HyperFormer++'s (task embeddings,
# hypernetwork) at its own rate with the rest at 1e-3.
for _lr in ("3e-4", "3e-3"):
    for _model, _name in (("pha-lr", "PHA, lr"), ("adapters-lr", "per-task adapters (r = 64), lr"),
                          ("pha-gen", "PHA, generator at"), ("hyperformerpp-lr", "HyperFormer++, lr"),
                          ("hyperformerpp-gen", "HyperFormer++, generator at")):
        ROW_ORDER.append(f"n100-{_model}{_lr}")
        ROW_NAMES[f"n100-{_model}{_lr}"] = f"n = 100: {_name} {_lr} (sweep)"

# The CB few-shot grid's rows: "k<shots>-<arm>".
for _k in (16, 32, 100):
    for _arm, _name in (("pha", "PHA transfer (retrieved prototype)"),
                        ("pha-prototype", "PHA transfer, only the retrieved prototype and the head tuned"),
                        ("adapter", "fresh per-task adapter"), ("full", "full fine-tuning")):
        ROW_ORDER.append(f"k{_k}-{_arm}")
        ROW_NAMES[f"k{_k}-{_arm}"] = f"k = {_k}: {_name}"
    for _arm, _name, _rates in (("adapter", "fresh per-task adapter, lr", ("3e-4", "3e-3")),
                                ("full", "full fine-tuning, lr", ("2e-5", "1e-4"))):
        for _lr in _rates:
            ROW_ORDER.append(f"k{_k}-{_arm}-lr{_lr}")
            ROW_NAMES[f"k{_k}-{_arm}-lr{_lr}"] = f"k = {_k}: {_name} {_lr} (sweep)"

# (row, baseline, what the difference tests). Ablations are added per grid: each "d-..." row against d.
COMPARISONS = [("d", "a", "the CA-MTL claim"), ("c", "b", "CA-MTL's modules, proportional sampling"),
               ("d", "c", "MT-Uncertainty against proportional sampling"),
               ("c-lr5e-4", "a", "CA-MTL proportional at its chosen rate against single-task"),
               ("c-lr5e-4", "b", "CA-MTL proportional at its chosen rate against multi-task full fine-tuning"),
               ("d-paper", "d", "MT-Uncertainty: the paper's formula against the code's"),
               ("d-floor", "d", "MT-Uncertainty: a per-task floor on the batch against none"),
               ("d-floor", "a", "the CA-MTL claim, MT-Uncertainty with a per-task floor"),
               ("d-floor", "c-lr5e-4", "MT-Uncertainty with a per-task floor against proportional sampling, both at 5e-4"),
               ("d", "c-lr5e-4", "MT-Uncertainty against proportional sampling, both at 5e-4"),
               ("c-bf16", "c", "bf16 products against fp32"),
               ("lr1e-4-e6-bf16", "lr1e-4-e6", "bf16 products against fp32"),
               ("rte-n1000-lr5e-5", "rte-n1000", "RTE: a quarter of (a)'s rate"),
               ("rte-all", "rte-n1000", "RTE: 2.3 times the training examples")]
for _k in (16, 32, 100):
    COMPARISONS += [(f"k{_k}-pha", f"k{_k}-adapter", "PHA transfer against a fresh adapter"),
                    (f"k{_k}-pha", f"k{_k}-full", "PHA transfer against full fine-tuning"),
                    (f"k{_k}-pha-prototype", f"k{_k}-adapter", "PHA transfer, prototype and head only, against a fresh adapter")]
for _n in (100, 500, 1000):
    COMPARISONS += [(f"n{_n}-pha", f"n{_n}-adapters", "PHA against per-task adapters (the PHA claim)"),
                    (f"n{_n}-pha", f"n{_n}-adapters-matched", "PHA against adapters of its size"),
                    (f"n{_n}-pha", f"n{_n}-hyperformerpp", "PHA against HyperFormer++"),
                    (f"n{_n}-pha-no-contrastive", f"n{_n}-pha", "ablation: the contrastive losses"),
                    (f"n{_n}-pha-retriever-only", f"n{_n}-pha", "ablation: contrastive gradients into the encoder")]
COMPARISONS += [("n1000-pha-e6", "n1000-pha", "PHA: twice the epochs"),
                ("n1000-adapters-e6", "n1000-adapters", "per-task adapters: twice the epochs"),
                ("n1000-pha-e6", "n1000-adapters-e6", "the PHA claim at n = 1000 with twice the epochs"),
                ("n1000-pha-e6", "n1000-adapters-matched-e6", "PHA against adapters of its size, twice the epochs"),
                ("n1000-pha-e6", "n1000-hyperformerpp-e6", "PHA against HyperFormer++, twice the epochs"),
                ("n1000-pha-no-contrastive-e6", "n1000-pha-e6", "ablation: the contrastive losses, twice the epochs"),
                ("n1000-pha-retriever-only-e6", "n1000-pha-e6",
                 "ablation: contrastive gradients into the encoder, twice the epochs"),
                ("n100-pha-e28", "n100-adapters-e28", "the PHA claim at n = 1000's steps")]

# Rows that draw other examples than ours (the peer's reference runs) cannot be paired by seed: (row, baseline,
# meaning), compared as two samples with Welch's interval.
UNPAIRED_COMPARISONS = [("lr1e-4-e6", "pytorch-lr1e-4-e6", "ours against PyTorch + transformers, the same recipe"),
                        ("rte-n1000", "pytorch-rte-n1000", "ours against PyTorch + transformers, the same recipe")]

FLOOR_MARGIN = 1.0  # points (×100): a mean this close to the constant predictor, or below it, learned nothing
FLOOR_ROW_NAME = "constant predictor (majority class of the training split)"
# The peer's reference rows (the baselines of the unpaired comparisons): other draws of the training examples.
PEER_ROWS = {peer for _, peer, _ in UNPAIRED_COMPARISONS}

# Student-t 0.975 quantiles for df = 1..30 (two-sided 95 %); beyond 30 the normal quantile is close enough.
T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
NORMAL_975 = 1.960

REQUIRED_FIELDS = ["grid", "row", "seed_index", "test"]


class RecordError(Exception):
    """A record file that cannot be read or a line that is not a usable record: exit status 2."""


# ---------------------------------------------------------------------------------------------------------------
# Statistics


def t_quantile_975(df):
    if df < 1:
        raise ValueError("a t-interval needs at least two values")
    return T_975[df - 1] if df <= len(T_975) else NORMAL_975


def mean_and_sd(values):
    """Mean and sample standard deviation (n - 1); the sd is None for a single value."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def t_interval(values):
    """The 95 % Student-t interval of the mean, or None with fewer than two values."""
    if len(values) < 2:
        return None
    mean, sd = mean_and_sd(values)
    half = t_quantile_975(len(values) - 1) * sd / math.sqrt(len(values))
    return mean - half, mean + half


def welch_interval(a, b):
    """The 95 % Welch interval of mean(a) − mean(b) for two unpaired samples (degrees of freedom by
    Welch–Satterthwaite, rounded down: a slightly wider interval), or None when either has fewer than two values."""
    if len(a) < 2 or len(b) < 2:
        return None
    (mean_a, sd_a), (mean_b, sd_b) = mean_and_sd(a), mean_and_sd(b)
    var_a, var_b = sd_a * sd_a / len(a), sd_b * sd_b / len(b)
    difference = mean_a - mean_b
    if var_a + var_b == 0:
        return difference, difference
    df = (var_a + var_b) ** 2 / (var_a * var_a / (len(a) - 1) + var_b * var_b / (len(b) - 1))
    half = t_quantile_975(max(1, int(df))) * math.sqrt(var_a + var_b)
    return difference - half, difference + half


# ---------------------------------------------------------------------------------------------------------------
# Formatting


def points(x):
    """A fraction in [0, 1] (or a difference of two) as points ×100, one decimal."""
    return f"{100 * x:.1f}"


def signed_points(x):
    return f"{100 * x:+.1f}"


def mean_sd_cell(values):
    mean, sd = mean_and_sd(values)
    return points(mean) if sd is None else f"{points(mean)} ± {points(sd)}"


def interval_cell(values, signed=False):
    interval = t_interval(values)
    if interval is None:
        return "n = 1, no interval"
    fmt = signed_points if signed else points
    return f"[{fmt(interval[0])}, {fmt(interval[1])}]"


def millions(n):
    return f"{n / 1e6:.1f} M"


def count(n):
    """A token count: 40.2 k, 12.3 M."""
    return millions(n) if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def duration(seconds):
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def value_range(values):
    """One value, or 'lo–hi' when the records disagree (e.g. steps per seed)."""
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def task_name(task):
    return TASK_NAMES.get(task, task)


def row_name(row):
    return ROW_NAMES.get(row, row)


def ordered_tasks(tasks):
    known = [t for t in TASK_ORDER if t in tasks]
    return known + sorted(t for t in tasks if t not in TASK_ORDER)


def ordered_rows(rows):
    known = [r for r in ROW_ORDER if r in rows]
    return known + sorted(r for r in rows if r not in ROW_ORDER)


# ---------------------------------------------------------------------------------------------------------------
# Reading and merging the records


def load_records(paths):
    """Every record of every file, in file order, as (path, line number, record)."""
    records = []
    for path in paths:
        try:
            with open(path) as f:
                lines = f.readlines()
        except OSError as e:
            raise RecordError(f"{path}: cannot read ({e.strerror})")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise RecordError(f"{path}:{number}: not a JSON record ({e})")
            if not isinstance(record, dict):
                raise RecordError(f"{path}:{number}: not a JSON object")
            missing = [k for k in REQUIRED_FIELDS if k not in record]
            if missing:
                raise RecordError(f"{path}:{number}: no field {', '.join(repr(k) for k in missing)} "
                                  "(records come from scripts/run_results.py)")
            test = record["test"]
            if not isinstance(test, dict) or not all(v is None or isinstance(v, (int, float)) for v in test.values()):
                raise RecordError(f"{path}:{number}: 'test' is not an object of task scores (numbers or null)")
            records.append((path, number, record))
    return records


def keep_current_settings(records):
    """Keeps, per (grid, row), only the records of the settings digest that appears last: run_results.py
    appends a new settings' runs after the old ones, and one row must not mix two setups. Returns the kept
    records and a note per row that lost some."""
    latest = {}
    for _, _, r in records:
        latest[(r["grid"], r["row"])] = r.get("settings")
    kept, dropped = [], {}
    for entry in records:
        r = entry[2]
        key = (r["grid"], r["row"])
        if r.get("settings") == latest[key]:
            kept.append(entry)
        else:
            dropped[key] = dropped.get(key, 0) + 1
    notes = [f"{grid}/{row}: {n} record(s) with earlier settings left out (the row uses settings {latest[(grid, row)]})"
             for (grid, row), n in dropped.items()]
    return kept, notes


@dataclass
class Run:
    """One row at one seed: a multi-task model's record, or row (a)'s single-task records merged into one
    multi-task row (each task's score from its own model; budgets summed over the models)."""
    grid: str
    row: str
    seed_index: int
    scores: dict = field(default_factory=dict)      # task -> dev score of the selected model, None for NaN
    floor: dict = field(default_factory=dict)       # task -> constant predictor's dev score, None if unknown
    models: int = 0
    trainable: int = 0                              # per model (row a: the largest per-task model)
    backbone: int = 0
    steps: int = 0                                  # summed over the models
    batch: set = field(default_factory=set)
    real_tokens: int = 0
    seconds: float = 0.0
    fractions: list = field(default_factory=list)   # fraction_used per model
    commits: dict = field(default_factory=dict)     # short sha -> any record of it from a dirty tree
    cpus: set = field(default_factory=set)
    threads: set = field(default_factory=set)
    curves: list = field(default_factory=list)      # per model: [(step, {task: score})]
    validation: dict = field(default_factory=dict)  # task -> validation score at the selected step
    rates: set = field(default_factory=set)         # "peak rate (group=rate, ...)" of each model

    def rate_text(self):
        return " / ".join(sorted(self.rates)) or "?"

    def average(self, tasks):
        """The unweighted mean over the grid's tasks, or None when a task is missing or null (averaging
        fewer tasks would compare a different quantity)."""
        values = [self.scores.get(t) for t in tasks]
        return None if any(v is None for v in values) else statistics.fmean(values)


def floor_of(record, task):
    """The constant predictor's score. A null floor is a correlation metric (STS-B), where a constant has no
    correlation and scores 0 by convention; a record without floors has an unknown floor (None)."""
    floors = record.get("floor")
    if not isinstance(floors, dict) or task not in floors:
        return None
    return 0.0 if floors[task] is None else floors[task]


def add_record(run, record, notes):
    for task, score in record["test"].items():
        if task in run.scores:
            notes.append(f"{run.grid}/{run.row} seed {run.seed_index}: task {task} recorded twice; the later "
                         "record is used")
        run.scores[task] = score
        run.floor[task] = floor_of(record, task)
    for task, score in (record.get("validation") or {}).items():
        run.validation[task] = score
    run.models += 1
    run.trainable = max(run.trainable, record.get("trainable", 0))
    run.backbone = record.get("backbone", run.backbone)
    run.steps += record.get("steps", 0)
    if "batch" in record:
        run.batch.add(record["batch"])
    run.real_tokens += record.get("real_tokens", 0)
    run.seconds += record.get("seconds", 0.0)
    if "fraction_used" in record:
        run.fractions.append(record["fraction_used"])
    if "commit" in record:
        sha = str(record["commit"])[:7]
        run.commits[sha] = run.commits.get(sha, False) or bool(record.get("dirty_tree"))
    if "cpu" in record:
        run.cpus.add(record["cpu"])
    if "threads" in record:
        run.threads.add(record["threads"])
    run.curves.append([(p["step"], p.get("scores") or {}) for p in record.get("curve") or []])
    if "lr" in record:
        run.rates.add(rates_of(record))


def short_rate(value):
    """0.0002 -> "2e-4", 0.00015 -> "1.5e-4": the form the rows' names and the docs use."""
    mantissa, exponent = f"{float(value):e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def rates_of(record):
    """A record's peak learning rate and its parameter groups' own rates ("REGEX=RATE" in the record)."""
    groups = []
    for group in record.get("lr_groups") or []:
        pattern, _, rate = str(group).rpartition("=")
        try:
            groups.append(f"{pattern}={short_rate(rate)}")
        except ValueError:
            groups.append(str(group))
    text = short_rate(record["lr"])
    return f"{text} ({', '.join(groups)})" if groups else text


def merge_runs(records):
    """{grid: {row: {seed_index: Run}}} and notes on duplicated tasks."""
    grids, notes = {}, []
    for path, number, record in records:
        rows = grids.setdefault(record["grid"], {})
        seeds = rows.setdefault(record["row"], {})
        key = record["seed_index"]
        if key not in seeds:
            seeds[key] = Run(record["grid"], record["row"], key)
        try:
            add_record(seeds[key], record, notes)
        except (TypeError, KeyError, ValueError, AttributeError) as e:  # a field of the wrong shape
            raise RecordError(f"{path}:{number}: malformed record ({type(e).__name__}: {e})")
    return grids, notes


def metric_warnings(records):
    """Checks that each reported score is the mean of its task's metrics (the protocol's definition) and that
    the model was selected on validation; a record that breaks either is named."""
    warnings = []
    for path, number, r in records:
        where = f"{path}:{number}"
        if r.get("selection") not in (None, "best validation average"):
            warnings.append(f"{where}: selection was '{r['selection']}', not the best validation average")
        for task, score in r["test"].items():
            metrics = (r.get("test_metrics") or {}).get(task)
            if not metrics or score is None:
                continue
            expected = TASK_METRICS.get(task, {"accuracy"})
            if set(metrics) != expected:
                warnings.append(f"{where}: {task} has metrics {sorted(metrics)}, expected {sorted(expected)}")
            elif all(v is not None for v in metrics.values()) and abs(statistics.fmean(metrics.values()) - score) > 1e-9:
                warnings.append(f"{where}: {task} score {score} is not the mean of its metrics {metrics}")
    return warnings


# ---------------------------------------------------------------------------------------------------------------
# Tables


def grid_tasks(rows):
    return ordered_tasks({t for seeds in rows.values() for run in seeds.values() for t in run.scores})


def task_values(runs, task):
    return [r.scores[task] for r in runs if r.scores.get(task) is not None]


def average_values(runs, tasks):
    return [a for a in (r.average(tasks) for r in runs) if a is not None]


def floor_mean(runs, task):
    """The floor averaged over these runs' seeds, or None when no record carries it."""
    floors = [r.floor[task] for r in runs if r.floor.get(task) is not None]
    return statistics.fmean(floors) if floors else None


def average_floor(runs, tasks):
    floors = [floor_mean(runs, t) for t in tasks]
    return None if any(f is None for f in floors) else statistics.fmean(floors)


def at_floor(mean, floor):
    # Compared in printed tenths of a point (integers), so the mark agrees with the numbers a reader sees
    # and 50.9 against a floor of 49.9 is not lost to binary rounding.
    return floor is not None and round(1000 * mean) <= round(1000 * floor) + round(10 * FLOOR_MARGIN)


def scored_cell(values, floor, total_seeds):
    """'mean ± sd', a dagger at the floor, and the count when some seeds have no score (null)."""
    if not values:
        return "–"
    cell = mean_sd_cell(values)
    if at_floor(statistics.fmean(values), floor):
        cell += " †"
    if len(values) < total_seeds:
        cell += f" ({len(values)} of {total_seeds} seeds)"
    return cell


def parameters_cell(runs):
    trainable = max(r.trainable for r in runs)
    backbone = max(r.backbone for r in runs)
    models = max(r.models for r in runs)
    share = f"{100 * trainable / backbone:.0f} %" if backbone else "?"
    if models > 1:
        return f"{models} × {millions(trainable)} / {millions(backbone)} ({share} each)"
    return f"{millions(trainable)} / {millions(backbone)} ({share})"


def commits_text(runs):
    commits = {}
    for r in runs:
        for sha, dirty in r.commits.items():
            commits[sha] = commits.get(sha, False) or dirty
    if not commits:
        return "commit unknown"
    return "commit " + ", ".join(f"{sha} (**uncommitted changes**)" if dirty else sha for sha, dirty in commits.items())


def budget_line(row, seeds):
    runs = [seeds[s] for s in sorted(seeds)]
    models = max(r.models for r in runs)
    steps = value_range([r.steps for r in runs])
    batch = value_range([b for r in runs for b in r.batch]) if any(r.batch for r in runs) else "?"
    per_model = f" summed over {models} single-task models" if models > 1 else ""
    seconds = sum(r.seconds for r in runs)
    fractions = [f for r in runs for f in r.fractions]
    used = f"{100 * statistics.fmean(fractions):.0f} %" if fractions else "?"
    backbone = max(r.backbone for r in runs)
    trainable = max(r.trainable for r in runs)
    share = f"{100 * trainable / backbone:.1f} %" if backbone else "?"
    trainable_text = f"{models} × {millions(trainable)}" if models > 1 else millions(trainable)
    cpus = sorted({c for r in runs for c in r.cpus}) or ["CPU unknown"]
    threads = sorted({t for r in runs for t in r.threads})
    thread_text = f", {value_range(threads)} thread{'' if threads == [1] else 's'}" if threads else ""
    return (f"- {row_name(row)}: {steps} steps × {batch}{per_model} per seed, "
            f"{count(sum(r.real_tokens for r in runs))} real tokens, "
            f"{duration(seconds)} of training in all ({duration(seconds / len(runs))} per seed), "
            f"trainable {trainable_text} ({share} of the {millions(backbone)} backbone{' each' if models > 1 else ''}), "
            f"data used {used}, seeds {', '.join(str(s) for s in sorted(seeds))}, {commits_text(runs)}, "
            f"{'; '.join(cpus)}{thread_text}")


def main_table(rows, tasks):
    lines = ["| row | " + " | ".join(task_name(t) for t in tasks) +
             " | average | n | 95 % interval of the average | trainable / backbone |",
             "|---|" + "---:|" * (len(tasks) + 4)]
    for row in ordered_rows(rows):
        runs = list(rows[row].values())
        cells = [scored_cell(task_values(runs, t), floor_mean(runs, t), len(runs)) for t in tasks]
        averages = average_values(runs, tasks)
        cells.append(scored_cell(averages, average_floor(runs, tasks), len(runs)))
        cells.append(str(len(averages)))
        cells.append(interval_cell(averages) if averages else "–")
        cells.append(parameters_cell(runs))
        lines.append(f"| {row_name(row)} | " + " | ".join(cells) + " |")
    # The floor of our own draws: a peer's rows draw other training examples, whose majority class may differ
    # (each row's daggers use the row's own floors either way).
    all_runs = [run for row, seeds in rows.items() if row not in PEER_ROWS for run in seeds.values()]
    floors = [floor_mean(all_runs, t) for t in tasks]
    floor_avg = average_floor(all_runs, tasks)
    lines.append(f"| {FLOOR_ROW_NAME} | " + " | ".join("–" if f is None else points(f) for f in floors) +
                 f" | {'–' if floor_avg is None else points(floor_avg)} | | | |")
    return lines


def validation_table(rows):
    """The selection criterion per row: the validation average of each seed's selected model, mean ± sd. A
    sweep chooses its rate and budget by this column, never by the dev scores above."""
    lines = ["| row | validation average | n |", "|---|---:|---:|"]
    shown = False
    for row in ordered_rows(rows):
        # over the tasks each run selected on
        values = [v for v in (validation_average(run) for run in rows[row].values()) if v is not None]
        if values:
            shown = True
            lines.append(f"| {row_name(row)} | {mean_sd_cell(values)} | {len(values)} |")
    return lines if shown else []


# Learning-rate sweeps whose choice a comparison uses: row -> the sweep's candidates (the row itself among them);
# every comparison of the row uses the candidate with the highest mean validation average over the seeds every
# candidate has (run_results.py --best-of, never dev).
SWEEPS = {"n100-pha": ["n100-pha", "n100-pha-lr3e-4", "n100-pha-lr3e-3", "n100-pha-gen3e-4", "n100-pha-gen3e-3"],
          "n100-adapters": ["n100-adapters", "n100-adapters-lr3e-4", "n100-adapters-lr3e-3"],
          "n100-hyperformerpp": ["n100-hyperformerpp", "n100-hyperformerpp-lr3e-4", "n100-hyperformerpp-lr3e-3",
                                 "n100-hyperformerpp-gen3e-4", "n100-hyperformerpp-gen3e-3"]}
for _k in (16, 32, 100):  # the CB arms that need no PHA source
    SWEEPS[f"k{_k}-adapter"] = [f"k{_k}-adapter", f"k{_k}-adapter-lr3e-4", f"k{_k}-adapter-lr3e-3"]
    SWEEPS[f"k{_k}-full"] = [f"k{_k}-full", f"k{_k}-full-lr2e-5", f"k{_k}-full-lr1e-4"]
# (row, baseline, what the difference tests), each at its sweep's choice.
CHOSEN_COMPARISONS = [("n100-pha", "n100-adapters", "the PHA claim, each at its sweep's rate")]


def validation_average(run):
    v = [run.validation[t] for t in ordered_tasks(run.validation)]
    return statistics.fmean(v) if v and all(x is not None for x in v) else None


# A sweep chooses once every candidate has this many seeds in common (the sweeps' design: seeds 1-3), so that a
# sweep still running does not choose on one seed.
SWEEP_SEEDS = 3


def sweep_choice(rows, candidates):
    """The candidate with the highest mean validation average over the seeds that every candidate has; None when
    a candidate has not run or fewer than SWEEP_SEEDS seeds are common."""
    if any(r not in rows for r in candidates):
        return None
    common = set.intersection(*(set(rows[r]) for r in candidates))
    if len(common) < SWEEP_SEEDS:
        return None
    means = {}
    for r in candidates:
        values = [validation_average(rows[r][s]) for s in sorted(common)]
        if not values or any(v is None for v in values):
            return None
        means[r] = statistics.fmean(values)
    return max(means, key=means.get)


def comparisons_for(rows):
    # A swept row stands for its sweep's choice in every comparison: at n = 100 "n100-pha", "n100-adapters" and
    # "n100-hyperformerpp" (the other n = 100 rows train at the chosen rates; run_results.py), and each k's
    # "k<k>-adapter" and "k<k>-full".
    chosen = {row: sweep_choice(rows, candidates) for row, candidates in SWEEPS.items()}
    pairs = []
    for row, base, meaning in COMPARISONS:
        row, base = chosen.get(row) or row, chosen.get(base) or base
        if row in rows and base in rows and (row, base) not in [(c[0], c[1]) for c in pairs]:
            pairs.append((row, base, meaning))
    for row_name, base_name, meaning in CHOSEN_COMPARISONS:
        row, base = chosen[row_name], chosen[base_name]
        if row and base and (row, base) not in [(c[0], c[1]) for c in pairs]:
            pairs.append((row, base, meaning))
    pairs += [(r, "d", "ablation") for r in ordered_rows(rows)
              if r.startswith("d-") and r not in ("d-paper", "d-floor") and "d" in rows]
    return pairs


def paired_differences(row_seeds, base_seeds, score_of):
    """Per-seed differences row − baseline over the seed indices both rows have (same seed index = same data
    and initialisation seed, so the pairing removes the seed's own effect), skipping seeds where either
    score is missing."""
    diffs = []
    for s in sorted(set(row_seeds) & set(base_seeds)):
        a, b = score_of(row_seeds[s]), score_of(base_seeds[s])
        if a is not None and b is not None:
            diffs.append(a - b)
    return diffs


def difference_cell(diffs):
    if not diffs:
        return "–"
    mean = signed_points(statistics.fmean(diffs))
    # A task's pairs can be fewer than the average's (a null score), so a lone pair says so.
    return f"{mean} (n = 1)" if len(diffs) < 2 else f"{mean} {interval_cell(diffs, signed=True)}"


def runs_rate_text(seeds):
    return " / ".join(sorted({run.rate_text() for run in seeds.values()}))


def paired_table(rows, tasks):
    comparisons = comparisons_for(rows)
    if not comparisons:
        return []
    lines = ["| difference | " + " | ".join(task_name(t) for t in tasks) +
             " | average | n pairs | 95 % interval of the average |",
             "|---|" + "---:|" * (len(tasks) + 3)]
    for row, base, meaning in comparisons:
        # A pair trained at different rates compares the rates too; say so next to the difference.
        row_rates, base_rates = runs_rate_text(rows[row]), runs_rate_text(rows[base])
        if row_rates != base_rates:
            meaning += f"; trained at {row_rates} against {base_rates}".replace("|", "\\|")  # a table cell
        cells = [difference_cell(paired_differences(rows[row], rows[base], lambda r, t=t: r.scores.get(t)))
                 for t in tasks]
        diffs = paired_differences(rows[row], rows[base], lambda r: r.average(tasks))
        cells.append(signed_points(statistics.fmean(diffs)) if diffs else "–")
        cells.append(str(len(diffs)))
        cells.append(interval_cell(diffs, signed=True) if diffs else "–")
        lines.append(f"| {row_name(row)} − {row_name(base)} ({meaning}) | " + " | ".join(cells) + " |")
    return lines


def unpaired_table(rows, tasks):
    lines = []
    for row, base, meaning in UNPAIRED_COMPARISONS:
        if row not in rows or base not in rows:
            continue
        a = [v for v in (run.average(tasks) for run in rows[row].values()) if v is not None]
        b = [v for v in (run.average(tasks) for run in rows[base].values()) if v is not None]
        if not a or not b:
            continue
        interval = welch_interval(a, b)
        cell = "–" if interval is None else f"[{signed_points(interval[0])}, {signed_points(interval[1])}]"
        lines.append(f"| {row_name(row)} − {row_name(base)} ({meaning}) | "
                     f"{signed_points(statistics.fmean(a) - statistics.fmean(b))} | {len(a)} and {len(b)} | {cell} |")
    return ["| difference | average | n (row and baseline) | 95 % Welch interval |", "|---|---:|---:|---:|"] + lines \
        if lines else []


METRICS_LINE = ("Metrics: MRPC = mean(F1, accuracy), STS-B = mean(Pearson, Spearman), CoLA = Matthews correlation, "
                "CB = mean(macro F1, accuracy), "
                "the others accuracy; ×100. The average is the unweighted mean of the tasks. Each run's model is "
                "selected on its validation split (carved from the training data, best validation average); the "
                "GLUE dev set is measured once, on the selected model, and is the number reported.")


def render_grid(grid, rows, sources, plot_link):
    tasks = grid_tasks(rows)
    out = [f"### Grid `{grid}` ({', '.join(sources)})", "", "**Budget per row.**", ""]
    out += [budget_line(row, rows[row]) for row in ordered_rows(rows)]
    out += ["", "**GLUE dev score of the selected model**, mean ± sd over seeds (×100); 95 % Student-t interval "
                "of the average over seeds.", ""]
    out += main_table(rows, tasks)
    out += ["", f"† the mean is within {FLOOR_MARGIN:.0f} point of the constant predictor's score on that task, or "
                "below it: the row has not learned the task beyond predicting the training split's majority "
                "class. The constant predictor's STS-B (correlation) score is 0 by convention: a constant has no "
                "correlation."]
    if any(run.scores.get(t) is None for seeds in rows.values() for run in seeds.values() for t in tasks):
        out += ["", "A cell with \"(k of n seeds)\" had a null (NaN) dev score on the other seeds; a seed with a "
                    "null or missing task has no average, and n counts the seeds with an average."]
    selection = validation_table(rows)
    if selection:
        out += ["", "**Validation average of the selected models** (×100, mean ± sd over seeds): what model "
                    "selection and the sweeps choose by.", ""]
        out += selection
    paired = paired_table(rows, tasks)
    if paired:
        out += ["", "**Paired differences** (row − baseline, ×100), computed per seed index present in both rows "
                    "(the same data and initialisation seeds), mean and 95 % Student-t interval of the per-seed "
                    "differences.", ""]
        out += paired
    unpaired = unpaired_table(rows, tasks)
    if unpaired:
        out += ["", "**Unpaired differences** (row − baseline, ×100) where the baseline drew other examples: the "
                    "difference of the rows' mean averages and its 95 % Welch interval.", ""]
        out += unpaired
    out += ["", METRICS_LINE]
    if plot_link:
        out += ["", plot_link]
    return out + [""]


# ---------------------------------------------------------------------------------------------------------------
# Learning curves


def run_curve(run, tasks):
    """The run's validation average against step. Row (a)'s single-task models are evaluated separately: at
    step s each task counts with its own model's last evaluation at or before s (a model that has finished
    keeps its last score), from the first step at which every task has one."""
    steps = sorted({step for curve in run.curves for step, _ in curve})
    points_ = []
    for step in steps:
        latest = {}
        for curve in run.curves:
            for s, scores in curve:
                if s <= step:
                    latest.update(scores)
        values = [latest.get(t) for t in tasks]
        if all(v is not None for v in values):
            points_.append((step, statistics.fmean(values)))
    return points_


def mean_curve(curves):
    """Mean over seeds at the steps every seed was evaluated at."""
    common = set.intersection(*(set(dict(c)) for c in curves)) if curves else set()
    return [(s, statistics.fmean(dict(c)[s] for c in curves)) for s in sorted(common)]


COLOURS = ["1f77b4", "d62728", "2ca02c", "9467bd", "ff7f0e", "8c564b", "e377c2", "7f7f7f", "17becf", "bcbd22"]


def write_series(path, curve):
    with open(path, "w") as f:
        f.writelines(f"{step} {100 * value:.4f}\n" for step, value in curve)


def plot_grid(grid, rows, png):
    """One PNG: a thick line per row (mean over seeds) and a thin, faint line per seed. Returns False when
    no row has a curve."""
    tasks = grid_tasks(rows)
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        for i, row in enumerate(ordered_rows(rows)):
            colour = COLOURS[i % len(COLOURS)]
            curves = [c for c in (run_curve(rows[row][s], tasks) for s in sorted(rows[row])) if c]
            if not curves:
                continue
            for j, curve in enumerate(curves):
                path = os.path.join(tmp, f"{i}_{j}.dat")
                write_series(path, curve)
                plots.append(f"'{path}' using 1:2 with lines lw 0.8 lc rgb '#B0{colour}' notitle")
            path = os.path.join(tmp, f"{i}_mean.dat")
            write_series(path, mean_curve(curves))
            title = row_name(row).replace("'", "")
            seeds = f"{len(curves)} seed" + ("s" if len(curves) > 1 else "")
            plots.append(f"'{path}' using 1:2 with linespoints lw 2.5 pt 7 ps 0.6 lc rgb '#{colour}' "
                         f"title '{title} ({seeds})'")
        if not plots:
            return False
        merged = any(run.models > 1 for seeds in rows.values() for run in seeds.values())
        note = "; single-task rows: steps of each task's own model" if merged else ""
        script = os.path.join(tmp, "curves.gp")
        with open(script, "w") as f:
            f.write("set terminal pngcairo size 1000,700 noenhanced\n"
                    f"set output '{os.path.abspath(png)}'\n"
                    f"set title \"Grid {grid}: validation average during training\\n"
                    f"thick: mean over seeds, thin: one seed{note}\"\n"
                    "set xlabel 'step'\nset ylabel 'validation average (x100)'\n"
                    "set key below\nset grid\n"
                    "plot " + ", \\\n     ".join(plots) + "\n")
        result = subprocess.run(["gnuplot", script], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"gnuplot failed on grid {grid}: {result.stderr.strip()}")
    return True


def plot_link_for(grid, rows, plots_dir, out_file):
    """Draws the grid's PNG and returns the markdown line that shows it (or says why there is none)."""
    if shutil.which("gnuplot") is None:
        message = f"**No learning-curve plot for grid `{grid}`: gnuplot is not installed.**"
        print(f"results_tables.py: gnuplot not found, no plot for grid {grid}", file=sys.stderr)
        return message
    os.makedirs(plots_dir, exist_ok=True)
    png = os.path.join(plots_dir, f"{grid}_curves.png")
    try:
        drawn = plot_grid(grid, rows, png)
    except RuntimeError as e:  # the tables still stand without their plot: say so where the plot would be
        print(f"results_tables.py: {e}", file=sys.stderr)
        return f"**No learning-curve plot for grid `{grid}`: {e}**"
    if not drawn:
        return f"No learning curve for grid `{grid}`: its records have no validation curve."
    # Relative to the markdown file, so the link works where the tables are pasted or written.
    base = os.path.dirname(os.path.abspath(out_file)) if out_file else os.getcwd()
    return f"![learning curves of grid {grid}]({os.path.relpath(os.path.abspath(png), base)})"


# ---------------------------------------------------------------------------------------------------------------


def render(paths, plots_dir=None, out_file=None):
    records = load_records(paths)
    warnings = metric_warnings(records)
    records, settings_notes = keep_current_settings(records)
    grids, duplicate_notes = merge_runs(records)
    sources = {}
    for path, _, r in records:
        sources.setdefault(r["grid"], [])
        if path not in sources[r["grid"]]:
            sources[r["grid"]].append(path)
    out = []
    for grid in grids:
        link = plot_link_for(grid, grids[grid], plots_dir, out_file) if plots_dir else None
        out += render_grid(grid, grids[grid], sources[grid], link)
    notes = settings_notes + duplicate_notes + warnings
    if notes:
        out += ["**Notes on the records.**", ""] + [f"- {n}" for n in notes] + [""]
    all_runs = [run for rows in grids.values() for seeds in rows.values() for run in seeds.values()]
    if any(dirty for run in all_runs for dirty in run.commits.values()):
        out += ["**Some records come from a tree with uncommitted changes under include/ or examples/** (marked "
                "in the budget lines): the commit alone does not reproduce them.", ""]
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", nargs="+", help="JSONL record files (scripts/run_results.py)")
    ap.add_argument("--plots", metavar="DIR", help="write one learning-curve PNG per grid here (gnuplot)")
    ap.add_argument("--out", metavar="FILE", help="write the markdown here (default: stdout)")
    a = ap.parse_args(argv)
    try:
        text = render(a.records, a.plots, a.out)
    except RecordError as e:
        print(f"results_tables.py: {e}", file=sys.stderr)
        return 2
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
