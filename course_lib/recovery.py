"""Tiering judged by a ground truth: interests found against true ones, tiers recovered, lists that serve each tier.

Not the tier rules (see ``tiers``) and not the ranking protocol (see ``evaluate``): this module needs a dataset whose
true interests are known (the shop's ``truth``), uses that truth only to score, and fits rules on validation users
so that the users it reports on were never used to choose them.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from . import constants as C
from .catalogue import Catalogue
from .checks import integer, number
from .segments import SEGMENTS
from .tiers import DISCOVERY_KNOBS, TIER_ORDER, TierConfig, retier, with_settings

TRUE_TIERS = ("core", "secondary", "emerging", "fading")
EXPLORATION = "none (exploration)"


def split_users(users, frac: float = 0.5, seed: int = C.SEED) -> tuple[list, list]:
    """``(validation, held_out)``: a seeded random split of ``users`` (``frac`` of them for validation), each sorted.

    Fit every knob on the validation users; report on the held-out ones, which no choice has seen. The split is a
    permutation of the sorted users, so it depends on which users are given: split the same set you fitted on.
    """
    frac = number("frac", frac, above=0, below=1)
    users = sorted(pd.unique(pd.Series(list(users))), key=str)
    if len(users) < 2:
        raise ValueError(f"need at least 2 users to split, got {len(users)}")
    perm = np.random.default_rng(integer("seed", seed, min=0)).permutation(len(users))
    n_val = min(max(1, int(round(frac * len(users)))), len(users) - 1)
    return sorted(users[i] for i in perm[:n_val]), sorted(users[i] for i in perm[n_val:])


def majority_label(ui, item_labels) -> list:
    """The most common item label (e.g. subcategory) of each interest's events (ties: the first label in sort order)."""
    names, codes = np.unique(np.asarray(item_labels), return_inverse=True)
    return _majority(ui, names, codes)


def _majority(ui, names: np.ndarray, codes: np.ndarray) -> list:
    return [names[int(np.argmax(np.bincount(codes[it.items])))] for it in ui.interests]


def _true_interests(truth: pd.DataFrame) -> dict:
    """``user -> {interest: tier}`` from the truth table."""
    for col in (C.USER, C.INTEREST, C.TIER):
        if col not in truth.columns:
            raise ValueError(f"truth must have columns {[C.USER, C.INTEREST, C.TIER]}; found {list(truth.columns)}")
    out: dict = {}
    for u, lab, t in zip(truth[C.USER].tolist(), truth[C.INTEREST].tolist(), truth[C.TIER].tolist()):
        out.setdefault(u, {})[lab] = t
    return out


def recovery(tiered: dict, truth: pd.DataFrame, item_labels, segments: pd.Series | None = None,
             users=None) -> dict:
    """Discovered interests and tiers against the truth, for ``users`` (default: every user in ``tiered``).

    Each discovered interest is matched to a true interest by the majority label of its events; when several match
    one true interest, the strongest tier counts. Returns ``{"pairs", "confusion", "summary", "counts"}``: one row
    per (user, label) with the number of the user's events carrying that label; the tier confusion matrix; per segment the core found as core, emerging and fading precision
    and recall, and the mean |found − true| number of interests (found = not peripheral); per user the counts.
    """
    names, codes = np.unique(np.asarray(item_labels), return_inverse=True)
    true_by_user = _true_interests(truth)
    users = list(tiered) if users is None else [u for u in users if u in tiered]
    rows, counts = [], []
    for u in users:
        ui = tiered[u]
        if not ui.interests or u not in true_by_user:
            continue
        found: dict = {}
        for it, lab in sorted(zip(ui.interests, _majority(ui, names, codes)),
                              key=lambda p: TIER_ORDER.index(p[0].tier)):
            found.setdefault(lab, it.tier)
        true_u = true_by_user[u]
        n_events = np.bincount(codes[np.concatenate([it.items for it in ui.interests])], minlength=len(names))
        events = dict(zip(names, n_events))
        rows += [{C.USER: u, "label": lab, "true": t, "found": found.get(lab, "missed"), "events": int(events.get(lab, 0))}
                 for lab, t in true_u.items()]
        rows += [{C.USER: u, "label": lab, "true": EXPLORATION, "found": t, "events": int(events.get(lab, 0))}
                 for lab, t in found.items() if lab not in true_u]
        counts.append({C.USER: u, "found": sum(it.tier != "peripheral" for it in ui.interests), "true": len(true_u)})
    if not rows:
        raise ValueError("no user has both discovered interests and ground truth")
    pairs, counts = pd.DataFrame(rows), pd.DataFrame(counts)
    counts["|found − true|"] = (counts["found"] - counts["true"]).abs()
    if segments is not None:
        pairs["segment"] = pairs[C.USER].map(segments)
        counts["segment"] = counts[C.USER].map(segments)
    return {"pairs": pairs, "confusion": pd.crosstab(pairs["true"], pairs["found"]),
            "summary": _summary(pairs, counts), "counts": counts}


