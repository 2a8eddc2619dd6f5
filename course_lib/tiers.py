"""Interest tiering (兴趣分层): find a user's interests in their history, weigh them, tier them by rules, name them.

Not serving (``serving``: slots per tier, multi-interest lists) and not scoring against a truth (``recovery``).
1. discovery: cluster the user's history items by cosine (average linkage; or k-means), merge near-duplicates;
2. weight: importance = Σ 2^(−age / half-life) over an interest's events (as PinnerSage); trend = its share of that
   time-decayed weight divided by its share of the events (> 1 rising, < 1 falling; the half-life sets how fast);
3. tiers: ``tier_rule``, fifteen readable lines, maps events, trend and quiet days to
   core / secondary / emerging / fading / peripheral;
4. names: the nearest label (subcategory or genre names, or your own words) to each interest, by the text encoder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from . import constants as C
from .catalogue import Catalogue, require_catalogue
from .checks import choice, integer, number, replace_checked
from .data.dataset import check_event_times, check_time
from .vectors import unit_rows

CLUSTERINGS = ("average", "kmeans")
TIER_ORDER = ("core", "secondary", "emerging", "fading", "peripheral")
# knobs that change which events form an interest (need discover again); the others only re-weigh and re-tier
DISCOVERY_KNOBS = ("clustering", "distance_threshold", "kmeans_per_log2", "merge_cosine", "seed")


@dataclass(frozen=True)
class TierConfig:
    """Knobs of interest discovery and tiering, each read by one step below. Defaults: fitted on validation users of
    the shop (notebook 04, ``recovery.fit_tier_rules``)."""

    # discovery
    clustering: str = "average"  # "average": merge groups whose items' mean cosine distance is below the threshold;
    #                               "kmeans": k = 1 + kmeans_per_log2 · log2(events)
    distance_threshold: float = 0.6  # average: cosine distance (1 − cosine); 0.6 = items with mean cosine ≥ 0.4 join
    kmeans_per_log2: float = 1.0  # kmeans: clusters per doubling of the history
    merge_cosine: float = 0.85  # interests whose centroids have cosine ≥ this are near-duplicates and merged
    seed: int = C.SEED  # k-means initialisation
    # weight
    half_life_days: float = 90.0  # an event this many days old counts half, in importance and in trend
    # tiers (tier_rule)
    min_events: int = 2  # an interest with fewer events is peripheral (a one-off: a gift, curiosity)
    min_share: float = 0.05  # ... and so is one holding less than this share of the user's events
    max_interests: int = 8  # only the this-many biggest interests (by events) can be more than peripheral
    min_recent_events: int = 2  # trends are read only if the user has this many events within one half-life
    emerging_trend: float = 1.2  # trend ≥ this: emerging ...
    emerging_new_frac: float = 1.0  # ... if its first event lies in the last emerging_new_frac of the user's span
    fading_trend: float = 0.8  # trend ≤ this: fading ...
    fading_quiet_days: float = 0.0  # ... if it has had no event for at least this many days

    def __post_init__(self):
        choice("clustering", self.clustering, CLUSTERINGS)
        number("distance_threshold", self.distance_threshold, above=0, max=2,
               fix="it is a cosine distance: 0.6 joins items whose mean cosine is at least 0.4")
        number("kmeans_per_log2", self.kmeans_per_log2, above=0, fix="e.g. 1.0: one more interest per doubling")
        number("merge_cosine", self.merge_cosine, min=-1, max=1, fix="use 1.0 to merge only identical centroids")
        integer("seed", self.seed, min=0)
        number("half_life_days", self.half_life_days, above=0)
        integer("min_events", self.min_events, min=1)
        number("min_share", self.min_share, min=0, below=1, fix="a share of the user's events, e.g. 0.05")
        integer("max_interests", self.max_interests, min=1)
        integer("min_recent_events", self.min_recent_events, min=0)
        number("emerging_trend", self.emerging_trend, min=0, fix="a ratio of shares; 1 means steady, e.g. 1.2")
        number("emerging_new_frac", self.emerging_new_frac, min=0, max=1, fix="a fraction of the user's span")
        number("fading_trend", self.fading_trend, min=0, fix="a ratio of shares; 1 means steady, e.g. 0.8")
        number("fading_quiet_days", self.fading_quiet_days, min=0)
        if not self.fading_trend < self.emerging_trend:
            raise ValueError(f"fading_trend must be below emerging_trend, got fading_trend={self.fading_trend}, "
                             f"emerging_trend={self.emerging_trend}; e.g. 0.8 and 1.2 around the steady 1.0")


def with_settings(cfg: TierConfig, **changes) -> TierConfig:
    """A copy of ``cfg`` with some fields changed (validated): for sweeps and the explorer."""
    return replace_checked(_check_cfg(cfg), **changes)


@dataclass
class Interest:
    """One interest of one user: which events, where it points, how much it weighs, and its tier."""

    members: np.ndarray  # positions of its events in the user's history (sorted by time)
    items: np.ndarray  # item rows (into the catalogue) of its events
    ages: np.ndarray  # age in days of each of its events, at the reference time
    centroid: np.ndarray  # unit vector: normalised mean of its items' vectors
    medoid: int  # item row of the member closest to the centroid
    first: pd.Timestamp
    last: pd.Timestamp
    affinity: float = 0.0  # cosine between the centroid and the user's self-description (0 without one)
    importance: float = 0.0  # Σ 2^(−age / half_life)
    share: float = 0.0  # importance / the user's total importance
    event_share: float = 0.0  # its events / the user's events
    trend: float = float("nan")  # share / event_share; nan when trends are not read (too few recent events)
    tier: str = ""
    name: str = ""

    @property
    def events(self) -> int:
        return len(self.members)

    @property
    def quiet_days(self) -> float:
        """Days since its last event."""
        return float(self.ages.min())


@dataclass
class UserInterests:
    """A user's interests, ordered by tier then importance, and what the rules need to know about the user."""

    user: object
    interests: list = field(default_factory=list)
    ages: np.ndarray = field(default_factory=lambda: np.zeros(0))  # age in days of every event (history order)
    trends_read: bool = False  # enough recent events for trends to mean anything

    @property
    def n_events(self) -> int:
        return len(self.ages)

    @property
    def span_days(self) -> float:
        return float(self.ages.max() - self.ages.min()) if len(self.ages) else 0.0

    @property
    def labels(self) -> np.ndarray:
        """Interest index of each history event (history order)."""
        out = np.full(self.n_events, -1, dtype=int)
        for k, it in enumerate(self.interests):
            out[it.members] = k
        return out

    def tiers(self) -> list:
        return [it.tier for it in self.interests]

    def table(self) -> pd.DataFrame:
        rows = [{"interest": k, "name": it.name, "tier": it.tier, "events": it.events,
                 "importance share": round(it.share, 3), "trend": round(it.trend, 2) if np.isfinite(it.trend) else np.nan,
                 "quiet days": round(it.quiet_days), "first": it.first.date(), "last": it.last.date()}
                for k, it in enumerate(self.interests)]
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# 1. discovery
# ---------------------------------------------------------------------------------------------------------
def cluster_history(vecs: np.ndarray, cfg: TierConfig = TierConfig()) -> np.ndarray:
    """Cluster label of each history item (unit rows of ``vecs``), near-duplicate clusters merged; labels 0..n−1."""
    n = len(vecs)
    if n <= 1 or np.allclose(vecs, vecs[0], atol=1e-6):  # nothing to split (one event, or one item repeated)
        return np.zeros(n, dtype=int)
    if cfg.clustering == "average":
        from scipy.cluster.hierarchy import fcluster, linkage

        labels = fcluster(linkage(vecs, method="average", metric="cosine"), cfg.distance_threshold,
                          criterion="distance") - 1
    else:
        from sklearn.cluster import KMeans

        distinct = len(np.unique(np.round(vecs, 6), axis=0))
        k = int(min(distinct, 1 + math.floor(cfg.kmeans_per_log2 * math.log2(n))))
        labels = np.zeros(n, dtype=int) if k <= 1 else KMeans(n_clusters=k, n_init=4, random_state=cfg.seed).fit_predict(vecs)
    return merge_near_duplicates(vecs, labels, cfg.merge_cosine)


