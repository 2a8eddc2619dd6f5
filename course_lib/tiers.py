"""User interest tiering (兴趣分层): find each user's interests, weigh them, tier them, name them, and retrieve per interest.

Not a single-vector profile (see ``profiles``): a user is a handful of interests of different weight and direction.
1. discovery: cluster the embeddings of the user's history items (scikit-learn; Ward, or k-means);
2. importance: time-decayed weight per interest, Σ exp(−ln2 · age / half_life) over its events (as PinnerSage);
   trend: the interest's share of recent activity divided by its share overall;
3. tiers: documented rules below map importance and trend to core / secondary / emerging / fading / peripheral;
4. names: the nearest label (subcategory or genre names, or your own words) to each interest, by the text encoder;
5. multi-interest retrieval: a top-N per interest, merged by importance with a floor for emerging interests.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from . import constants as C
from .baselines import Recommender
from .catalogue import Catalogue
from .checks import integer
from .segments import SEGMENTS
from .vectors import unit_rows

CLUSTERINGS = ("ward", "kmeans")
TIER_ORDER = ("core", "secondary", "emerging", "fading", "peripheral")


@dataclass(frozen=True)
class TierConfig:
    """Knobs of interest discovery and tiering; every rule below reads them."""

    clustering: str = "ward"  # "ward": agglomerative with a distance threshold; "kmeans": k grows with history
    distance_threshold: float = 1.2  # ward: clusters further apart than this (unit vectors, Ward distance) stay apart
    kmeans_per_log2: float = 1.0  # kmeans: k = 1 + kmeans_per_log2 * log2(n_events), capped at max_interests
    max_interests: int = 8  # never more interests than this per user
    half_life_days: float = 90.0  # importance: an event this many days old counts half
    recent_days: float = 45.0  # trend: "recent" = the last recent_days before the reference time
    min_events: int = 2  # an interest with fewer events is "peripheral"
    emerging_trend: float = 1.5  # recent share / overall share at or above this: emerging (if not old)
    emerging_new_frac: float = 0.5  # ... and the interest's first event lies in the last half of the user's span
    fading_quiet_days: float = 60.0  # no event for this long while the user was active elsewhere: fading
    min_recent_events: int = 2  # a user needs this many recent events for trends to mean anything
    seed: int = C.SEED  # k-means initialisation

    def __post_init__(self):
        if self.clustering not in CLUSTERINGS:
            raise ValueError(f"clustering must be one of {CLUSTERINGS}, got {self.clustering!r}")
        for name in ("distance_threshold", "half_life_days", "recent_days", "fading_quiet_days"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_interests < 1 or self.min_events < 1:
            raise ValueError("max_interests and min_events must be >= 1")


@dataclass
class Interest:
    """One interest of one user."""

    members: np.ndarray  # row numbers (into the user's history) of its events
    items: np.ndarray  # item rows (into the item matrix) of its events
    centroid: np.ndarray  # unit vector: normalised mean of its items' vectors
    medoid: int  # item row of the member closest to the centroid
    importance: float  # Σ exp(-ln2 · age / half_life)
    share: float  # importance / user's total importance
    trend: float  # recent share / overall share (nan when the user has too few recent events)
    first: pd.Timestamp
    last: pd.Timestamp
    tier: str = ""
    name: str = ""


@dataclass
class UserInterests:
    user: object
    interests: list = field(default_factory=list)
    labels: np.ndarray | None = None  # interest index of each history event (in history order)

    def table(self) -> pd.DataFrame:
        rows = [{"interest": k, "name": it.name, "tier": it.tier, "events": len(it.members),
                 "importance share": round(it.share, 3), "trend": round(it.trend, 2) if np.isfinite(it.trend) else np.nan,
                 "first": it.first.date(), "last": it.last.date()} for k, it in enumerate(self.interests)]
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# 1-3. discovery, importance, tiers
# ---------------------------------------------------------------------------------------------------------
def _cluster(vecs: np.ndarray, cfg: TierConfig) -> np.ndarray:
    n = len(vecs)
    if n == 1:
        return np.zeros(1, dtype=int)
    uniq = np.unique(np.round(vecs, 6), axis=0)
    if len(uniq) == 1:  # the same item (or identical vectors) repeated: one interest
        return np.zeros(n, dtype=int)
    if cfg.clustering == "ward":
        from sklearn.cluster import AgglomerativeClustering

        labels = AgglomerativeClustering(n_clusters=None, distance_threshold=cfg.distance_threshold,
                                         linkage="ward").fit_predict(vecs)
        if labels.max() + 1 > cfg.max_interests:
            labels = AgglomerativeClustering(n_clusters=cfg.max_interests, linkage="ward").fit_predict(vecs)
        return labels
    from sklearn.cluster import KMeans

    k = int(min(cfg.max_interests, len(uniq), 1 + np.floor(cfg.kmeans_per_log2 * np.log2(n))))
    if k <= 1:
        return np.zeros(n, dtype=int)
    return KMeans(n_clusters=k, n_init=4, random_state=cfg.seed).fit_predict(vecs)


def discover(history: pd.DataFrame, catalogue, cfg: TierConfig = TierConfig(), now=None, user=None) -> UserInterests:
    """Find, weigh and tier the interests of one user from their ``history`` (rows of an interaction log).

    ``now`` is the reference time for ages and the recent window (default: the last event of the history).
    0 events: no interests. 1 event: one peripheral interest. All events at one timestamp: trends are undefined
    (nan) and only core / secondary / peripheral are used.
    """
    out = UserInterests(user if user is not None else (history[C.USER].iloc[0] if len(history) else None))
    if len(history) == 0:
        out.labels = np.zeros(0, dtype=int)
        return out
    h = history.sort_values(C.TIMESTAMP, kind="stable")
    rows = catalogue.rows(h[C.ITEM], what="history item_id")
    v = np.asarray(catalogue.require_vectors("discover"), dtype=np.float64)[rows]
    v = unit_rows(v)
    labels = _cluster(v, cfg)
    ts = h[C.TIMESTAMP]
    now = ts.max() if now is None else pd.Timestamp(now)
    age = ((now - ts).dt.total_seconds() / 86400.0).clip(lower=0).to_numpy()
    weight = np.exp2(-age / cfg.half_life_days)
    recent = age <= cfg.recent_days
    n_recent = int(recent.sum())
    span = (ts.max() - ts.min()).total_seconds()
    total = weight.sum()
    interests = []
    for lab in np.unique(labels):
        m = np.flatnonzero(labels == lab)
        c = v[m].mean(axis=0)
        c = c / max(np.linalg.norm(c), 1e-12)
        overall = len(m) / len(h)
        trend = (recent[m].sum() / n_recent) / overall if n_recent >= cfg.min_recent_events and span > 0 else np.nan
        interests.append(Interest(members=m, items=rows[m], centroid=c.astype(np.float32),
                                  medoid=int(rows[m][np.argmax(v[m] @ c)]), importance=float(weight[m].sum()),
                                  share=float(weight[m].sum() / total), trend=float(trend),
                                  first=ts.iloc[m[0]], last=ts.iloc[m[-1]]))
    _assign_tiers(interests, cfg, now, ts.min(), span, n_recent)
    order = sorted(range(len(interests)), key=lambda k: (TIER_ORDER.index(interests[k].tier), -interests[k].importance))
    remap = {old: new for new, old in enumerate(order)}
    out.interests = [interests[k] for k in order]
    out.labels = np.array([remap[int(np.flatnonzero(np.unique(labels) == lab)[0])] for lab in labels])
    return out


def _assign_tiers(interests: list, cfg: TierConfig, now, start, span: float, n_recent: int) -> None:
    """The rules, in order:

    1. fewer than ``min_events`` events → peripheral;
    2. trends defined and the first event in the last ``emerging_new_frac`` of the user's span and
       trend ≥ ``emerging_trend`` → emerging;
    3. trends defined (the user was active recently) and no event for ``fading_quiet_days`` → fading;
    4. the most important remaining interest → core (if none remains, the most important emerging or fading one;
       a user with only singletons has no core);
    5. the rest → secondary.
    """
    trends_ok = span > 0 and n_recent >= cfg.min_recent_events
    for it in interests:
        if len(it.members) < cfg.min_events:
            it.tier = "peripheral"
        elif trends_ok and (it.first - start).total_seconds() >= (1 - cfg.emerging_new_frac) * span \
                and it.trend >= cfg.emerging_trend:
            it.tier = "emerging"
        elif trends_ok and (now - it.last).total_seconds() / 86400.0 >= cfg.fading_quiet_days:
            it.tier = "fading"
    rest = [it for it in interests if not it.tier]
    pool = rest or [it for it in interests if it.tier != "peripheral"]
    if not pool:  # only singletons (e.g. one event): no core yet, everything stays peripheral
        return
    core = max(pool, key=lambda it: it.importance)
    core.tier = "core"
    for it in rest:
        if it is not core:
            it.tier = "secondary"


def discover_all(interactions: pd.DataFrame, catalogue, cfg: TierConfig = TierConfig(), users=None, now=None) -> dict:
    """``user -> UserInterests`` for every user (all users in the log by default); one reference time for all."""
    now = interactions[C.TIMESTAMP].max() if now is None else pd.Timestamp(now)
    groups = dict(tuple(interactions.groupby(C.USER, sort=False)))
    users = list(groups) if users is None else list(users)
    empty = interactions.iloc[:0]
    return {u: discover(groups.get(u, empty), catalogue, cfg, now=now, user=u) for u in users}


# ---------------------------------------------------------------------------------------------------------
# 4. names
# ---------------------------------------------------------------------------------------------------------
def name_interests(tiered: dict, label_words: dict, encoder) -> None:
    """Name every interest by the nearest label, zero-shot, with the text encoder (the "LLM-assisted" step).

    ``label_words`` maps a label (what is shown) to the words that describe it (what is encoded), e.g.
    ``{"smartwatch": "smartwatches", "running_shoes": "running shoes"}`` or your own vocabulary.
    """
    if not label_words:
        raise ValueError("label_words is empty: give at least one label, e.g. {'books': 'books and novels'}")
    labels = list(label_words)
    lv = encoder.encode([label_words[k] for k in labels])
    lv = unit_rows(lv)
    for ui in tiered.values():
        for it in ui.interests:
            if len(it.centroid) != lv.shape[1]:
                raise ValueError(f"interest vectors have {len(it.centroid)} dimensions, label vectors {lv.shape[1]}: "
                                 "name interests found in the text space of the same encoder")
            it.name = labels[int(np.argmax(lv @ it.centroid))]


def tfidf_terms(texts: list, top: int = 3) -> list[str]:
    """The ``top`` highest TF-IDF terms of a group of texts (a vocabulary-free way to label an interest)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not texts:
        return []
    vec = TfidfVectorizer(stop_words="english")
    m = np.asarray(vec.fit_transform(texts).sum(axis=0)).ravel()
    terms = np.array(vec.get_feature_names_out())
    return terms[np.argsort(-m)[:top]].tolist()


