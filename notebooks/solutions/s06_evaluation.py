"""Worked solutions for 06_evaluation's exercises (tested in tests/test_exercises.py)."""
import math

import numpy as np


def tail_lo(ev, n_boot=1000, seed=42):
    # the same tail users for both methods: a paired interval on the difference
    return ev.compare("EASE", "popularity", "ndcg", segment="tail", n_boot=n_boot, seed=seed).lo


def inflation(leak_table):
    # row 0: the random split, row 1: the time split
    return leak_table["recall"].iloc[0] / leak_table["recall"].iloc[1]


# ---- code exercises (the notebook's cells between ### BEGIN SOLUTION / ### END SOLUTION) ----
def ndcg_at_k(recommended, relevant, k):
    if not relevant:
        return float("nan")  # undefined: such users are left out of the mean
    seen, dcg = set(), 0.0
    for rank, item in enumerate(recommended[:k], 1):
        if item in relevant and item not in seen:  # a repeat earns nothing
            dcg += 1 / math.log2(rank + 1)
        seen.add(item)
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def paired_bootstrap(a, b, n_boot=1000, seed=0):
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)  # one difference per user: the pairing
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)
