"""Explanations from evidence (透明性): why a recommender put an item on a user's list, in numbers, then in words.

Not a language model (see ``llm.py``, which may rephrase these explanations and is checked against them): every claim
here is a term of the score itself. For the methods the course builds, the score is a sum over the user's history:

- content (cosine with a weighted mean profile): s(u, i) = Σ_j (w_j / W) (v_j · v_i) / ‖p_u‖ exactly;
- item-kNN: s(u, i) = Σ_{j ∈ history} sim(j, i);  EASE: s(u, i) = Σ_{j ∈ history} B[j, i];
- multi-interest: the interest whose centroid retrieved the item, and within it Σ_j (v_j · v_i) / (n ‖c‖) (the
  explanation's score is then that cosine, not the model's slot-rank score).

so each history item's share of the score is exact, and :func:`fidelity` checks that the cited items matter by removing
them and re-ranking. Each method computes its own terms (``contributions``) and scores a modified history
(``score_history``): this module reads models only through that protocol (``baselines.Recommender``), never their
private state, and never changes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import constants as C
from .baselines import Recommender
from .checks import integer
from .rank import top_k_scores

VERBS = {"view": "viewed", "click": "looked closely at", "purchase": "bought", "rating": "rated"}


@dataclass
class Contribution:
    """One history item's part of a score."""

    item_id: object
    title: str
    value: float  # its term of the score
    share: float  # value / score (shares of all history items sum to 1)
    event: str | None = None  # the strongest event the user had with it (view < click < purchase), when known
    interest: dict | None = None  # {"name", "tier"} of the user's interest that holds this item, when known


@dataclass
class Explanation:
    """Why ``method`` scored ``item`` for ``user``: structured evidence and one templated sentence."""

    user: object
    item_id: object
    title: str
    method: str
    score: float  # the quantity the contributions decompose (for multi-interest: the cosine with the centroid)
    source: str  # "history", "description" or "popularity" (what the score was built from)
    contributions: list = field(default_factory=list)  # Contribution, largest first
    interest: dict | None = None  # {"name", "tier", "share"} of the user's interest that retrieved the item
    sentence: str = ""
    notes: list = field(default_factory=list)

    def cited(self, top: int = 3, min_share: float = 0.05) -> list:
        """The history items a sentence cites: the ``top`` largest contributions with at least ``min_share``."""
        return [c for c in self.contributions[:top] if c.share >= min_share]

    def table(self) -> pd.DataFrame:
        rows = []
        for c in self.contributions:
            row = {"history item": c.item_id, "title": c.title, "term of the score": round(c.value, 4),
                   "share": round(c.share, 3)}
            if any(x.event for x in self.contributions):
                row["event"] = c.event or "–"
            if any(x.interest for x in self.contributions):
                row["interest"] = f"{c.interest['name']} ({c.interest['tier']})" if c.interest else "–"
            rows.append(row)
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------------------------------------
def explain(model: Recommender, user, item_id, tiered: dict | None = None, method: str | None = None,
            log: pd.DataFrame | None = None) -> Explanation:
    """Structured evidence for ``item_id`` on ``user``'s list from a fitted ``model``, and a templated sentence.

    ``tiered`` (``user -> UserInterests`` from ``tiers.discover_all``) names the interest behind each cited item; a
    multi-interest model brings its own. ``log``: an interaction log with an event column, read for the verbs
    ("viewed", "bought"); default the model's own training log (item-kNN and EASE keep no event types, so pass the
    training log to word them like the others). A user with no history gets the model's fallback, said plainly.
    For a multi-interest model the score reported is the cosine with the interest's centroid (what the terms
    decompose); the model's own ranking score (a slot position) is kept in ``notes``.
    """
    known = bool(model.has_history([user])[0])  # also: the model must be fitted
    cat = model.catalogue
    item_row = int(cat.rows([item_id], what="item_id")[0])
    title = _title(cat, item_row)
    name = method or getattr(model, "name", type(model).__name__)
    score = float(model.score([user])[0, item_row])
    exp = Explanation(user, item_id, title, name, score, "history")
    if not known:
        described = model.new_user_source(user) == "description"
        exp.source = "description" if described else "popularity"
        exp.sentence = (f"Suggested from your own description: “{title}” is close to what you told us you like."
                        if described else
                        f"Popular with others: “{title}” is among the most chosen items, and you have no history "
                        "with us yet, so nothing personal is claimed.")
        exp.notes.append(f"no training history: the {name} model's fallback ({model.fallback_label}) ranked it")
        return exp
    terms = model.contributions(user, item_row)  # NotDecomposable (a TypeError) for a score that is no such sum
    rows, values = terms.rows, terms.values
    owner = None
    if terms.interest is not None:  # the model serves by interest: every term belongs to the one that retrieved it
        it = terms.interest
        exp.interest = {"name": it.name or _title(cat, it.medoid), "tier": it.tier, "share": round(it.share, 3)}
        owner = {"name": exp.interest["name"], "tier": exp.interest["tier"]}
        ui = None
    else:
        ui = tiered[user] if tiered is not None and user in tiered else None
    exp.score = terms.score  # the model's score, or what the model says its terms decompose instead (note)
    if terms.note is not None:
        exp.notes.append(f"{getattr(model, 'name', type(model).__name__)}: "
                         + terms.note.format(interest=exp.interest["name"] if exp.interest else "", score=score))
    history = model.history(user) if log is None else log[log[C.USER] == user]
    events = _strongest_events(history)
    total = float(values.sum())
    order = np.argsort(-values, kind="stable")
    exp.contributions = [Contribution(cat.ids[r], _title(cat, r), float(values[k]),
                                      float(values[k] / total) if abs(total) > 1e-12 else 0.0,
                                      event=events.get(cat.ids[r]),
                                      interest=dict(owner) if owner else _holder(ui, r, cat))
                         for k, r in ((k, int(rows[k])) for k in order)]
    if exp.interest is None and ui is not None:
        exp.interest = _interest_of(ui, cat, rows, values)
    exp.sentence = template(exp)
    return exp