def merge_near_duplicates(vecs: np.ndarray, labels: np.ndarray, merge_cosine: float) -> np.ndarray:
    """Merge the two clusters whose centroids are most alike while their cosine is ≥ ``merge_cosine``."""
    labels = np.unique(labels, return_inverse=True)[1]
    while labels.max() > 0:
        cent = unit_rows(np.stack([vecs[labels == k].mean(axis=0) for k in range(labels.max() + 1)]))
        sim = cent @ cent.T
        np.fill_diagonal(sim, -np.inf)
        a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[a, b] < merge_cosine:
            break
        labels[labels == max(a, b)] = min(a, b)
        labels = np.unique(labels, return_inverse=True)[1]
    return labels


# ---------------------------------------------------------------------------------------------------------
# 2. weight and 3. tiers
# ---------------------------------------------------------------------------------------------------------
def weigh(ui: UserInterests, cfg: TierConfig) -> None:
    """Importance, shares and trend of every interest of ``ui`` under ``cfg.half_life_days`` (in place)."""
    w_all = np.exp2(-ui.ages / cfg.half_life_days)
    total = w_all.sum()
    ui.trends_read = ui.span_days > 0 and int((ui.ages <= cfg.half_life_days).sum()) >= cfg.min_recent_events
    for it in ui.interests:
        it.importance = float(np.exp2(-it.ages / cfg.half_life_days).sum())
        it.share = it.importance / total
        it.event_share = it.events / ui.n_events
        it.trend = it.share / it.event_share if ui.trends_read else float("nan")


