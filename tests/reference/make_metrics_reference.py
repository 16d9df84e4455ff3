#!/usr/bin/env python3
"""Reference values for tests/data/test_metrics.cpp, computed with scikit-learn and scipy.

The inputs below are written out identically in the C++ test (and the pseudo-random ones come from the
same 32-bit LCG there), so the printed numbers can be pasted into it. Run in any environment with
scikit-learn and scipy, e.g.
    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install scikit-learn scipy
    /tmp/refvenv/bin/python tests/reference/make_metrics_reference.py
The numbers in the test came from scikit-learn 1.9.1 and scipy 1.17.1.
"""
import math
import warnings

import scipy
import sklearn
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

warnings.simplefilter("ignore")  # sklearn/scipy warn on the degenerate cases, which are the point


def lcg(seed, n):
    """x <- (1664525 x + 1013904223) mod 2^32 (Numerical Recipes), yielding the new state each step."""
    out, x = [], seed
    for _ in range(n):
        x = (1664525 * x + 1013904223) % 2**32
        out.append(x)
    return out


def show(name, value):
    print(f"{name:<28} {float(value)!r}")


print(f"# scikit-learn {sklearn.__version__}, scipy {scipy.__version__}")

# Binary classification, 20 examples.
bin_pred = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1]
bin_gold = [1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1]
show("binary accuracy", accuracy_score(bin_gold, bin_pred))
show("binary f1", f1_score(bin_gold, bin_pred))
show("binary mcc", matthews_corrcoef(bin_gold, bin_pred))

# Three classes (CB-like), 15 examples.
mc_pred = [0, 1, 2, 0, 1, 1, 0, 2, 2, 0, 1, 0, 0, 1, 2]
mc_gold = [0, 1, 2, 1, 1, 0, 0, 2, 1, 0, 1, 2, 0, 0, 2]
show("3-class accuracy", accuracy_score(mc_gold, mc_pred))
show("3-class macro f1", f1_score(mc_gold, mc_pred, average="macro"))
show("3-class mcc", matthews_corrcoef(mc_gold, mc_pred))

# Class 3 only predicted, never gold: it still counts in sklearn's macro average (with F1 0).
x_pred = [0, 1, 3, 0, 1]
x_gold = [0, 1, 1, 0, 0]
show("extra-class macro f1", f1_score(x_gold, x_pred, average="macro"))

# Degenerate cases.
const_gold = [1, 0, 1, 1, 0, 1]
show("mcc constant pred 1", matthews_corrcoef(const_gold, [1] * 6))
show("mcc constant pred 0", matthews_corrcoef(const_gold, [0] * 6))
show("f1 constant pred 1", f1_score(const_gold, [1] * 6))
show("f1 no positives", f1_score([0, 0, 0], [0, 0, 0]))
show("mcc all correct", matthews_corrcoef(const_gold, const_gold))

# Regression with ties, 12 values.
reg_pred = [2.5, 3.0, 0.5, 4.75, 3.0, 1.25, 5.0, 2.5, 0.0, 3.0, 4.0, 1.0]
reg_gold = [2.0, 3.4, 1.0, 4.0, 2.8, 1.0, 4.6, 3.0, 0.2, 2.8, 4.8, 1.0]
show("pearson", pearsonr(reg_pred, reg_gold)[0])
show("spearman", spearmanr(reg_pred, reg_gold)[0])
show("pearson constant", pearsonr([1.5] * 5, [1, 2, 3, 4, 5])[0])
show("spearman constant", spearmanr([1.5] * 5, [1, 2, 3, 4, 5])[0])

# Pseudo-random: 1000 binary labels and 500 scores on a 0.25 grid in [0, 5] (many ties).
p = [v >> 31 for v in lcg(1, 1000)]
g = [v >> 31 for v in lcg(2, 1000)]
for i in range(0, 1000, 3):  # correlate them so the metrics are not all near 0
    g[i] = p[i]
show("lcg accuracy", accuracy_score(g, p))
show("lcg f1", f1_score(g, p))
show("lcg mcc", matthews_corrcoef(g, p))
xs = [(v >> 8) % 21 * 0.25 for v in lcg(3, 500)]
ys = [min(5.0, x + ((v >> 8) % 9) * 0.25) for x, v in zip(xs, lcg(4, 500))]
show("lcg pearson", pearsonr(xs, ys)[0])
show("lcg spearman", spearmanr(xs, ys)[0])
