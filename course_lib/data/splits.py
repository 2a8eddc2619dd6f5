"""Train/test splits of an interaction log: per-user chronological, global time cut, leave-last-n.

Not evaluation (see ``evaluate.py``). All splits keep time order, because a random split lets the model see a
user's future and inflates every metric.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import checks
from .. import constants as C


@dataclass
class Split:
    """A train and a test log; ``describe()`` gives their sizes."""

    train: pd.DataFrame
    test: pd.DataFrame

    def describe(self) -> pd.DataFrame:
        rows = {}
        for name, df in (("train", self.train), ("test", self.test)):
            rows[name] = {"interactions": len(df), "users": df[C.USER].nunique(), "items": df[C.ITEM].nunique()}
        return pd.DataFrame(rows).T

    def fingerprint(self) -> str:
        """``"sha256:..."`` of the distinct (user, item) pairs of train and of test, in sorted order.

        Two runs with the same fingerprint held out the same events for the same users, so their per-user results
        can be compared pairwise (``python -m course_lib compare``). Row order and repeated events do not change it;
        any other difference in who or what was held out does.
        """
        import hashlib

        h = hashlib.sha256()
        for name, df in (("train", self.train), ("test", self.test)):
            pairs = sorted({(str(u), str(i)) for u, i in zip(df[C.USER].tolist(), df[C.ITEM].tolist())})
            h.update(f"{name} {len(pairs)}\n".encode())
            h.update("".join(f"{u}\t{i}\n" for u, i in pairs).encode())
        return "sha256:" + h.hexdigest()


def _test_frac(test_frac) -> float:
    return checks.number("test_frac", test_frac, above=0, below=1, fix="test_frac must be in (0, 1): the share of "
                         "events held out for testing, e.g. 0.2")


def _check(interactions: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(interactions, pd.DataFrame):
        raise TypeError(f"interactions must be a pandas DataFrame (e.g. ds.interactions), "
                        f"got {type(interactions).__name__}")
    missing = [c for c in (C.USER, C.ITEM, C.TIMESTAMP) if c not in interactions.columns]
    if missing:
        raise ValueError(f"interactions are missing column(s) {missing}; found {list(interactions.columns)}")
    ts = interactions[C.TIMESTAMP]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise TypeError(f"interactions['{C.TIMESTAMP}'] must be datetimes, got {ts.dtype}; "
                        "parse it first with course_lib.data.parse_timestamps")
    if ts.isna().any():
        raise ValueError(f"interactions['{C.TIMESTAMP}'] has missing times in row(s) "
                         f"{np.flatnonzero(ts.isna().to_numpy())[:5].tolist()}; drop or fix them first")
    # stable sort: ties in time keep their file order, so splits are reproducible
    order = np.lexsort((np.arange(len(interactions)), interactions[C.TIMESTAMP].to_numpy()))
    return interactions.iloc[order]


def split_per_user(interactions: pd.DataFrame, test_frac: float = 0.2) -> Split:
    """Each user's last ``floor(n * test_frac)`` interactions (in time) go to test, the rest to train.

    A user with too few interactions for one test event (``n * test_frac < 1``; e.g. a single interaction)
    stays wholly in train: nothing of theirs is tested, and they are not made cold.
    """
    test_frac = _test_frac(test_frac)
    df = _check(interactions)
    rank_from_end = df.groupby(C.USER, sort=False).cumcount(ascending=False).to_numpy()
    n = df.groupby(C.USER, sort=False)[C.USER].transform("size").to_numpy()
    n_test = np.floor(n * test_frac + 1e-9).astype(int)
    is_test = rank_from_end < n_test
    return Split(df[~is_test].sort_index(), df[is_test].sort_index())


def leave_last_n(interactions: pd.DataFrame, n: int = 1) -> Split:
    """Each user's last ``n`` interactions go to test; users with ``n`` or fewer stay wholly in train."""
    n = checks.integer("n", n, min=1, fix="n must be a positive integer: how many of each user's last events to test")
    df = _check(interactions)
    rank_from_end = df.groupby(C.USER, sort=False).cumcount(ascending=False).to_numpy()
    size = df.groupby(C.USER, sort=False)[C.USER].transform("size").to_numpy()
    is_test = (rank_from_end < n) & (size > n)
    return Split(df[~is_test].sort_index(), df[is_test].sort_index())


def split_by_time(interactions: pd.DataFrame, cut=None, test_frac: float | None = None) -> Split:
    """One global cut: events strictly before ``cut`` train, the rest test.

    Give ``cut`` (a timestamp or date string) or ``test_frac`` (the cut is the time quantile that leaves about
    that share of events in test). Users first seen after the cut are cold in test, as in production.
    """
    if (cut is None) == (test_frac is None):
        raise ValueError("give exactly one of cut= (a timestamp) or test_frac= (a fraction in (0, 1))")
    df = _check(interactions)
    ts = df[C.TIMESTAMP]
    if test_frac is not None:
        test_frac = _test_frac(test_frac)
        cut = ts.quantile(1 - test_frac, interpolation="higher")
    else:
        try:
            cut = pd.Timestamp(cut)
        except (TypeError, ValueError) as e:
            raise ValueError(f"cut must be a time such as '2026-08-01' or a pandas Timestamp, got {cut!r} ({e})") from None
        if pd.isna(cut):
            raise ValueError(f"cut must be a time such as '2026-08-01', got {cut!r}")
        if cut.tzinfo is not None:
            cut = cut.tz_convert("UTC").tz_localize(None)
    is_test = (ts >= cut).to_numpy()
    return Split(df[~is_test].sort_index(), df[is_test].sort_index())


def split_random(interactions: pd.DataFrame, test_frac: float = 0.2, seed: int = C.SEED) -> Split:
    """A random split, **for teaching only**: it puts events from a user's future into train.

    Models then learn from what happened after the events they are tested on, and every metric looks better
    than it will in production (notebook 06 measures by how much). Use the time-ordered splits above.
    """
    test_frac = _test_frac(test_frac)
    seed = checks.integer("seed", seed, min=0, max=2**32 - 1)
    _check(interactions)
    rng = np.random.default_rng(seed)
    is_test = rng.random(len(interactions)) < test_frac
    return Split(interactions[~is_test], interactions[is_test])


SPLITS = ("global", "per-user")


def make_split(interactions: pd.DataFrame, kind: str = "global", test_frac: float = 0.2) -> Split:
    """The split a notebook or report asks for by name, so every table can say who is tested.

    - ``"global"``: one time cut (:func:`split_by_time`): realistic; users who arrive after the cut are *new* in test.
    - ``"per-user"``: each user's last ``test_frac`` of interactions (:func:`split_per_user`): every test user has
      history, so it measures returning users only.
    """
    if kind not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {kind!r}")
    if kind == "global":
        return split_by_time(interactions, test_frac=test_frac)
    return split_per_user(interactions, test_frac=test_frac)
