"""Interactive explorers for JupyterLab, each a thin wrapper over a tested function that also runs headless.

Not logic: every widget calls a plain function (``explore_user``) that the tests and headless runs call directly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import constants as C
from .serving import SlotPolicy, multi_interest_lists
from .tiers import TierConfig, discover, name_interests, with_settings

HEADLESS_ENV = "COURSE_HEADLESS"  # set by course_lib.report for papermill/nbclient runs
HALF_LIFE_RANGE = (15.0, 180.0, 15.0)  # slider min, max, step (days): 30, 60, 90 ... are all on it
THRESHOLD_RANGE = (0.3, 0.9, 0.05)  # cosine distance: 0.3 splits finely, 0.9 lumps almost everything together


def live() -> bool:
    """True in a live kernel where widgets can render; False in headless runs (reports, committed outputs)."""
    import os

    return os.environ.get(HEADLESS_ENV, "0") != "1"


def showcase_users(tiered: dict, n: int = 50, min_events: int = 20, prefer=()) -> list:
    """Users whose tiers show the idea, best first: those in ``prefer`` (e.g. users whose tiers match a known truth),
    then an emerging interest, a core clearly bigger than the next interest, a fading one; ``n`` of them, each with
    at least ``min_events`` events."""
    prefer = set(prefer)

    def score(u):
        ints = [it for it in tiered[u].interests if it.tier != "peripheral"]
        tiers = {it.tier for it in ints}
        sizes = sorted((it.events for it in ints), reverse=True) + [0]
        clear_core = sizes[0] >= 1.5 * sizes[1]
        return (u in prefer, "emerging" in tiers, clear_core, "fading" in tiers, -abs(len(ints) - 4))

    pool = [u for u, ui in tiered.items() if ui.n_events >= min_events]
    return sorted(pool, key=score, reverse=True)[:n]


def explore_user(ds, catalogue, user, cfg: TierConfig, label_words: dict, encoder, k: int = 8,
                 policy: SlotPolicy = SlotPolicy(), descriptions: dict | None = None, show: bool = True):
    """Discover, tier and name one user's interests, draw the timeline, and list what each tier puts in a list.

    ``descriptions``: ``user -> vector`` of self-descriptions (the core's tie-breaker), optional.
    Returns ``(figure, tiers table, merged list table)``; with ``show=True`` (notebooks) also displays them.
    """
    from .plots import plot_interest_timeline
    from .profiles import history_profiles, seen_items
    from .vectors import unit_rows

    now = ds.interactions[C.TIMESTAMP].max()
    hist = ds.interactions[ds.interactions[C.USER] == user]
    ui = discover(hist, catalogue, cfg, now=now, user=user, description=(descriptions or {}).get(user))
    name_interests({user: ui}, label_words, encoder)
    fig = plot_interest_timeline(ds, user, ui)
    prof, _ = history_profiles(hist, catalogue, users=[user], half_life_days=cfg.half_life_days, now=now)
    order = unit_rows(prof) @ catalogue.vectors.T
    lists = multi_interest_lists({user: ui}, [user], catalogue, k, seen_items(ds.interactions, catalogue, [user]),
                                 policy, order_by=order)
    chosen = [i for i in lists[0] if i >= 0]
    rows = ds.items.iloc[chosen]
    cents = np.stack([it.centroid for it in ui.interests])
    owner = np.argmax(np.asarray(catalogue.vectors[chosen]) @ cents.T, axis=1)  # the interest nearest each item
    merged = pd.DataFrame({"rank": range(1, len(rows) + 1), C.ITEM: rows[C.ITEM].to_numpy(),
                           C.TITLE: rows[C.TITLE].to_numpy(),
                           C.SUBCATEGORY: rows[C.SUBCATEGORY].to_numpy() if C.SUBCATEGORY in rows else "",
                           "from interest": [f"{ui.interests[o].name} ({ui.interests[o].tier})" for o in owner]})
    table = ui.table()
    if show:
        import matplotlib.pyplot as plt
        from IPython.display import display

        display(fig, table, merged)
        plt.close(fig)
    return fig, table, merged


def tier_explorer(ds, catalogue, users: list, cfg: TierConfig, label_words: dict, encoder, k: int = 8,
                  policy: SlotPolicy = SlotPolicy(), descriptions: dict | None = None):
    """A user picker, a half-life slider (it moves trends, so emerging and fading tiers, and importance shares) and
    a distance-threshold slider (it moves how many interests a history splits into) around :func:`explore_user`.

    Needs a live kernel (JupyterLab); headless runs call ``explore_user`` directly instead.
    """
    import ipywidgets as W

    def update(user, half_life_days, distance_threshold):
        explore_user(ds, catalogue, user, with_settings(cfg, half_life_days=half_life_days,
                                                        distance_threshold=distance_threshold),
                     label_words, encoder, k, policy, descriptions)

    lo, hi, step = HALF_LIFE_RANGE
    tlo, thi, tstep = THRESHOLD_RANGE
    return W.interactive(
        update,
        user=W.Dropdown(options=users, value=users[0], description="user"),
        half_life_days=W.FloatSlider(value=cfg.half_life_days, min=lo, max=hi, step=step, description="half-life (d)"),
        distance_threshold=W.FloatSlider(value=cfg.distance_threshold, min=tlo, max=thi, step=tstep,
                                         description="threshold"),
    )


def control_effects(ds, catalogue, users, cfg: TierConfig, descriptions: dict | None = None) -> pd.DataFrame:
    """What the explorer's sliders change, per offered user: the number of non-peripheral interests at each end of
    the threshold range, and whether any tier changes across the half-life range (the default elsewhere)."""
    now = ds.interactions[C.TIMESTAMP].max()
    rows = []
    for u in users:
        hist = ds.interactions[ds.interactions[C.USER] == u]

        def run(**changes):
            return discover(hist, catalogue, with_settings(cfg, **changes), now=now, user=u,
                            description=(descriptions or {}).get(u))

        count = lambda ui: sum(it.tier != "peripheral" for it in ui.interests)  # noqa: E731
        tiers = lambda ui: sorted((tuple(it.members[:1]), it.tier) for it in ui.interests)  # noqa: E731
        lo, hi = run(distance_threshold=THRESHOLD_RANGE[0]), run(distance_threshold=THRESHOLD_RANGE[1])
        short, long_ = run(half_life_days=HALF_LIFE_RANGE[0]), run(half_life_days=HALF_LIFE_RANGE[1])
        rows.append({C.USER: u, "interests at low threshold": count(lo), "interests at high threshold": count(hi),
                     "tiers differ across half-lives": tiers(short) != tiers(long_)})
    return pd.DataFrame(rows)
