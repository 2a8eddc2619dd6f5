"""User vectors: from the items in a user's history (plain or recency-weighted mean) or from their own words.

Not a ranker: profiles are query vectors; ``rank.top_k`` turns them into lists.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from . import constants as C
from .catalogue import Catalogue, require_catalogue
from .checks import matrix, number, unique, vector
from .data.dataset import check_event_times, check_time
from .vectors import unit_rows


def item_index(items) -> dict:
    """``item_id -> row`` of the item matrix (rows follow ``items`` order); the same as ``Catalogue.row``."""
    return dict(Catalogue.from_items(items).row)


def _log_rows(interactions: pd.DataFrame, catalogue: Catalogue) -> np.ndarray:
    missing = [c for c in (C.USER, C.ITEM) if c not in interactions.columns]
    if missing:
        raise ValueError(f"interactions are missing column(s) {missing}; found {list(interactions.columns)}")
    return require_catalogue(catalogue, "seen_items").rows(interactions[C.ITEM], what="interactions item_id")


def event_weights(interactions: pd.DataFrame, half_life_days: float | None = None, now=None,
                  use_weights: bool = True) -> np.ndarray:
    """The weight each event carries in a history profile: event weight × ``2 ** (-age / half_life)``.

    ``now`` defaults to the last event in ``interactions``. This is the one place the recency rule is written;
    :func:`history_profiles` and the explanations (``explain.py``) both use it.
    """
    half_life_days = number("half_life_days", half_life_days, above=0, allow_none=True,
                            fix="use None for no recency weighting")
    w = np.ones(len(interactions))
    if use_weights and C.WEIGHT in interactions:
        w = vector("interactions weight", interactions[C.WEIGHT].to_numpy(dtype=float))
        if (w < 0).any():
            raise ValueError("interactions weight must be >= 0 (a negative event weight would flip a profile)")
    if half_life_days is not None and len(interactions):
        ts = check_event_times(interactions)
        now = ts.max() if now is None else check_time("now", now)
        age = (now - ts).dt.total_seconds().to_numpy() / 86400.0
        w = w * np.exp2(-np.maximum(age, 0) / half_life_days)
    return w


def history_profiles(interactions: pd.DataFrame, catalogue: Catalogue, users=None,
                     half_life_days: float | None = None, now=None, use_weights: bool = True):
    """One vector per user: the (weighted) mean of the vectors of the items they interacted with.

    ``catalogue`` holds the item vectors (``Catalogue.from_items(items, vectors)``).
    ``half_life_days``: recency weighting, each event counts ``2 ** (-age / half_life)`` with age measured from
    ``now`` (default: the last event in ``interactions``); ``None`` weighs all events alike.
    ``use_weights``: also multiply by the event weight (view < click < purchase).
    Returns ``(profiles, has_history)``: users with no history get a zero row and ``False``, explicitly,
    so callers decide their fallback (popularity, self-description) instead of ranking with a zero vector.
    The profile is a weighted *mean*, not unit length: normalise it (``vectors.unit_rows``) before reading
    ``item_vecs @ profile`` as a cosine.
    """
    vecs = require_catalogue(catalogue, "history_profiles").require_vectors("history_profiles")
    if C.TIMESTAMP in interactions and half_life_days is None:  # else event_weights checks them, as it reads them
        check_event_times(interactions)
    users = list(pd.unique(interactions[C.USER])) if users is None else unique("users", users)
    rows = _log_rows(interactions, catalogue)
    w = event_weights(interactions, half_life_days, now, use_weights)
    pos = {u: k for k, u in enumerate(users)}
    urow = interactions[C.USER].map(pos)
    keep = urow.notna().to_numpy()
    ur = urow[keep].to_numpy(dtype=np.int64)
    # user x item weights (repeats summed), then one matrix product: never an events x dimensions array
    weights = sparse.csr_matrix((w[keep], (ur, rows[keep])), shape=(len(users), len(vecs)))
    out = np.asarray(weights @ vecs.astype(np.float64))
    totals = np.bincount(ur, weights=w[keep], minlength=len(users))
    has = totals > 0
    out[has] /= totals[has, None]
    return out.astype(np.float32), has


def seen_items(interactions: pd.DataFrame, catalogue: Catalogue, users) -> list[list[int]]:
    """For each user, the distinct item rows they interacted with (to hide them from their list)."""
    rows = _log_rows(interactions, catalogue)
    groups = pd.Series(rows, index=interactions.index).groupby(interactions[C.USER].to_numpy()).agg(
        lambda s: list(dict.fromkeys(s.tolist())))
    return [list(groups.get(u, [])) for u in users]


def description_profiles(users: pd.DataFrame, encoder) -> dict:
    """``user_id -> vector`` of each non-empty self-description, encoded with ``encoder`` (empty ones are skipped)."""
    if C.DESCRIPTION not in users.columns:
        return {}
    described = users[users[C.DESCRIPTION].fillna("").astype(str).str.strip() != ""]
    if described.empty:
        return {}
    vecs = encoder.encode(described[C.DESCRIPTION].astype(str).tolist())
    return dict(zip(described[C.USER], vecs))


def blend_profiles(history: np.ndarray, description: np.ndarray, n_interactions, k: float = 5.0) -> np.ndarray:
    """Trust history more as it grows: ``w = n / (n + k)``; profile = w · history + (1 − w) · description.

    Both inputs are normalised first; a user with 0 interactions gets the description, one with many gets
    mostly history. ``k`` is the number of interactions at which both count equally.
    """
    k = number("k", k, above=0)
    h = matrix("history", history)
    d = matrix("description", description, rows=len(h), cols=h.shape[1])
    n = vector("n_interactions", n_interactions, length=len(h)).reshape(-1, 1)
    if (n < 0).any():
        raise ValueError("n_interactions must be >= 0")
    w = n / (n + k)
    return (w * unit_rows(h) + (1 - w) * unit_rows(d)).astype(np.float32)
