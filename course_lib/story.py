"""The story user: the one user notebooks 00, 04, 05 and 08 follow, picked by a rule stated in advance.

Not a showcase (``widgets.showcase_users`` picks users whose tiers show the idea best): this rule never looks at how
well any method does for the user, so the story may go badly, and the notebooks say so when it does.
"""
from __future__ import annotations

import pandas as pd

from . import constants as C

RULE = ("the returning user with the median number of training events among users who have a self-description, "
        "a true emerging and a true fading interest, and events in the test period (ties broken by id)")


def _candidates(ds, split) -> tuple[pd.Series, list[str]]:
    """Training-event counts of the users the rule may pick, and the conditions that applied."""
    for name, frame in (("split.train", getattr(split, "train", None)), ("split.test", getattr(split, "test", None))):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"split must be a course_lib.data.Split (make_split(ds.interactions)), {name} is missing")
    n_train = split.train.groupby(C.USER).size()
    pool = n_train[n_train.index.isin(set(split.test[C.USER]))]
    used = ["events in the test period"]
    if pool.empty:  # a split whose test period has no returning user (a tiny sample): drop that condition, say so
        pool, used = n_train, ["training events (none has test events in this split)"]
    if C.DESCRIPTION in ds.users.columns:
        said = ds.users.loc[ds.users[C.DESCRIPTION].fillna("").str.strip().str.len() > 0, C.USER]
        if len(set(said) & set(pool.index)):
            pool, used = pool[pool.index.isin(set(said))], used + ["a self-description"]
    if ds.truth is not None:
        tiers = ds.truth.groupby(C.USER)[C.TIER].agg(set)
        rich = [u for u in pool.index if {"emerging", "fading"} <= tiers.get(u, set())]
        if rich:
            pool, used = pool[rich], used + ["a true emerging and a true fading interest"]
    return pool, used


def story_user(ds, split) -> str:
    """The user of :data:`RULE`: among returning users with test events (and, where the data has them, a
    self-description and a true emerging and fading interest), the one with the median number of training events.
    With an even count the lower median; equal counts are ordered by user id. A condition no user meets is dropped
    (and :func:`story_sentence` says which applied)."""
    pool, _ = _candidates(ds, split)
    if pool.empty:
        raise ValueError("split.train has no events, so no user can be followed; use a split with a training period "
                         "(make_split(ds.interactions, 'global', test_frac=0.2))")
    order = sorted(pool.items(), key=lambda kv: (kv[1], str(kv[0])))
    return order[(len(order) - 1) // 2][0]


def story_sentence(ds, split) -> str:
    """One sentence saying who the story user is and by which rule, with the numbers of this dataset."""
    pool, used = _candidates(ds, split)
    user = story_user(ds, split)
    n = int(pool[user])
    span = f"{int(pool.min())} to {int(pool.max())}"
    return (f"The story user is **{user}**: among the {len(pool)} users with {', '.join(used)}, the one "
            f"with the median number of training events ({n}; they range from {span}). The rule never looks at how "
            "well any method does for this user.")
