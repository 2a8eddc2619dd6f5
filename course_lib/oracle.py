"""The generator oracle as a recommender: the shop's own probabilities, the ceiling every method is measured against.

What it is: :class:`GeneratorOracle` follows the recommender protocol (``fit``/``score``/``recommend``), so
``evaluate`` scores it on the same users and split as every method, and ``article_verdicts(oracle=...)`` prints its
mean beside each claim. Its score of an item is the generator's probability that the user picks it, averaged over
the test period (``course_lib.data.shop.oracle_scores``), read from the hidden truth the generator saved.

What it is not: a method. It reads the ground truth (true interests and tiers, appeal, launch dates) that no method
may read, so it is never a candidate in tuning and never a verdict's winner. Its NDCG is below 1 because users
explore and pick among many items of one interest: that gap is the noise no method can remove. Shop only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import constants as C
from .baselines import Recommender
from .checks import integer


class GeneratorOracle(Recommender):
    """``GeneratorOracle(ds)``: scores each user's items by the generator's probability of picking them, averaged
    over ``steps`` times from the end of the training log to the end of ``ds``'s log. New users are scored the same
    way (the oracle knows everyone's true interests): its declared fallback is ``"truth"``."""

    name = "generator oracle"
    fallbacks = ("truth",)

    def __init__(self, dataset, steps: int = 8):
        if getattr(dataset, "truth", None) is None or getattr(dataset, "name", None) != "shop":
            raise ValueError(f"GeneratorOracle needs the shop with its ground truth (load_shop()), got "
                             f"{getattr(dataset, 'name', type(dataset).__name__)!r}: real data has no generator")
        super().__init__(dataset.items, "truth")
        self.dataset = dataset
        self.steps = integer("steps", steps, min=1, max=1000, fix="times averaged over the test period, e.g. 8")

    def _fit(self, train: pd.DataFrame):
        start = train[C.TIMESTAMP].max()
        end = self.dataset.interactions[C.TIMESTAMP].max()
        if end < start:
            end = start
        self.times_ = pd.date_range(start, end, periods=self.steps) if self.steps > 1 else pd.DatetimeIndex([start])
        ids = self.dataset.items[C.ITEM].astype(str).tolist()
        self.columns_ = self.catalogue.rows(ids, what="shop item_id")

    def score(self, users) -> np.ndarray:
        from .data.shop import oracle_scores

        self._check_fitted()
        users = list(users)
        p = np.zeros((len(users), len(self.dataset.items)))
        for t in self.times_:
            p += oracle_scores(self.dataset, users, t)
        out = np.zeros((len(users), self.n_items), dtype=np.float32)
        out[:, self.columns_] = p / len(self.times_)
        return out

    @property
    def fallback_label(self) -> str:
        return "truth (the generator's own probabilities)"
