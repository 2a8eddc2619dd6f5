"""User vectors: from the items in a user's history (plain or recency-weighted mean) or from their own words.

Not a ranker: profiles are query vectors; ``rank.top_k`` turns them into lists.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import constants as C
from .vectors import unit_rows


def item_index(items: pd.DataFrame) -> dict:
    """``item_id -> row`` of the item matrix (rows follow ``items`` order)."""
    return {i: k for k, i in enumerate(items[C.ITEM])}


def history_profiles(interactions: pd.DataFrame, item_vecs: np.ndarray, index: dict, users=None,
                     half_life_days: float | None = None, now=None, use_weights: bool = True):
    """One vector per user: the (weighted) mean of the vectors of the items they interacted with.

    ``half_life_days``: recency weighting, each event counts ``2 ** (-age / half_life)`` with age measured from
    ``now`` (default: the last event in ``interactions``); ``None`` weighs all events alike.
    ``use_weights``: also multiply by the event weight (view < click < purchase).
    Returns ``(profiles, has_history)``: users with no history get a zero row and ``False``, explicitly,
    so callers decide their fallback (popularity, self-description) instead of ranking with a zero vector.
    """
    if half_life_days is not None and not half_life_days > 0:
        raise ValueError(f"half_life_days must be > 0 or None, got {half_life_days}")
    users = list(pd.unique(interactions[C.USER])) if users is None else list(users)
    rows = interactions[C.ITEM].map(index)
    if rows.isna().any():
        raise ValueError(f"{int(rows.isna().sum())} interactions point to items missing from the item index")
    w = np.ones(len(interactions))
    if use_weights and C.WEIGHT in interactions:
        w = interactions[C.WEIGHT].to_numpy(dtype=float)
    if half_life_days is not None:
        ts = interactions[C.TIMESTAMP]
        now = ts.max() if now is None else pd.Timestamp(now)
        age = (now - ts).dt.total_seconds().to_numpy() / 86400.0
        w = w * np.exp2(-np.maximum(age, 0) / half_life_days)
    pos = {u: k for k, u in enumerate(users)}
    urow = interactions[C.USER].map(pos)
    keep = urow.notna().to_numpy()
    out = np.zeros((len(users), item_vecs.shape[1]), dtype=np.float64)
    np.add.at(out, urow[keep].to_numpy(dtype=np.int64), item_vecs[rows[keep].to_numpy(dtype=np.int64)] * w[keep, None])
    totals = np.bincount(urow[keep].to_numpy(dtype=np.int64), weights=w[keep], minlength=len(users))
    has = totals > 0
    out[has] /= totals[has, None]
    return out.astype(np.float32), has


def seen_items(interactions: pd.DataFrame, index: dict, users) -> list[list[int]]:
    """For each user, the item rows they interacted with (to hide them from their list)."""
    groups = interactions.groupby(C.USER)[C.ITEM].agg(list)
    return [[index[i] for i in groups.get(u, [])] for u in users]


def description_profiles(users: pd.DataFrame, encoder) -> dict:
    """``user_id -> vector`` of each non-empty self-description, encoded with ``encoder`` (empty ones are skipped)."""
    described = users[users[C.DESCRIPTION].fillna("").str.strip() != ""]
    vecs = encoder.encode(described[C.DESCRIPTION].tolist())
    return dict(zip(described[C.USER], vecs))


def blend_profiles(history: np.ndarray, description: np.ndarray, n_interactions, k: float = 5.0) -> np.ndarray:
    """Trust history more as it grows: ``w = n / (n + k)``; profile = w · history + (1 − w) · description.

    Both inputs are normalised first; a user with 0 interactions gets the description, one with many gets
    mostly history. ``k`` is the number of interactions at which both count equally.
    """
    if not k > 0:
        raise ValueError(f"k must be > 0, got {k}")
    h = np.asarray(history, dtype=np.float32)
    d = np.asarray(description, dtype=np.float32)
    n = np.asarray(n_interactions, dtype=np.float32).reshape(-1, 1)
    if (n < 0).any():
        raise ValueError("n_interactions must be >= 0")
    w = n / (n + k)
    return (w * unit_rows(h) + (1 - w) * unit_rows(d)).astype(np.float32)
