"""Ranking metrics for recommendation lists, written out to be read: each docstring gives its formula.

Not a harness (see ``evaluate``): functions take lists and relevant sets and return numbers.
Edge-case policy: users with no relevant items are excluded from the mean, and counted in ``n_excluded``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np


@dataclass
class MetricResult:
    value: float  # mean over users with at least one relevant item
    n_users: int  # users averaged over
    n_excluded: int  # users skipped because they had no relevant item

    def __float__(self) -> float:
        return self.value


def _per_user(recommended: Sequence[Sequence], relevant: Sequence[Iterable], k: int, fn) -> MetricResult:
    if len(recommended) != len(relevant):
        raise ValueError(f"got {len(recommended)} lists but {len(relevant)} relevant sets: one per user")
    if int(k) != k or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    vals, excluded = [], 0
    for rec, rel in zip(recommended, relevant):
        rel = set(rel)
        if not rel:
            excluded += 1
            continue
        top = [r for r in list(rec)[:k]]
        vals.append(fn(top, rel))
    if not vals:
        raise ValueError(f"none of the {excluded} users has a relevant item: nothing to average "
                         "(check that the test split is not empty and uses the same item ids)")
    return MetricResult(float(np.mean(vals)), len(vals), excluded)


def precision_at_k(recommended, relevant, k: int) -> MetricResult:
    """precision@k = |top-k ∩ relevant| / k, averaged over users (a list shorter than k still divides by k)."""
    return _per_user(recommended, relevant, k, lambda top, rel: len(set(top) & rel) / k)


def recall_at_k(recommended, relevant, k: int) -> MetricResult:
    """recall@k = |top-k ∩ relevant| / |relevant|: relevant items *of this user*, not the catalogue size.

    The article divides by the number of all items, which makes recall shrink as the shop grows.
    """
    return _per_user(recommended, relevant, k, lambda top, rel: len(set(top) & rel) / len(rel))
