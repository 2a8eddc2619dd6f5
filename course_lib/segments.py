"""Activity segments: cold / tail / torso / head by a user's number of training interactions.

Not tiering (see ``tiers``) and not evaluation: one rule that every table uses to say which users it talks about.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import constants as C

SEGMENTS = ("cold", "tail", "torso", "head")
THRESHOLDS = (5, 20)  # tail: 1..4 interactions, torso: 5..19, head: 20 or more


def user_segments(train: pd.DataFrame, users, thresholds=THRESHOLDS) -> pd.Series:
    """Segment by activity: cold (0), tail (1 .. t1−1), torso (t1 .. t2−1), head (≥ t2)."""
    t1, t2 = thresholds
    if not 0 < t1 < t2:
        raise ValueError(f"thresholds must satisfy 0 < tail/torso < torso/head, got {thresholds}")
    n = train.groupby(C.USER).size().reindex(list(users), fill_value=0)
    seg = np.select([n == 0, n < t1, n < t2], ["cold", "tail", "torso"], "head")
    return pd.Series(seg, index=n.index, name="segment")