# ---------------------------------------------------------------------------------------------------------
# 6. multi-interest retrieval
# ---------------------------------------------------------------------------------------------------------
def allocate_slots(shares, tiers, k: int, emerging_floor: int = 2) -> np.ndarray:
    """Slots per interest in a list of ``k``: proportional to importance share (largest remainders),
    at least ``emerging_floor`` for each emerging interest, none for peripheral ones unless nothing else exists."""
    shares = np.asarray(shares, dtype=float)
    tiers = list(tiers)
    use = np.array([t != "peripheral" for t in tiers])
    if not use.any():
        use[:] = True
    w = np.where(use, shares, 0.0)
    w = w / w.sum() if w.sum() > 0 else use / use.sum()
    raw = w * k
    slots = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - slots))[: k - slots.sum()]:
        slots[i] += 1
    for i, t in enumerate(tiers):  # floor for emerging interests, taken from the largest allocation
        while t == "emerging" and slots[i] < min(emerging_floor, k) and slots.max() > slots[i]:
            j = int(np.argmax(np.where(np.arange(len(slots)) == i, -1, slots)))
            slots[j] -= 1
            slots[i] += 1
    return slots


def multi_interest_lists(tiered: dict, users, catalogue, k: int, seen: list | None = None,
                         emerging_floor: int = 2) -> np.ndarray:
    """Top-k per user: each interest's own nearest items (its centroid as the query), merged by slots.

    Duplicates across interests are skipped; unfilled slots go to the next items of the interests in order of
    importance. Users without interests get ``-1`` rows (the caller falls back to another method).
    """
    from .rank import ExactIndex

    item_vecs = catalogue.require_vectors("multi_interest_lists")
    index = ExactIndex(item_vecs)
    out = np.full((len(users), k), -1, dtype=np.int64)
    for r, u in enumerate(users):
        ui = tiered.get(u)
        if ui is None or not ui.interests:
            continue
        ints = ui.interests
        hidden = [list(seen[r])] * len(ints) if seen is not None else None
        _, cand = index.search(np.stack([it.centroid for it in ints]), min(k * 2 + len(seen[r]) if seen is not None else 2 * k, len(item_vecs)),
                               exclude=hidden)
        slots = allocate_slots([it.share for it in ints], [it.tier for it in ints], k, emerging_floor)
        chosen, ptr = [], [0] * len(ints)
        for j, n in enumerate(slots):  # each interest takes its slots, skipping items already chosen
            while n > 0 and ptr[j] < cand.shape[1]:
                i = int(cand[j, ptr[j]])
                ptr[j] += 1
                if i >= 0 and i not in chosen:
                    chosen.append(i)
                    n -= 1
        order = np.argsort([-it.importance for it in ints])
        while len(chosen) < k and any(ptr[j] < cand.shape[1] for j in order):  # fill leftovers by importance
            for j in order:
                while ptr[j] < cand.shape[1]:
                    i = int(cand[j, ptr[j]])
                    ptr[j] += 1
                    if i >= 0 and i not in chosen:
                        chosen.append(i)
                        break
                if len(chosen) >= k:
                    break
        out[r, : len(chosen[:k])] = chosen[:k]
    return out