def _strongest_events(history: pd.DataFrame) -> dict:
    """item id -> the strongest event type the user had with it (purchase > click > view; unknown types weakest)."""
    if C.EVENT not in history.columns or history.empty:
        return {}
    strength = history[C.EVENT].map(lambda e: C.EVENT_WEIGHTS.get(str(e), 0.0))
    best = history.assign(_s=strength.to_numpy()).sort_values("_s", ascending=False, kind="stable")
    return best.drop_duplicates(C.ITEM).set_index(C.ITEM)[C.EVENT].astype(str).to_dict()


def _holder(ui, row: int, cat) -> dict | None:
    """The user's interest that holds history item ``row`` (the one holding most of its events; ties: the stronger)."""
    if ui is None:
        return None
    best, best_n = None, 0
    for it in ui.interests:
        n = int(np.sum(np.asarray(it.items) == row))
        if n > best_n:
            best, best_n = it, n
    return None if best is None else {"name": best.name or _title(cat, best.medoid), "tier": best.tier}


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
    """The sentence built from the evidence alone: the cited items with what the user did with each, the interest
    each of them belongs to (with its tier; an interest is only claimed for its own items), and their share.

    ``history`` (optional, a log with an event column) fills in events the contributions do not carry."""
    cited = exp.cited()
    if not cited:
        return f"“{exp.title}” scored {exp.score:.3f}, but no single item of your history explains it."
    if history is not None and C.EVENT in history.columns:
        events = _strongest_events(history)
        cited = [c if c.event else Contribution(c.item_id, c.title, c.value, c.share, events.get(c.item_id),
                                                c.interest) for c in cited]
    groups: dict = {}  # interest -> verb -> titles, in order of first appearance (largest term first)
    for c in cited:
        key = (c.interest["name"], c.interest["tier"]) if c.interest else None
        verb = VERBS.get(str(c.event), "chose") if c.event else "chose"
        groups.setdefault(key, {}).setdefault(verb, []).append(f"“{c.title}”")
    parts, last_verb = [], None
    for key, by_verb in groups.items():
        said = []
        for verb, titles in by_verb.items():
            said.append((f"{verb} " if verb != last_verb else "") + ", ".join(titles))
            last_verb = verb
        text = " and ".join(said)
        if key is not None:
            n = sum(len(t) for t in by_verb.values())
            text += f" ({'both ' if n == 2 else 'all ' if n > 2 else ''}part of your {key[1]} interest in {key[0]})"
        parts.append(text)
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    share = sum(c.share for c in cited)
    return f"Because you {body}; {'together ' if len(cited) > 1 else ''}{share:.0%} of the score."


# ---------------------------------------------------------------------------------------------------------
# fidelity: do the cited items matter?
# ---------------------------------------------------------------------------------------------------------
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
        history = model.history(user)
        for label, drop in (("cited removed", cited), ("random removed", rand)):
            s = model.score_history(user, history[~history[C.ITEM].isin(set(model.catalogue.ids[list(drop)]))])
            hide = [seen]  # the user did see the dropped items: they stay hidden, only the evidence changes
            _, idx = top_k_scores(s[None], k, exclude=hide, tiebreak=model.tiebreak_)
            out[f"leaves top-{k} ({label})"] = top not in set(idx[0].tolist())
        rows.append(out)
    return pd.DataFrame(rows)
