"""Hidden cases of 09_report's code exercises: the report's verdict rule and the repeats the discovery task hides."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import constants as C
from ..exercises import Case, Result, check_code, equal
from ._common import _number


# ---- 09_report ---------------------------------------------------------------------------------------
def cases_claim_verdict() -> list[Case]:
    from ..evaluate import PairedDiff
    from ..verdicts import _verdict

    out = []
    for label, lo, hi, n in [("interval above 0, 400 users", 0.004, 0.02, 400),
                             ("interval below 0, 400 users", -0.03, -0.001, 400),
                             ("interval covers 0, 400 users", -0.01, 0.02, 400),
                             ("interval covers 0, only 12 users", -0.05, 0.08, 12),
                             ("interval above 0, only 12 users", 0.01, 0.2, 12),
                             ("a mean above 0 whose interval covers 0", -0.001, 0.03, 200),
                             ("no users at all", float("nan"), float("nan"), 0)]:
        diff = 0.0 if n == 0 else (lo + hi) / 2
        p = PairedDiff("article", "other", "ndcg", "all", n, 0.0, 0.0, diff, lo, hi)
        out.append(Case(label, (diff, lo, hi, n), _verdict(p, "article")))
    return out


def check_claim_verdict(fn, name: str = "claim_verdict") -> Result:
    """``fn(diff, lo, hi, n)``: the report's verdict on a claim that the article's method beats another, from the
    paired difference (article − other) over ``n`` users and its interval."""
    return check_code(name, fn, cases_claim_verdict(), equal,
                      hint="the interval decides, not the mean: above 0 'supported', below 0 'refuted', covering 0 "
                           "'mixed (tied)' — unless fewer than 30 users: 'too few users to judge (n)'; no users or no "
                           "interval: 'not testable here'")


def cases_repeat_share() -> list[Case]:
    def log(pairs):
        return pd.DataFrame(pairs, columns=[C.USER, C.ITEM])

    def share(train, test):  # by hand: distinct test (user, item) pairs whose item the user had in training
        seen = set(zip(train[C.USER], train[C.ITEM]))
        pairs = set(zip(test[C.USER], test[C.ITEM]))
        return len(pairs & seen) / len(pairs) if pairs else float("nan")

    out = []
    for label, train, test in [
            ("two users, one repeat", log([("u1", "a"), ("u1", "b"), ("u2", "c")]), log([("u1", "a"), ("u2", "d")])),
            ("a test item bought twice counts once", log([("u1", "a")]), log([("u1", "a"), ("u1", "a"), ("u1", "b")])),
            ("another user's item is not a repeat", log([("u1", "a")]), log([("u2", "a"), ("u2", "b")])),
            ("a user with no training history", log([("u1", "a")]), log([("u9", "a"), ("u1", "a"), ("u1", "c")])),
            ("no repeats at all", log([("u1", "a")]), log([("u1", "b")]))]:
        out.append(Case(label, (train, test), share(train, test)))
    return out


def check_repeat_share(fn, name: str = "repeat_share") -> Result:
    """``fn(train, test)``: the share of the distinct relevant test (user, item) pairs that are repeats (the user had
    the item in training): what the discovery task hides from the lists, and the report's unreachable share."""
    return check_code(name, fn, cases_repeat_share(), _number(1e-9),
                      hint="count distinct (user, item) pairs of the test log; a repeat is a pair that is also in "
                           "the training log (the same user and the same item)")


def cases_paired_difference() -> list[Case]:
    rows = []
    rng = np.random.default_rng(13)
    for m in ("A", "B"):
        for u in range(6):
            rows.append((m, f"u{u}", float(rng.uniform(0, 1))))
    rows.append(("A", "u9", 0.9))  # a user only A was scored for: not in the pair
    pu = pd.DataFrame(rows, columns=["method", "user", "ndcg"])
    shuffled = pu.sample(frac=1.0, random_state=0).reset_index(drop=True)
    out = []
    for label, table, a, b in [("two methods, six shared users and one extra", pu, "A", "B"),
                               ("the rows in another order", shuffled, "A", "B"),
                               ("b - a, the other way round", pu, "B", "A")]:
        wide = table.pivot_table(index="user", columns="method", values="ndcg").dropna()
        out.append(Case(label, (table, a, b), float((wide[a] - wide[b]).mean())))
    return out


def check_paired_difference(fn, name: str = "paired_difference") -> Result:
    """``fn(per_user, a, b)``: the mean over the users scored for both methods of (a's NDCG − b's NDCG), from a long
    table with columns ``method, user, ndcg`` (what ``compare`` pairs)."""
    return check_code(name, fn, cases_paired_difference(), _number(1e-9),
                      hint="keep only the users scored for both methods (one column per method, matched by user), "
                           "then the mean of a − b (not b − a)")