class MultiInterest(Recommender):
    """A recommender (the ``baselines`` protocol) that ranks by merged per-interest lists.

    Items in the merged list score highest, in list order; every other item keeps the single-vector cosine
    below them, so metrics that need a full ranking (AUC) still work. New users: ``fallback``, either
    ``"popularity"`` or another fitted-with-us recommender (e.g. a ``Content`` with descriptions).
    """

    name = "multi-interest"

    def __init__(self, catalogue, item_vecs=None, cfg: TierConfig = TierConfig(), k: int = 10,
                 emerging_floor: int = 2, fallback="popularity"):
        cat = Catalogue.from_items(catalogue, item_vecs)
        cat = cat.with_vectors(unit_rows(cat.require_vectors("MultiInterest")))
        self.fallback_model = fallback if isinstance(fallback, Recommender) else None
        super().__init__(cat, "recommender" if self.fallback_model is not None else fallback)
        self.cfg, self.k, self.emerging_floor = cfg, integer("k", k, min=1), integer("emerging_floor", emerging_floor, min=0)

    fallbacks = ("popularity", None, "recommender")

    @property
    def fallback_label(self) -> str:
        if self.fallback_model is not None:
            return f"{self.fallback_model.name} ({self.fallback_model.fallback_label})"
        return super().fallback_label

    def _fit(self, train: pd.DataFrame):
        self.train_ = train
        self.tiered_ = discover_all(train, self.catalogue, self.cfg)
        if self.fallback_model is not None:
            self.fallback_model.fit(train)

    def _score_new(self, users) -> np.ndarray:
        if self.fallback_model is not None:
            return self.fallback_model.score(users)
        return super()._score_new(users)

    def _score(self, users) -> np.ndarray:
        from .profiles import history_profiles, seen_items

        users = list(users)
        prof, _ = history_profiles(self.train_, self.catalogue, users=users, half_life_days=self.cfg.half_life_days)
        s = unit_rows(prof) @ self.catalogue.vectors.T - 10.0
        lists = multi_interest_lists(self.tiered_, users, self.catalogue, self.k,
                                     seen_items(self.train_, self.catalogue, users), self.emerging_floor)
        for r, row in enumerate(lists):
            valid = row[row >= 0]
            s[r, valid] = 100.0 - np.arange(len(valid))
        return s.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# recovery against ground truth (shop)