def tier_rule(ui: UserInterests, cfg: TierConfig) -> list[str]:
    """The tier of each interest of ``ui`` (in ``ui.interests`` order), by the rule:

    1. an interest outside the ``max_interests`` biggest, with fewer than ``min_events`` events or with less than
       ``min_share`` of the user's events is small;
    2. the biggest interest (most events; ties: nearest the user's self-description, then the most important) among
       the ones that are not small is core; if all are small (a history of one-offs), the biggest of them;
    3. other small ones → peripheral;
    4. trends read, trend ≥ ``emerging_trend`` and first event in the last ``emerging_new_frac`` of the span → emerging;
    5. trends read, trend ≤ ``fading_trend`` and quiet for ≥ ``fading_quiet_days`` → fading;
    6. the rest → secondary.
    """
    ints = ui.interests
    top = sorted(range(len(ints)), key=lambda k: (-ints[k].events, -ints[k].importance))[:cfg.max_interests]
    small = [k not in top or it.events < cfg.min_events or it.event_share < cfg.min_share for k, it in enumerate(ints)]
    pool = [k for k in range(len(ints)) if not small[k]] or list(range(len(ints)))
    core = max(pool, key=lambda k: (ints[k].events, ints[k].affinity, ints[k].importance), default=None)
    start = ui.ages.max() if len(ui.ages) else 0.0
    tiers = []
    for k, it in enumerate(ints):
        new = start - it.ages.max() >= (1 - cfg.emerging_new_frac) * ui.span_days
        if k == core:
            tiers.append("core")
        elif small[k]:
            tiers.append("peripheral")
        elif ui.trends_read and it.trend >= cfg.emerging_trend and new:
            tiers.append("emerging")
        elif ui.trends_read and it.trend <= cfg.fading_trend and it.quiet_days >= cfg.fading_quiet_days:
            tiers.append("fading")
        else:
            tiers.append("secondary")
    return tiers


def assign_tiers(ui: UserInterests, cfg: TierConfig) -> None:
    """Set ``it.tier`` for every interest of ``ui`` by :func:`tier_rule` (in place)."""
    for it, tier in zip(ui.interests, tier_rule(ui, cfg)):
        it.tier = tier


def _order(ui: UserInterests) -> None:
    ui.interests.sort(key=lambda it: (TIER_ORDER.index(it.tier), -it.importance))


def retier(tiered: dict, cfg: TierConfig) -> dict:
    """The same interests re-weighed and re-tiered under ``cfg`` (a new half-life or tier rule; no re-clustering).

    Returns new ``UserInterests`` objects; ``tiered`` is left as it was. Discovery knobs
    (``DISCOVERY_KNOBS``) need :func:`discover_all` again.
    """
    out = {}
    for u, ui in tiered.items():
        new = UserInterests(ui.user, [replace(it) for it in ui.interests], ui.ages)
        weigh(new, cfg)
        assign_tiers(new, cfg)
        _order(new)
        out[u] = new
    return out


def _check_description(description, dim: int):
    if description is None:
        return None
    d = np.asarray(description, dtype=np.float64).ravel()
    if len(d) != dim:
        raise ValueError(f"description has {len(d)} dimensions, the catalogue's vectors {dim}: encode it with the "
                         "same text encoder (for a fused space use fuse.text_only_query)")
    return d / max(np.linalg.norm(d), 1e-12)


