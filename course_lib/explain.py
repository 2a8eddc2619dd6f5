"""Explanations from evidence (透明性): why a recommender put an item on a user's list, in numbers, then in words.

Not a language model (see ``llm.py``, which may rephrase these explanations and is checked against them): every claim
here is a term of the score itself. For the methods the course builds, the score is a sum over the user's history:

- content (cosine with a weighted mean profile): s(u, i) = Σ_j (w_j / W) (v_j · v_i) / ‖p_u‖ exactly;
- item-kNN: s(u, i) = Σ_{j ∈ history} sim(j, i);  EASE: s(u, i) = Σ_{j ∈ history} B[j, i];
- multi-interest: the interest whose centroid retrieved the item, and within it Σ_j (v_j · v_i) / (n ‖c‖).

so each history item's share of the score is exact, and :func:`fidelity` checks that the cited items matter by removing
them and re-ranking.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import constants as C
from .baselines import EASE, Content, ItemKNN, Popularity, Recommender
from .checks import integer
from .profiles import event_weights
from .rank import top_k_scores
from .vectors import unit_rows

VERBS = {"view": "viewed", "click": "looked closely at", "purchase": "bought", "rating": "rated"}


@dataclass
class Contribution:
    """One history item's part of a score."""

    item_id: object
    title: str
    value: float  # its term of the score
    share: float  # value / score (shares of all history items sum to 1)


@dataclass
class Explanation:
    """Why ``method`` scored ``item`` for ``user``: structured evidence and one templated sentence."""

    user: object
    item_id: object
    title: str
    method: str
    score: float
    source: str  # "history", "description" or "popularity" (what the score was built from)
    contributions: list = field(default_factory=list)  # Contribution, largest first
    interest: dict | None = None  # {"name", "tier", "share"} of the user's interest that retrieved the item
    sentence: str = ""
    notes: list = field(default_factory=list)

    def cited(self, top: int = 3, min_share: float = 0.05) -> list:
        """The history items a sentence cites: the ``top`` largest contributions with at least ``min_share``."""
        return [c for c in self.contributions[:top] if c.share >= min_share]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"history item": c.item_id, "title": c.title, "term of the score": round(c.value, 4),
                              "share": round(c.share, 3)} for c in self.contributions])


# ---------------------------------------------------------------------------------------------------------
# decompositions, one per method
# ---------------------------------------------------------------------------------------------------------
def _history(model: Recommender, user) -> pd.DataFrame:
    train = getattr(model, "train_", None)
    if train is None:
        train = model._train
    return train[train[C.USER] == user]


