"""Running a method over a split and scoring its lists: the harness between vectors and metrics.

Not the metrics themselves (see ``metrics.py``) and not the encoders: it receives item vectors and interaction logs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import constants as C
from .metrics import recall_at_k
from .profiles import history_profiles, item_index, seen_items
from .rank import top_k


def profile_recall(train: pd.DataFrame, test: pd.DataFrame, items: pd.DataFrame, item_vecs: np.ndarray,
                   k: int = 10, half_life_days: float | None = None):
    """recall@k of a content recommender: profile = mean of the user's train items, seen items hidden.

    Scored on users who have both train history and test items; returns a :class:`~course_lib.metrics.MetricResult`.
    """
    if len(items) != len(item_vecs):
        raise ValueError(f"got {len(item_vecs)} item vectors for {len(items)} items")
    index = item_index(items)
    users = sorted(set(test[C.USER]) & set(train[C.USER]))
    if not users:
        raise ValueError("no user has both train history and test items; check the split")
    profiles, _ = history_profiles(train, item_vecs, index, users=users, half_life_days=half_life_days)
    _, idx = top_k(profiles, item_vecs, k, exclude=seen_items(train, index, users))
    relevant = test.groupby(C.USER)[C.ITEM].agg(lambda s: {index[i] for i in s})
    return recall_at_k([list(r) for r in idx], [relevant[u] for u in users], k)
