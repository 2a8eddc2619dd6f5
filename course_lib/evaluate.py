"""Running recommenders over a split and scoring their lists: tidy tables, per-segment breakdowns, intervals.

Not the metrics themselves (see ``metrics.py``) and not the models (see ``baselines.py``). The default split is
temporal: a random split lets a model train on a user's future and inflates every number.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import constants as C
from .metrics import RANKING_METRICS, auc_per_user, catalogue_coverage, intra_list_diversity, novelty, recall_at_k
from .profiles import history_profiles, item_index, seen_items
from .rank import top_k, top_k_scores
from .tiers import SEGMENTS, user_segments  # noqa: F401  (re-exported: segments are defined with the tiers)

def item_buckets(train: pd.DataFrame, items: pd.DataFrame, head_share: float = 0.2) -> np.ndarray:
    """Per item: 'head' (the most popular items holding ``head_share`` of the catalogue), 'tail' (the rest with any
    training interaction), 'unseen' (none)."""
    counts = train.groupby(C.ITEM).size().reindex(items[C.ITEM], fill_value=0).to_numpy()
    order = np.argsort(-counts, kind="stable")
    out = np.where(counts > 0, "tail", "unseen").astype(object)
    out[order[: int(round(head_share * len(items)))]] = "head"
    out[counts == 0] = "unseen"
    return out


def bootstrap_ci(values, n_boot: int = 300, seed: int = C.SEED, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean, resampling users with replacement."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


@dataclass
class Evaluation:
    """Per-user results of several methods on one split, and the tables made from them."""

    per_user: pd.DataFrame  # one row per (method, user): segment and every metric
    beyond: pd.DataFrame  # one row per method: coverage, diversity, novelty
    by_bucket: pd.DataFrame  # recall@k restricted to relevant items of each item-popularity bucket
    k: int
    lists: dict = field(default_factory=dict)  # method -> (users, item indices)

    def table(self, metrics=None, n_boot: int = 300, seed: int = C.SEED) -> pd.DataFrame:
        """Mean of each metric per method, with a bootstrap 95% interval as ``[lo, hi]`` columns."""
        metrics = metrics or [c for c in self.per_user.columns if c not in ("method", "user", "segment")]
        rows = []
        for method, g in self.per_user.groupby("method", sort=False):
            row = {"method": method, "users": len(g)}
            for m in metrics:
                v = g[m].dropna()
                row[m] = v.mean()
                row[f"{m} lo"], row[f"{m} hi"] = bootstrap_ci(v, n_boot, seed)
            rows.append(row)
        return pd.DataFrame(rows).set_index("method")

    def by_segment(self, metric: str = "ndcg", n_boot: int = 300, seed: int = C.SEED) -> pd.DataFrame:
        """``metric`` per method and user segment, formatted ``mean [lo, hi]``, with user counts."""
        out = {}
        for (method, seg), g in self.per_user.groupby(["method", "segment"], sort=False):
            v = g[metric].dropna()
            if len(v) == 0:
                continue
            lo, hi = bootstrap_ci(v, n_boot, seed)
            out.setdefault(method, {})[seg] = f"{v.mean():.3f} [{lo:.3f}, {hi:.3f}]"
        table = pd.DataFrame(out).T
        table = table[[s for s in SEGMENTS if s in table.columns]]
        counts = self.per_user.drop_duplicates("user")["segment"].value_counts()
        table.columns = [f"{s} (n={counts.get(s, 0)})" for s in table.columns]
        return table


def evaluate(methods: dict, train: pd.DataFrame, test: pd.DataFrame, items: pd.DataFrame, k: int = 10,
             item_vecs: np.ndarray | None = None, thresholds=(5, 20), with_auc: bool = True) -> Evaluation:
    """Fit each recommender on ``train``, rank for every test user (seen items hidden), score on ``test``.

    ``item_vecs`` (content vectors) is used for intra-list diversity. Returns an :class:`Evaluation`.
    """
    if not methods:
        raise ValueError("methods is empty: pass e.g. {'popularity': Popularity(items)}")
    index = item_index(items)
    unknown = set(test[C.ITEM]) - set(index)
    if unknown:
        raise ValueError(f"test has item ids not in items, e.g. {sorted(unknown)[:3]}")
    users = sorted(test[C.USER].unique())
    if not users:
        raise ValueError("test split is empty")
    segments = user_segments(train, users, thresholds)
    relevant = test.groupby(C.USER)[C.ITEM].agg(lambda s: {index[i] for i in s})
    rel = [relevant[u] for u in users]
    seen = seen_items(train, index, users)
    buckets = item_buckets(train, items)
    pop = train[[C.USER, C.ITEM]].drop_duplicates().groupby(C.ITEM).size().reindex(items[C.ITEM], fill_value=0).to_numpy()
    n_train_users = train[C.USER].nunique()
    per_user, beyond, by_bucket, lists = [], [], [], {}
    for name, method in methods.items():
        method.fit(train)
        scores = method.scores(users)
        _, idx = top_k_scores(scores, k, exclude=seen)
        recs = [list(r) for r in idx]
        lists[name] = (users, idx)
        cols = {"method": name, "user": users, "segment": segments.reindex(users).to_numpy()}
        for metric, fn in RANKING_METRICS.items():
            cols[metric] = fn(recs, rel, k).per_user
        if with_auc:
            cols["auc"] = auc_per_user(scores, rel, exclude=seen)
        per_user.append(pd.DataFrame(cols))
        beyond.append({"method": name, "coverage": catalogue_coverage(recs, len(items)),
                       "diversity (ILD)": intra_list_diversity(recs, item_vecs) if item_vecs is not None else np.nan,
                       "novelty (bits)": novelty(recs, pop, n_train_users)})
        row = {"method": name}
        for b in ("head", "tail", "unseen"):
            in_b = [{i for i in r if buckets[i] == b} for r in rel]
            if any(in_b):
                row[f"recall@{k} on {b} items"] = recall_at_k(recs, in_b, k).value
        by_bucket.append(row)
    return Evaluation(pd.concat(per_user, ignore_index=True), pd.DataFrame(beyond).set_index("method"),
                      pd.DataFrame(by_bucket).set_index("method"), k, lists)


def tune(make, grid, train: pd.DataFrame, valid: pd.DataFrame, items: pd.DataFrame, k: int = 10,
         metric: str = "ndcg") -> tuple[pd.DataFrame, object]:
    """Evaluate ``make(value)`` for each value of ``grid`` on a validation split; return (table, best value)."""
    if metric not in RANKING_METRICS:
        raise ValueError(f"metric must be one of {tuple(RANKING_METRICS)}, got {metric!r}")
    rows = []
    for value in grid:
        ev = evaluate({str(value): make(value)}, train, valid, items, k, with_auc=False)
        rows.append({"value": value, metric: ev.per_user[metric].mean()})
    table = pd.DataFrame(rows)
    return table, table.loc[table[metric].idxmax(), "value"]


def profile_recall(train: pd.DataFrame, test: pd.DataFrame, items: pd.DataFrame, item_vecs: np.ndarray,
                   k: int = 10, half_life_days: float | None = None):
    """recall@k of a content recommender: profile = mean of the user's train items, seen items hidden.

    Scored on users who have both train history and test items; returns a :class:`~course_lib.metrics.MetricResult`.
    """
    if len(items) != len(item_vecs):
        raise ValueError(f"got {len(item_vecs)} item vectors for {len(items)} items")
    index = item_index(items)
    users = sorted(set(test[C.USER]) & set(train[C.USER]))
    if not users:
        raise ValueError("no user has both train history and test items; check the split")
    profiles, _ = history_profiles(train, item_vecs, index, users=users, half_life_days=half_life_days)
    _, idx = top_k(profiles, item_vecs, k, exclude=seen_items(train, index, users))
    relevant = test.groupby(C.USER)[C.ITEM].agg(lambda s: {index[i] for i in s})
    return recall_at_k([list(r) for r in idx], [relevant[u] for u in users], k)


def evaluation_to_dict(ev: Evaluation, metrics=("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc"),
                       n_boot: int = 300, seed: int = C.SEED) -> dict:
    """A JSON-ready summary: per method, each metric's mean and 95% interval overall and per segment, plus
    coverage, diversity, novelty and per-popularity-bucket recall. Non-finite numbers become ``None``."""
    def num(x):
        x = float(x)
        return x if np.isfinite(x) else None

    out = {}
    pu = ev.per_user
    for method, g in pu.groupby("method", sort=False):
        entry = {"users": int(len(g)), "overall": {}, "segments": {}}
        for m in metrics:
            v = g[m].dropna()
            lo, hi = bootstrap_ci(v, n_boot, seed) if len(v) else (np.nan, np.nan)
            entry["overall"][m] = {"mean": num(v.mean()) if len(v) else None, "lo": num(lo), "hi": num(hi),
                                   "users": int(len(v))}
        for seg, gs in g.groupby("segment", sort=False):
            seg_entry = {"users": int(len(gs))}
            for m in metrics:
                v = gs[m].dropna()
                lo, hi = bootstrap_ci(v, n_boot, seed) if len(v) else (np.nan, np.nan)
                seg_entry[m] = {"mean": num(v.mean()) if len(v) else None, "lo": num(lo), "hi": num(hi)}
            entry["segments"][seg] = seg_entry
        entry["beyond"] = {k: num(v) for k, v in ev.beyond.loc[method].items()}
        entry["by_item_popularity"] = {k: num(v) for k, v in ev.by_bucket.loc[method].items()}
        out[method] = entry
    return {"k": ev.k, "metrics": list(metrics), "segments": [s for s in SEGMENTS if s in set(pu["segment"])],
            "methods": out}


def write_json(path, obj) -> None:
    """Write JSON atomically (a temporary file renamed into place): a crash never leaves half a file."""
    import json
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def headlines(table: pd.DataFrame, ev: Evaluation, metric: str = "ndcg") -> list[str]:
    """Plain sentences that state what a results table shows, computed from it (so a report with other parameters
    never carries a stale story): the leader and its ties, what beats popularity, and beyond-accuracy leaders."""
    lo, hi = f"{metric} lo", f"{metric} hi"
    best = table[metric].idxmax()
    ties = [m for m in table.index if m != best and table.loc[m, hi] >= table.loc[best, lo]]
    out = [f"Best {metric}@{ev.k}: **{best}** ({table.loc[best, metric]:.4f}, 95% interval "
           f"{table.loc[best, lo]:.4f}–{table.loc[best, hi]:.4f})"
           + (f"; statistically tied with {', '.join(ties)}." if ties else "; no other method's interval reaches it.")]
    if "popularity" in table.index:
        above = [m for m in table.index if table.loc[m, lo] > table.loc["popularity", hi]]
        out.append(f"Clearly above popularity (intervals apart): {', '.join(above) if above else 'none'}.")
    cov = ev.beyond["coverage"].drop(labels=["random"], errors="ignore")
    out.append(f"Widest catalogue coverage (random aside): **{cov.idxmax()}** ({cov.max():.0%} of items); "
               f"narrowest: {cov.idxmin()} ({cov.min():.0%}).")
    unseen = [c for c in ev.by_bucket.columns if c.endswith("unseen items")]
    if unseen:
        reach = ev.by_bucket.index[ev.by_bucket[unseen[0]].fillna(0) > 0].tolist()
        out.append("Methods that recommend items with no training interactions at all: "
                   + (", ".join(reach) if reach else "none") + ".")
    return out