def _stats(p: pd.DataFrame, c: pd.DataFrame) -> dict:
    core = p[p["true"] == "core"]
    out = {"users": int(p[C.USER].nunique()),
           "core found as core": (core["found"] == "core").mean() if len(core) else np.nan}
    for tier in ("emerging", "fading"):
        pred, actual = p[p["found"] == tier], p[p["true"] == tier]
        out[f"{tier} precision"] = (pred["true"] == tier).mean() if len(pred) else np.nan
        out[f"{tier} recall"] = (actual["found"] == tier).mean() if len(actual) else np.nan
    out["|found − true| interests"] = c["|found − true|"].mean() if len(c) else np.nan
    return out


def _summary(pairs: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    rows = {"all": _stats(pairs, counts)}
    if "segment" in pairs:
        for seg in [s for s in SEGMENTS if s in set(pairs["segment"])]:
            rows[seg] = _stats(pairs[pairs["segment"] == seg], counts[counts["segment"] == seg])
    return pd.DataFrame(rows).T


def ceilings(rec: dict, min_events: int = 2) -> pd.DataFrame:
    """Why a recall is what it is: per true tier, how many true interests left enough events in the history to be
    found at all (``min_events`` for emerging and fading, which need a trend; 1 for the core), the recall, and the
    recall among those that did. The share that did is a ceiling no rule over events can pass.
    """
    min_events = integer("min_events", min_events, min=1)
    p = rec["pairs"]
    rows = []
    parts = [("core", "all", p)]
    if "segment" in p:
        parts.append(("core", "tail", p[p["segment"] == "tail"]))
    parts += [("emerging", "all", p), ("fading", "all", p)]
    for tier, who, q in parts:
        q = q[q["true"] == tier]
        need = 1 if tier == "core" else min_events
        enough = q[q["events"] >= need]
        rows.append({"true tier": tier, "users": who, "true interests": len(q),
                     "with enough events": len(enough), "ceiling": len(enough) / len(q) if len(q) else np.nan,
                     "recall": (q["found"] == tier).mean() if len(q) else np.nan,
                     "recall among those": (enough["found"] == tier).mean() if len(enough) else np.nan,
                     "events needed": need})
    return pd.DataFrame(rows)


def f1(precision: float, recall: float) -> float:
    return 0.0 if not (precision > 0 and recall > 0) else 2 * precision * recall / (precision + recall)


def tier_score(summary_row) -> float:
    """One number to fit tier rules by: the mean of core found as core, emerging F1 and fading F1."""
    s = summary_row
    return float(np.mean([s["core found as core"], f1(s["emerging precision"], s["emerging recall"]),
                          f1(s["fading precision"], s["fading recall"])]))


def fit_tier_rules(tiered: dict, truth: pd.DataFrame, item_labels, grid: dict, cfg: TierConfig = TierConfig()):
    """Try every combination of ``grid`` (``{"half_life_days": [30, 60], "emerging_trend": [1.2, 1.5], ...}``) on the
    users of ``tiered`` (discover them on *validation* users), re-tiering the same interests each time.

    Returns ``(table, best)``: one row per combination with the recovery summary and the score
    (:func:`tier_score`), best first; and the best ``TierConfig``. Invalid combinations (e.g. a fading trend above
    the emerging one) are skipped and counted in ``table.attrs["skipped"]``.
    """
    if not grid:
        raise ValueError("grid is empty: give at least one setting to try, e.g. {'half_life_days': [30, 60, 90]}")
    bad = sorted(set(grid) & set(DISCOVERY_KNOBS))
    if bad:
        raise ValueError(f"{bad} change which events form an interest: sweep them with discover_all, not here")
    names = list(grid)
    rows, skipped = [], 0
    for values in itertools.product(*(list(grid[n]) for n in names)):
        try:
            trial = with_settings(cfg, **dict(zip(names, values)))
        except ValueError:
            skipped += 1
            continue
        s = recovery(retier(tiered, trial), truth, item_labels)["summary"].loc["all"]
        rows.append({**dict(zip(names, values)), **s.drop("users").to_dict(), "score": tier_score(s)})
    if not rows:
        raise ValueError("every combination of the grid is invalid; check the ranges (fading_trend < emerging_trend)")
    table = pd.DataFrame(rows).sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    table.attrs["skipped"] = skipped
    best = with_settings(cfg, **{n: _plain(table.loc[0, n]) for n in names})
    return table, best


# ---------------------------------------------------------------------------------------------------------
# lists judged by the truth: recall of each true tier's items, interest coverage
# ---------------------------------------------------------------------------------------------------------
def _plain(value):
    """A NumPy scalar as the Python number it holds (so a fitted TierConfig prints and compares cleanly)."""
    return value.item() if hasattr(value, "item") else value


def truth_metrics(lists, users, train: pd.DataFrame, test: pd.DataFrame, catalogue, truth: pd.DataFrame,
                  item_labels, k: int | None = None) -> pd.DataFrame:
    """Per user: recall@k of the test items from each of the user's *true* tiers, and interest coverage.

    "emerging-interest recall" = the share of the user's relevant test items (new to them: the discovery task) whose
    label is one of their true emerging interests that the list holds; nan for users with no such item.
    "interest coverage" = the share of the user's true interests that at least one listed item belongs to.
    """
    cat = Catalogue.from_items(catalogue)
    item_labels = np.asarray(item_labels)
    if len(item_labels) != len(cat):
        raise ValueError(f"item_labels must have one label per catalogue item ({len(cat)}), got {len(item_labels)}")
    lists = np.asarray(lists)
    k = lists.shape[1] if k is None else integer("k", k, min=1)
    seen = train.assign(_r=cat.rows(train[C.ITEM], what="train item_id")).groupby(C.USER)["_r"].agg(set)
    tested = test.assign(_r=cat.rows(test[C.ITEM], what="test item_id")).groupby(C.USER)["_r"].agg(set)
    true_by_user = _true_interests(truth)
    rows = []
    for u, row in zip(users, lists):
        listed = [int(i) for i in row[:k] if i >= 0]
        true_u = true_by_user.get(u, {})
        out = {"user": u}
        rel = tested.get(u, set()) - seen.get(u, set())
        for tier in TRUE_TIERS:
            mine = {i for i in rel if true_u.get(item_labels[i]) == tier}
            out[f"{tier}-interest recall"] = len(mine & set(listed)) / len(mine) if mine else np.nan
        out["interest coverage"] = (len({item_labels[i] for i in listed} & set(true_u)) / len(true_u)
                                    if true_u else np.nan)
        rows.append(out)
    return pd.DataFrame(rows)


def add_truth_metrics(ev, train: pd.DataFrame, test: pd.DataFrame, catalogue, truth: pd.DataFrame, item_labels):
    """Add :func:`truth_metrics` columns to ``ev.per_user`` (in place, for every method of ``ev``), so that
    ``ev.table``/``ev.compare`` report and pair them like any other metric. Returns ``ev``."""
    parts = []
    for method, (users, lists) in ev.lists.items():
        parts.append(truth_metrics(lists, users, train, test, catalogue, truth, item_labels, ev.k)
                     .assign(method=method))
    extra = pd.concat(parts, ignore_index=True)
    keep = [c for c in ev.per_user.columns if c not in extra.columns or c in ("method", "user")]
    ev.per_user = ev.per_user[keep].merge(extra, on=["method", "user"], how="left")
    return ev
