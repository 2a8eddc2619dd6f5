"""Hidden cases and checks of 04_tiering, 05_cold_start and 06_evaluation."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import constants as C
from ..exercises import Case, Result, as_array, check_code
from ._common import _number, _rng, _scaled, _unit


# ---- 04_tiering ----------------------------------------------------------------------------------------
def cases_decayed_importance() -> list[Case]:
    from ..profiles import event_weights

    now = pd.Timestamp("2024-06-30")
    out = []
    for label, ages, hl in [("one event today", [0.0], 30.0), ("one event one half-life ago", [30.0], 30.0),
                            ("five events of various ages", [0.0, 3.5, 45.0, 90.0, 200.0], 60.0),
                            ("no events", [], 90.0)]:
        log = pd.DataFrame({C.TIMESTAMP: now - pd.to_timedelta(np.asarray(ages, dtype=float), unit="D")})
        w = event_weights(log, hl, now=now, use_weights=False) if ages else np.zeros(0)
        out.append(Case(label, (np.asarray(ages, dtype=float), hl), float(w.sum())))
    return out


def check_decayed_importance(fn, name: str = "decayed_importance") -> Result:
    """``fn(ages_days, half_life_days)``: Σ 2^(−age / half-life), the importance of an interest."""
    return check_code(name, fn, cases_decayed_importance(), _number(1e-9),
                      hint="an event one half-life old counts exactly 0.5; importance adds them up")


def _tier_cases(tiered: dict, users) -> list:
    from dataclasses import replace

    from ..tiers import UserInterests

    uis = [tiered[u] for u in users]
    one = next(ui for ui in uis if ui.interests)
    single = UserInterests(one.user, [replace(one.interests[0])], one.ages, one.trends_read)
    return [single] + uis


def check_tier_rule(fn, tiered: dict, truth: pd.DataFrame, item_labels, users, cfg, name: str = "my_tier_rule") -> Result:
    """``fn(ui, cfg)`` → one tier per interest: valid on every held-out user, then judged against the default rule.

    Valid means: a list as long as ``ui.interests``, every tier one of ``tiers.TIER_ORDER``, exactly one core. The
    check then re-tiers the held-out users with ``fn`` and prints its recovery next to the default rule's
    (``recovery.tier_score``: core found as core, emerging F1, fading F1), saying which one is better.
    """
    from dataclasses import replace

    from ..recovery import recovery, tier_score
    from ..tiers import TIER_ORDER, UserInterests, _order, tier_rule

    users = [u for u in users if u in tiered]
    if not users:
        raise ValueError("users must name users of tiered (the held-out users), got none of them")
    cases = [Case(f"user {ui.user!r} with {len(ui.interests)} interest(s)", (ui, cfg), tier_rule(ui, cfg))
             for ui in _tier_cases(tiered, users)]

    def valid(got, expected):
        if not isinstance(got, (list, tuple)):
            return f"expected a list with one tier per interest, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"{len(got)} tiers for {len(expected)} interests"
        bad = [t for t in got if t not in TIER_ORDER]
        if bad:
            return f"{bad[0]!r} is not a tier; tiers are {list(TIER_ORDER)}"
        if list(got).count("core") != 1:
            return f"{list(got).count('core')} core interests; a user has exactly one"
        return None

    res = check_code(name, fn, cases, valid, hint="start from my_tiers in section 2 and change one rule; every "
                                                  "interest gets one tier and exactly one is core")
    if not res:
        return res

    def retiered(rule):
        out = {}
        for u in users:
            ui = tiered[u]
            new = UserInterests(ui.user, [replace(it, tier=t) for it, t in zip(ui.interests, rule(ui, cfg))],
                                ui.ages, ui.trends_read)
            _order(new)
            out[u] = new
        return out

    rows = {}
    for label, rule in (("your rule", fn), ("default rule", tier_rule)):
        s = recovery(retiered(rule), truth, item_labels, users=users)["summary"].loc["all"]
        rows[label] = {"core found as core": s["core found as core"], "emerging recall": s["emerging recall"],
                       "emerging precision": s["emerging precision"], "fading recall": s["fading recall"],
                       "fading precision": s["fading precision"], "tier score": tier_score(s)}
    table = pd.DataFrame(rows).T
    print(table.round(4).to_string())
    mine, base = table.loc["your rule", "tier score"], table.loc["default rule", "tier score"]
    verdict = ("your rule scores higher than the default" if mine > base + 1e-9 else
               "your rule scores the same as the default" if abs(mine - base) <= 1e-9 else
               "the default rule scores higher")
    print(f"On {len(users)} held-out users: {verdict} (tier score {mine:.4f} against {base:.4f}; one number each, "
          "no interval: a small gap may be noise).")
    return res


# ---- 05_cold_start -------------------------------------------------------------------------------------
def cases_blend() -> list[Case]:
    from ..profiles import blend_profiles

    rng = _rng(7)
    h, d = _scaled(rng, 4, 5), _scaled(rng, 4, 5)
    h[0] = 0.0  # a brand-new user: no history yet
    out = []
    for label, n, k in [("n = 0, 1, 5, 50 interactions, k = 5", [0, 1, 5, 50], 5.0),
                        ("n = 0, 2, 2, 10 interactions, k = 2", [0, 2, 2, 10], 2.0)]:
        n = np.asarray(n, dtype=float)
        out.append(Case(label, (h, d, n, k), _unit(blend_profiles(h, d, n, k))))
    return out


def _same_directions(got, expected):
    g = as_array(got).astype(float)
    if g.shape != expected.shape:
        return f"shape {g.shape}, expected {expected.shape}"
    norms = np.linalg.norm(g, axis=1)
    if not np.isfinite(g).all() or (norms == 0).any():
        return "a row is zero or not finite"
    cos = (g / norms[:, None] * expected).sum(1)
    r = int(cos.argmin())
    return None if cos[r] > 1 - 1e-5 else f"row {r} points elsewhere (cosine {cos[r]:.4f} with the right profile)"


def check_blend(fn, name: str = "blend") -> Result:
    """``fn(history, description, n_interactions, k)``: w = n / (n + k) of the unit history, the rest description."""
    return check_code(name, fn, cases_blend(), _same_directions,
                      hint="normalise both inputs first; with 0 interactions the description is all you have, and "
                           "history counts more as it grows")


def cases_empty_pages() -> list[Case]:
    from ..coldstart import threshold_counts

    rng = _rng(8)
    out = []
    for label, n_users, t in [("6 users, 30 items, threshold 0.5", 6, 0.5), ("6 users, 30 items, threshold 0.3", 6, 0.3),
                              ("4 users, 30 items, threshold 0.99", 4, 0.99)]:
        u, v = _scaled(rng, n_users, 4), _scaled(rng, 30, 4)
        out.append(Case(label, (u, v, t), int((threshold_counts(u, v, t) == 0).sum())))
    return out


def check_empty_pages(fn, name: str = "empty_pages") -> Result:
    """``fn(user_vecs, item_vecs, threshold)``: how many users get no item with cosine ≥ threshold."""
    return check_code(name, fn, cases_empty_pages(), _number(0),
                      hint="cosines, not dot products; a page is empty when no item reaches the threshold")


# ---- 06_evaluation -------------------------------------------------------------------------------------
def _ndcg_ref(rec, rel, k):
    from ..metrics import ndcg_at_k

    if not rel:
        return float("nan")
    seen, clean = set(), []
    for j, i in enumerate(rec):  # a repeat earns nothing at its later positions, but keeps its slot
        clean.append(i if i not in seen else ("dup", j))
        seen.add(i)
    return ndcg_at_k([clean], [set(rel)], k).value


def cases_ndcg() -> list[Case]:
    out = []
    for label, rec, rel, k in [("hits at ranks 2 and 4", list("abcd"), set("bdz"), 4),
                               ("more relevant items than k", list("abcde"), set("aceghij"), 3),
                               ("a repeated item", list("aabc"), set("ab"), 4),
                               ("an empty list", [], set("ab"), 5),
                               ("no relevant items", list("abc"), set(), 3),
                               ("a list shorter than k", list("xa"), set("a"), 10)]:
        out.append(Case(label, (rec, rel, k), _ndcg_ref(rec, rel, k)))
    return out


def check_ndcg(fn, name: str = "ndcg_at_k") -> Result:
    """``fn(recommended, relevant, k)`` for one user: NDCG@k with binary gains (a repeat earns nothing; no relevant
    items: nan)."""
    return check_code(name, fn, cases_ndcg(), _number(1e-9),
                      hint="a hit at rank r earns 1 / log2(r + 1); the ideal list puts min(|relevant|, k) hits first; "
                           "an item counts once")


def cases_paired_bootstrap() -> list[Case]:
    from ..evaluate import paired_ci

    rng = _rng(9)
    a = rng.uniform(0, 1, 300)
    b = a - 0.02 + rng.normal(0, 0.01, 300)  # strongly paired: the users' spread cancels
    c = rng.uniform(0, 1, 80)
    out = []
    for label, x, y in [("300 users, a close to b", a, b), ("80 users, a equals b", c, c.copy()),
                        ("80 users, unrelated", c, rng.uniform(0, 1, 80))]:
        out.append(Case(label, (x, y, 2000, 0), paired_ci(x, y, n_boot=4000, seed=1)))
    return out


def _interval_close(got, expected):
    try:
        d, lo, hi = (float(v) for v in got)
    except (TypeError, ValueError):
        return "expected (diff, lo, hi), three numbers"
    e_d, e_lo, e_hi = expected
    width = max(e_hi - e_lo, 1e-12)
    if not math.isclose(d, e_d, abs_tol=1e-9):
        return f"the mean difference should be {e_d:.5f}"
    if not (abs(lo - e_lo) <= 0.2 * width + 1e-12 and abs(hi - e_hi) <= 0.2 * width + 1e-12):
        return f"interval [{lo:.5f}, {hi:.5f}] is not the paired 95% interval (width {hi - lo:.5f}, expected about {width:.5f})"
    return None


def check_paired_bootstrap(fn, name: str = "paired_bootstrap") -> Result:
    """``fn(a, b, n_boot, seed)`` → ``(diff, lo, hi)``: mean of a − b and its paired 95% percentile interval."""
    return check_code(name, fn, cases_paired_bootstrap(), _interval_close,
                      hint="draw users with replacement and score both methods on the same draw; the interval is the "
                           "2.5 and 97.5 percentiles of the resampled mean differences")