def _interests(user, rows: np.ndarray, times: np.ndarray, now, vecs: np.ndarray, cfg: TierConfig,
               description=None) -> UserInterests:
    """The work of :func:`discover` on arrays: item rows and times of one user's events, in time order."""
    if len(rows) == 0:
        return UserInterests(user)
    v = unit_rows(np.asarray(vecs[rows], dtype=np.float64))
    ages = np.maximum((now - times) / np.timedelta64(1, "D"), 0.0)
    d = _check_description(description, v.shape[1])
    labels = cluster_history(v, cfg)
    ui = UserInterests(user, ages=ages)
    for k in range(labels.max() + 1):
        m = np.flatnonzero(labels == k)
        c = unit_rows(v[m].mean(axis=0, keepdims=True))[0]
        ui.interests.append(Interest(members=m, items=rows[m], ages=ages[m], centroid=c.astype(np.float32),
                                     medoid=int(rows[m][np.argmax(v[m] @ c)]), first=pd.Timestamp(times[m[0]]),
                                     last=pd.Timestamp(times[m[-1]]), affinity=float(c @ d) if d is not None else 0.0))
    weigh(ui, cfg)
    assign_tiers(ui, cfg)
    _order(ui)
    return ui


def _check_cfg(cfg) -> TierConfig:
    if not isinstance(cfg, TierConfig):
        raise TypeError(f"cfg must be a TierConfig, got {type(cfg).__name__}; e.g. TierConfig(half_life_days=90)")
    return cfg


def discover(history: pd.DataFrame, catalogue: Catalogue, cfg: TierConfig = TierConfig(), now=None, user=None,
             description=None) -> UserInterests:
    """Find, weigh and tier the interests of one user from their ``history`` (rows of an interaction log).

    ``now``: the reference time for ages (default: the last event of the history). ``description``: the user's
    self-description as a vector in the same space as the catalogue (breaks ties when choosing the core).
    0 events: no interests. A history of one-offs: its core is the one nearest the description, or the latest.
    """
    _check_cfg(cfg)
    require_catalogue(catalogue, "discover")
    uid = user if user is not None else (history[C.USER].iloc[0] if len(history) else None)
    if len(history) == 0:
        return UserInterests(uid)
    check_event_times(history, "history")
    h = history.sort_values(C.TIMESTAMP, kind="stable")
    rows = catalogue.rows(h[C.ITEM], what="history item_id")
    times = h[C.TIMESTAMP].to_numpy()
    now = times.max() if now is None else check_time("now", now).to_datetime64()
    return _interests(uid, rows, times, now, catalogue.require_vectors("discover"), cfg, description)


def discover_all(interactions: pd.DataFrame, catalogue: Catalogue, cfg: TierConfig = TierConfig(), users=None,
                 now=None, descriptions: dict | None = None) -> dict:
    """``user -> UserInterests`` for every user (all users in the log by default); one reference time for all.

    ``descriptions``: ``user -> vector`` of self-descriptions (``profiles.description_profiles``), optional.
    """
    _check_cfg(cfg)
    vecs = require_catalogue(catalogue, "discover_all").require_vectors("discover_all")
    check_event_times(interactions)
    log = interactions.sort_values([C.USER, C.TIMESTAMP], kind="stable")
    rows = catalogue.rows(log[C.ITEM], what="interactions item_id")
    times = log[C.TIMESTAMP].to_numpy()
    now = (times.max() if len(times) else None) if now is None else check_time("now", now).to_datetime64()
    codes, uniq = pd.factorize(log[C.USER], sort=False)
    bounds = np.flatnonzero(np.diff(codes)) + 1
    starts = dict(zip(uniq, np.r_[0, bounds])) if len(codes) else {}
    ends = dict(zip(uniq, np.r_[bounds, len(codes)])) if len(codes) else {}
    users = list(uniq) if users is None else list(users)
    descriptions = descriptions or {}
    out = {}
    for u in users:
        a, b = starts.get(u, 0), ends.get(u, 0)
        out[u] = _interests(u, rows[a:b], times[a:b], now, vecs, cfg, descriptions.get(u))
    return out


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
    lv = unit_rows(encoder.encode([label_words[k] for k in labels]))
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