def _by_item(rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum values per distinct item row (an item bought twice contributes once, with both terms)."""
    uniq, inv = np.unique(rows, return_inverse=True)
    return uniq, np.bincount(inv, weights=values, minlength=len(uniq))


def content_terms(model: Content, user, item_row: int) -> tuple[np.ndarray, np.ndarray]:
    """History item rows and their exact terms of the content score (they sum to the cosine)."""
    h = _history(model, user)
    rows = model.catalogue.rows(h[C.ITEM])
    now = model.train_[C.TIMESTAMP].max()
    w = event_weights(h, model.half_life_days, now=now)
    v = model.item_vecs
    profile = (w[:, None] * v[rows]).sum(0) / w.sum()
    norm = max(float(np.linalg.norm(profile)), 1e-12)
    return _by_item(rows, (w / w.sum()) * (v[rows] @ v[item_row]) / norm)


def collaborative_terms(model: ItemKNN | EASE, user, item_row: int) -> tuple[np.ndarray, np.ndarray]:
    """History item rows and their terms Σ_j X[u, j] · W[j, i] (W = the kNN similarity or EASE's B)."""
    W = model.sim_ if isinstance(model, ItemKNN) else model.B_
    x = model._history([user])
    rows = x.indices
    return rows, np.asarray(x.data, dtype=np.float64) * W[rows, item_row]


def _terms(model, user, item_row):
    from .serving import MultiInterest

    if isinstance(model, MultiInterest):
        return None
    if isinstance(model, Content):
        return content_terms(model, user, item_row)
    if isinstance(model, (ItemKNN, EASE)):
        return collaborative_terms(model, user, item_row)
    raise TypeError(f"explain() knows content, multi-interest, item-kNN and EASE models; got {type(model).__name__}. "
                    "For a hybrid, explain its parts (hybrid.content, hybrid.collaborative).")


# ---------------------------------------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------------------------------------
def explain(model: Recommender, user, item_id, tiered: dict | None = None, method: str | None = None) -> Explanation:
    """Structured evidence for ``item_id`` on ``user``'s list from a fitted ``model``, and a templated sentence.

    ``tiered`` (``user -> UserInterests`` from ``tiers.discover_all``) names the interest behind the item; a
    multi-interest model brings its own. A user with no history gets the model's fallback, said plainly.
    """
    from .serving import MultiInterest

    model._check_fitted()
    cat = model.catalogue
    item_row = int(cat.rows([item_id], what="item_id")[0])
    title = _title(cat, item_row)
    name = method or getattr(model, "name", type(model).__name__)
    score = float(model.score([user])[0, item_row])
    exp = Explanation(user, item_id, title, name, score, "history")
    if not model.has_history([user])[0]:
        fb = getattr(model, "fallback", None)
        described = isinstance(model, Content) and fb == "description" and user in model.user_vecs
        exp.source = "description" if described else "popularity"
        exp.sentence = (f"Suggested from your own description: “{title}” is close to what you told us you like."
                        if described else
                        f"Popular with others: “{title}” is among the most chosen items, and you have no history "
                        "with us yet, so nothing personal is claimed.")
        exp.notes.append(f"no training history: the {name} model's fallback ({model.fallback_label}) ranked it")
        return exp
    if isinstance(model, MultiInterest):
        ui = model.tiered_[user]
        ints = [it for it in ui.interests]
        c = np.stack([it.centroid for it in ints])
        owner = int(np.argmax(c @ cat.vectors[item_row]))
        it = ints[owner]
        rows = np.asarray(it.items)
        v = cat.vectors
        mean = v[rows].mean(0)
        norm = max(float(np.linalg.norm(mean)), 1e-12)
        rows, values = _by_item(rows, (v[rows] @ v[item_row]) / (len(rows) * norm))
        exp.interest = {"name": it.name or _title(cat, it.medoid), "tier": it.tier, "share": round(it.share, 3)}
        exp.notes.append("multi-interest: the terms decompose the cosine with the interest's centroid")
    else:
        rows, values = _terms(model, user, item_row)
    total = float(values.sum())
    order = np.argsort(-values, kind="stable")
    exp.contributions = [Contribution(cat.ids[r], _title(cat, r), float(values[k]),
                                      float(values[k] / total) if abs(total) > 1e-12 else 0.0)
                         for k, r in ((k, int(rows[k])) for k in order)]
    if exp.interest is None and tiered is not None and user in tiered:
        exp.interest = _interest_of(tiered[user], cat, rows, values)
    exp.sentence = template(exp, _history(model, user))
    return exp


def _title(cat, row: int) -> str:
    if cat.items is not None and C.TITLE in cat.items.columns:
        return str(cat.items[C.TITLE].iloc[row])
    return str(cat.ids[row])


def _interest_of(ui, cat, rows, values) -> dict | None:
    """The user's interest holding the largest part of the score (summing its history items' terms)."""
    best, best_val = None, -np.inf
    for it in ui.interests:
        members = set(int(r) for r in np.asarray(it.items))
        val = float(sum(v for r, v in zip(rows, values) if int(r) in members))
        if val > best_val:
            best, best_val = it, val
    if best is None:
        return None
    total = float(np.sum(values))
    return {"name": best.name or _title(cat, best.medoid), "tier": best.tier, "share": round(best.share, 3),
            "part of the score": round(best_val / total, 3) if abs(total) > 1e-12 else None}


def template(exp: Explanation, history: pd.DataFrame | None = None) -> str:
    """The sentence built from the evidence alone: the cited items, their share, and the interest with its tier."""
    cited = exp.cited()
    if not cited:
        return f"“{exp.title}” scored {exp.score:.3f}, but no single item of your history explains it."
    verb = "chose"
    if history is not None and C.EVENT in history.columns:
        ev = history[history[C.ITEM].isin([c.item_id for c in cited])][C.EVENT]
        if len(ev):
            verb = VERBS.get(str(ev.mode().iloc[0]), "chose")
    names = ", ".join(f"“{c.title}”" for c in cited)
    share = sum(c.share for c in cited)
    out = f"Because you {verb} {names} ({share:.0%} of the score)"
    if exp.interest:
        out += f", part of your {exp.interest['tier']} interest in {exp.interest['name']}"
    return out + "."


# ---------------------------------------------------------------------------------------------------------
# fidelity: do the cited items matter?
# ---------------------------------------------------------------------------------------------------------
def _rescore(model: Recommender, user, drop_rows: set) -> np.ndarray:
    """The user's scores with ``drop_rows`` removed from their history, the model itself unchanged (not refitted)."""
    from .serving import MultiInterest
    from .tiers import discover

    cat = model.catalogue
    if isinstance(model, MultiInterest):
        h = _history(model, user)
        h = h[~h[C.ITEM].isin(set(cat.ids[list(drop_rows)]))]
        if h.empty:
            return model._score_new([user])[0]
        saved = model.tiered_[user]
        model.tiered_[user] = discover(h, cat, model.cfg, now=model.train_[C.TIMESTAMP].max(), user=user,
                                       description=model.descriptions.get(user))
        saved_train = model.train_
        model.train_ = pd.concat([saved_train[saved_train[C.USER] != user], h])
        try:
            return model._score([user])[0]
        finally:
            model.tiered_[user], model.train_ = saved, saved_train
    if isinstance(model, Content):
        h = _history(model, user)
        h = h[~h[C.ITEM].isin(set(cat.ids[list(drop_rows)]))]
        if h.empty:
            return model._score_new([user])[0]
        rows = cat.rows(h[C.ITEM])
        w = event_weights(h, model.half_life_days, now=model.train_[C.TIMESTAMP].max())
        p = (w[:, None] * model.item_vecs[rows]).sum(0)
        return (unit_rows(p[None]) @ model.item_vecs.T)[0]
    if isinstance(model, (ItemKNN, EASE)):
        W = model.sim_ if isinstance(model, ItemKNN) else model.B_
        x = model._history([user]).toarray()[0]
        x[list(drop_rows)] = 0
        return x @ W
    raise TypeError(f"fidelity() knows content, multi-interest, item-kNN and EASE models; got {type(model).__name__}")


def fidelity(model: Recommender, users, k: int = 10, n_cite: int = 3, seed: int = C.SEED,
             tiered: dict | None = None) -> pd.DataFrame:
    """For each user's top item: remove the cited history items, re-rank, and record whether it leaves the top ``k``;
    then do the same after removing as many *random* history items. A faithful explanation cites items whose removal
    matters more than chance. Returns one row per user (users with fewer than ``n_cite + 1`` history items are skipped).
    """
    k, n_cite = integer("k", k, min=1), integer("n_cite", n_cite, min=1)
    rng = np.random.default_rng(seed)
    rows = []
    for user in users:
        if not model.has_history([user])[0]:
            continue
        seen = model.seen([user])[0]
        if len(seen) <= n_cite:
            continue
        top = int(model.recommend([user], 1)[0, 0])
        exp = explain(model, user, model.catalogue.ids[top], tiered)
        cited = {int(model.catalogue.row[c.item_id]) for c in exp.contributions[:n_cite]}
        rand = {int(r) for r in rng.choice(seen, size=len(cited), replace=False)}
        out = {"user": user, "item": model.catalogue.ids[top], "cited": len(cited)}
        for label, drop in (("cited removed", cited), ("random removed", rand)):
            s = _rescore(model, user, drop)
            hide = [seen]  # the user did see the dropped items: they stay hidden, only the evidence changes
            _, idx = top_k_scores(s[None], k, exclude=hide, tiebreak=model.tiebreak_)
            out[f"leaves top-{k} ({label})"] = top not in set(idx[0].tolist())
        rows.append(out)
    return pd.DataFrame(rows)
