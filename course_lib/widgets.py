"""Interactive explorers for JupyterLab, each a thin wrapper over a tested function that also runs headless.

Not logic: every widget calls a plain function (``explore_user``) that the tests and headless runs call directly.
"""
from __future__ import annotations

import pandas as pd

from . import constants as C
from .tiers import TierConfig, discover, multi_interest_lists, name_interests, with_settings

HEADLESS_ENV = "COURSE_HEADLESS"  # set by course_lib.report for papermill/nbclient runs


def live() -> bool:
    """True in a live kernel where widgets can render; False in headless runs (reports, committed outputs)."""
    import os

    return os.environ.get(HEADLESS_ENV, "0") != "1"


def explore_user(ds, catalogue, user, cfg: TierConfig, label_words: dict, encoder, k: int = 8, show: bool = True):
    """Discover, tier and name one user's interests, draw the timeline, and list recommendations per tier.

    Returns ``(figure, tiers table, merged list table)``; with ``show=True`` (notebooks) also displays them.
    """
    from .plots import plot_interest_timeline
    from .profiles import seen_items

    now = ds.interactions[C.TIMESTAMP].max()
    hist = ds.interactions[ds.interactions[C.USER] == user]
    ui = discover(hist, catalogue, cfg, now=now, user=user)
    name_interests({user: ui}, label_words, encoder)
    fig = plot_interest_timeline(ds, user, ui)
    lists = multi_interest_lists({user: ui}, [user], catalogue, k, seen_items(ds.interactions, catalogue, [user]))
    rows = ds.items.iloc[[i for i in lists[0] if i >= 0]]
    # which interest put each item there: the nearest centroid
    import numpy as np

    cents = np.stack([it.centroid for it in ui.interests])
    v = catalogue.vectors[[i for i in lists[0] if i >= 0]]
    owner = np.argmax(v @ cents.T, axis=1)
    merged = pd.DataFrame({"rank": range(1, len(rows) + 1), C.ITEM: rows[C.ITEM].to_numpy(), C.TITLE: rows[C.TITLE].to_numpy(),
                           C.SUBCATEGORY: rows[C.SUBCATEGORY].to_numpy() if C.SUBCATEGORY in rows else "",
                           "from interest": [f"{ui.interests[o].name} ({ui.interests[o].tier})" for o in owner]})
    table = ui.table()
    if show:
        from IPython.display import display

        display(fig, table, merged)
        import matplotlib.pyplot as plt

        plt.close(fig)
    return fig, table, merged


def tier_explorer(ds, catalogue, users: list, cfg: TierConfig, label_words: dict, encoder, k: int = 8):
    """A user picker, a half-life slider and a distance-threshold slider around :func:`explore_user`.

    Needs a live kernel (JupyterLab); headless runs call ``explore_user`` directly instead.
    """
    import ipywidgets as W

    def update(user, half_life_days, distance_threshold):
        explore_user(ds, catalogue, user, with_settings(cfg, half_life_days=half_life_days,
                                                                 distance_threshold=distance_threshold),
                     label_words, encoder, k)

    return W.interactive(
        update,
        user=W.Dropdown(options=users, value=users[0], description="user"),
        half_life_days=W.FloatSlider(value=cfg.half_life_days, min=7, max=180, step=7, description="half-life (d)"),
        distance_threshold=W.FloatSlider(value=cfg.distance_threshold, min=0.3, max=2.0, step=0.1, description="threshold"),
    )