# ---------------------------------------------------------------------------------------------------------
def majority_label(ui: UserInterests, item_labels: np.ndarray) -> list:
    """The most common item label (e.g. subcategory) of each interest's events."""
    out = []
    for it in ui.interests:
        vals, counts = np.unique(item_labels[it.items], return_counts=True)
        out.append(vals[np.argmax(counts)])
    return out


def recovery(tiered: dict, truth: pd.DataFrame, item_labels: np.ndarray, segments: pd.Series | None = None) -> dict:
    """Compare discovered tiers with the truth: core match, emerging/fading precision and recall, a confusion matrix.

    An interest is matched to a true interest by the majority label of its events. Returns a dict of tables.
    """
    item_labels = np.asarray(item_labels)
    true = truth.set_index([C.USER, C.INTEREST])[C.TIER]
    rows = []
    for u, ui in tiered.items():
        if not ui.interests:
            continue
        found = dict()
        for it, lab in zip(ui.interests, majority_label(ui, item_labels)):
            found.setdefault(lab, it.tier)  # interests are ordered by tier, so the first match is the strongest
        true_u = true.loc[u] if u in true.index.get_level_values(0) else pd.Series(dtype=object)
        for lab, t in true_u.items():
            rows.append({C.USER: u, "label": lab, "true": t, "found": found.get(lab, "missed")})
        for lab, t in found.items():
            if lab not in true_u.index:
                rows.append({C.USER: u, "label": lab, "true": "none (exploration)", "found": t})
    pairs = pd.DataFrame(rows)
    if pairs.empty:
        raise ValueError("no user has both discovered interests and ground truth")
    if segments is not None:
        pairs["segment"] = pairs[C.USER].map(segments)
    confusion = pd.crosstab(pairs["true"], pairs["found"])
    return {"pairs": pairs, "confusion": confusion, "summary": _recovery_summary(pairs)}


def _recovery_summary(pairs: pd.DataFrame, by: str | None = "segment") -> pd.DataFrame:
    def stats(p):
        core = p[p["true"] == "core"]
        out = {"users": p[C.USER].nunique(), "core found as core": (core["found"] == "core").mean() if len(core) else np.nan}
        for tier in ("emerging", "fading"):
            pred = p[p["found"] == tier]
            actual = p[p["true"] == tier]
            out[f"{tier} precision"] = (pred["true"] == tier).mean() if len(pred) else np.nan
            out[f"{tier} recall"] = (actual["found"] == tier).mean() if len(actual) else np.nan
        return pd.Series(out)

    overall = stats(pairs).to_frame("all").T
    if by and by in pairs:
        parts = [stats(g).to_frame(seg).T for seg, g in pairs.groupby(by, sort=False)]
        order = [s for s in SEGMENTS if s in {p.index[0] for p in parts}]
        return pd.concat([overall] + sorted(parts, key=lambda p: order.index(p.index[0])))
    return overall


def interest_coverage(lists: np.ndarray, users, truth: pd.DataFrame, item_labels: np.ndarray) -> float:
    """Mean over users of the share of their true interests that at least one listed item belongs to."""
    item_labels = np.asarray(item_labels)
    true = truth.groupby(C.USER)[C.INTEREST].agg(set)
    vals = []
    for row, u in zip(lists, users):
        if u not in true.index:
            continue
        hit = {item_labels[i] for i in row if i >= 0}
        vals.append(len(hit & true[u]) / len(true[u]))
    if not vals:
        raise ValueError("no listed user has ground truth")
    return float(np.mean(vals))


def with_settings(cfg: TierConfig, **changes) -> TierConfig:
    """A copy of ``cfg`` with some fields changed (validated): for sweeps and the explorer."""
    return replace(cfg, **changes)
