"""Running recommenders over a split and scoring their lists: the task, who is tested, paired comparisons.

Not the metrics themselves (see ``metrics.py``) and not the models (see ``baselines.py``). The protocol, stated once:

- **Task.** ``"discovery"`` (default): a user's relevant test items are those they did *not* have in training; seen
  items are hidden from the lists; users left with no relevant item are excluded and counted. ``"repeat-aware"``:
  nothing is hidden and repeats count. ``"masked-but-counted"`` is the classic mistake, kept for teaching: seen
  items are hidden but repeats still count as relevant, so they can never be hit.
- **Who.** Every table says which users it covers: ``returning`` (with training history), ``new`` (none), ``all``.
- **New users** are served by each method's declared ``fallback``; a method that gives users a constant score row and
  declares no fallback is refused, never ranked by ``torch.topk``'s tie order. Remaining ties: training popularity,
  then item id (``rank.tie_order``).
- **Comparisons** are paired: the difference between two methods over the same users, with a bootstrap interval
  (``scipy.stats.bootstrap(paired=True)``). "Tied" means that interval covers 0. Overlapping *unpaired* intervals
  prove nothing (notebook 06 shows why).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import constants as C
from .baselines import item_popularity
from .catalogue import Catalogue
from .checks import choice, integer, number
from .files import write_json  # noqa: F401  (re-exported: reports write metrics.json with it)
from .metrics import RANKING_METRICS, auc_per_user, catalogue_coverage, intra_list_diversity, novelty, recall_at_k
from .rank import tie_order, top_k_scores
from .segments import SEGMENTS, user_segments

TASKS = ("discovery", "repeat-aware", "masked-but-counted")
GROUPS = ("all", "returning", "new")
N_BOOT = 1000  # bootstrap resamples for every interval
LEVEL = 0.95  # interval level


# ---------------------------------------------------------------------------------------------------------
# intervals: one place, scipy's bootstrap
# ---------------------------------------------------------------------------------------------------------
def bootstrap_ci(values, n_boot: int = N_BOOT, seed: int = C.SEED, level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling users with replacement (``scipy.stats.bootstrap``).

    Fewer than two values: the interval is undefined and returned as ``(nan, nan)`` (``None`` in JSON).
    """
    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        raise ValueError("no values to bootstrap")
    if not np.isfinite(v).all():
        raise ValueError(f"values to bootstrap contain NaN or inf at position(s) {np.flatnonzero(~np.isfinite(v))[:5].tolist()}")
    if len(v) < 2:
        return float("nan"), float("nan")
    r = bootstrap((v,), np.mean, n_resamples=integer("n_boot", n_boot, min=1), vectorized=True, method="percentile",
                  confidence_level=number("level", level, above=0, below=1), rng=np.random.default_rng(seed))
    return float(r.confidence_interval.low), float(r.confidence_interval.high)


def paired_ci(a, b, n_boot: int = N_BOOT, seed: int = C.SEED, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean of ``a − b`` over the same users, with a paired bootstrap interval: ``(diff, lo, hi)``.

    Each resample draws users, and both methods are scored on the *same* drawn users, so the user-to-user spread
    that both share cancels out. That is why a paired interval can exclude 0 while two unpaired intervals overlap.
    """
    from scipy.stats import bootstrap

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values must be two 1-D arrays over the same users, got shapes {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("no users to compare")
    d = float(np.mean(a - b))
    if len(a) < 2:
        return d, float("nan"), float("nan")
    r = bootstrap((a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), paired=True, vectorized=True,
                  n_resamples=integer("n_boot", n_boot, min=1), method="percentile",
                  confidence_level=number("level", level, above=0, below=1), rng=np.random.default_rng(seed))
    return d, float(r.confidence_interval.low), float(r.confidence_interval.high)


@dataclass(frozen=True)
class PairedDiff:
    """``a − b`` on ``metric`` over the same ``n`` users, with its paired interval."""

    a: str
    b: str
    metric: str
    group: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    lo: float
    hi: float

    @property
    def verdict(self) -> str:
        if not np.isfinite(self.lo):
            return "too few users"
        if self.lo > 0:
            return f"{self.a} better"
        if self.hi < 0:
            return f"{self.b} better"
        return "tied"

    def __str__(self) -> str:
        return (f"{self.a} − {self.b} ({self.metric}, {self.group}, {self.n} users): {self.diff:+.4f} "
                f"[{self.lo:+.4f}, {self.hi:+.4f}] → {self.verdict}")

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "metric": self.metric, "group": self.group, "users": self.n,
                "mean_a": self.mean_a, "mean_b": self.mean_b, "diff": self.diff, "lo": self.lo, "hi": self.hi,
                "verdict": self.verdict}


# ---------------------------------------------------------------------------------------------------------
# the harness
# ---------------------------------------------------------------------------------------------------------
def item_buckets(train: pd.DataFrame, catalogue, popular_share: float = 0.2) -> np.ndarray:
    """Per item: 'popular' (the most-chosen items, ``popular_share`` of the catalogue), 'long-tail' (the rest with any
    training interaction), 'unseen' (none: only content can place them on purpose)."""
    cat = Catalogue.from_items(catalogue)
    counts = np.bincount(cat.rows(train[C.ITEM], what="train item_id"), minlength=len(cat))
    order = np.argsort(-counts, kind="stable")
    out = np.where(counts > 0, "long-tail", "unseen").astype(object)
    out[order[: int(round(number("popular_share", popular_share, min=0, max=1) * len(cat)))]] = "popular"
    out[counts == 0] = "unseen"
    return out


@dataclass
class Evaluation:
    """Per-user results of several methods on one split and task, and the tables made from them."""

    per_user: pd.DataFrame  # one row per (method, user): group, segment and every metric
    beyond: pd.DataFrame  # one row per method: coverage, diversity, novelty
    by_bucket: pd.DataFrame  # recall@k restricted to relevant items of each item-popularity bucket
    k: int
    task: str = "discovery"
    lists: dict = field(default_factory=dict)  # method -> (users, item rows)
    fallbacks: dict = field(default_factory=dict)  # method -> what new users get
    users: dict = field(default_factory=dict)  # counts: test users, evaluated, excluded, returning, new
    unreachable_share: float | None = None  # masked-but-counted: share of relevant (user, item) pairs hidden
    constant_rows: dict = field(default_factory=dict)  # method -> returning users whose scores were all equal
    models: dict = field(default_factory=dict)  # method -> the fitted recommender that made its lists

    # ---- selection --------------------------------------------------------------------------------------
    @property
    def methods(self) -> list:
        return list(dict.fromkeys(self.per_user["method"]))

    def _rows(self, group: str = "all", segment: str | None = None) -> pd.DataFrame:
        choice("group", group, GROUPS)
        pu = self.per_user
        if group != "all":
            pu = pu[pu["group"] == group]
        if segment is not None:
            choice("segment", segment, SEGMENTS)
            pu = pu[pu["segment"] == segment]
        return pu

    def _metric(self, metric: str) -> str:
        names = [c for c in self.per_user.columns if c not in ("method", "user", "group", "segment")]
        return choice("metric", metric, names)

    # ---- tables -----------------------------------------------------------------------------------------
    def table(self, metrics=None, group: str = "all", n_boot: int = N_BOOT, seed: int = C.SEED) -> pd.DataFrame:
        """Mean of each metric per method over ``group``'s users, with a 95% interval as ``[lo, hi]`` columns."""
        metrics = metrics or [m for m in RANKING_METRICS if m in self.per_user.columns]
        pu = self._rows(group)
        rows = []
        for method in self.methods:
            g = pu[pu["method"] == method]
            row = {"method": method, "users": int(len(g))}
            for m in metrics:
                v = g[self._metric(m)].dropna()
                row[m] = v.mean() if len(v) else np.nan
                row[f"{m} lo"], row[f"{m} hi"] = bootstrap_ci(v, n_boot, seed) if len(v) else (np.nan, np.nan)
            rows.append(row)
        out = pd.DataFrame(rows).set_index("method")
        out["users"] = out["users"].astype(int)
        return out

    def by_group(self, metric: str = "ndcg", n_boot: int = N_BOOT, seed: int = C.SEED) -> pd.DataFrame:
        """``metric`` per method for all, returning and new users, formatted ``mean [lo, hi]``, with user counts."""
        return self._formatted(metric, [(g, self._rows(g)) for g in GROUPS], n_boot, seed)

    def by_segment(self, metric: str = "ndcg", n_boot: int = N_BOOT, seed: int = C.SEED) -> pd.DataFrame:
        """``metric`` per method and activity segment, formatted ``mean [lo, hi]``, with user counts."""
        present = [s for s in SEGMENTS if s in set(self.per_user["segment"])]
        return self._formatted(metric, [(s, self._rows("all", s)) for s in present], n_boot, seed)

    def _formatted(self, metric, parts, n_boot, seed) -> pd.DataFrame:
        metric = self._metric(metric)
        out, counts = {}, {}
        for label, pu in parts:
            counts[label] = pu["user"].nunique()
            for method in self.methods:
                v = pu.loc[pu["method"] == method, metric].dropna()
                if len(v) == 0:
                    out.setdefault(method, {})[label] = "–"
                    continue
                lo, hi = bootstrap_ci(v, n_boot, seed)
                out.setdefault(method, {})[label] = (f"{v.mean():.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo)
                                                     else f"{v.mean():.3f}")
        table = pd.DataFrame(out).T[[label for label, _ in parts]]
        table.columns = [f"{label} (n={counts[label]})" for label, _ in parts]
        return table

    # ---- paired comparisons -----------------------------------------------------------------------------
    def paired_values(self, a: str, b: str, metric: str = "ndcg", group: str = "all", segment: str | None = None,
                      users=None) -> pd.DataFrame:
        """Per user (index), ``a``'s and ``b``'s ``metric`` (columns), over the users both were scored on; ``users``:
        only these user ids."""
        metric = self._metric(metric)
        for m in (a, b):
            choice("method", m, self.methods)
        pu = self._rows(group, segment)
        if users is not None:
            if isinstance(users, str) or not hasattr(users, "__iter__"):
                raise TypeError(f"users must be a collection of user ids, got {users!r}")
            pu = pu[pu["user"].isin(set(users))]
        return pu[pu["method"].isin([a, b])].pivot(index="user", columns="method", values=metric).dropna()

    def compare(self, a: str, b: str, metric: str = "ndcg", group: str = "all", segment: str | None = None,
                n_boot: int = N_BOOT, seed: int = C.SEED, users=None, label: str | None = None) -> PairedDiff:
        """``a − b`` over the users both were scored on (the same users), with a paired bootstrap interval.

        ``users``: only these user ids (e.g. those with an emerging interest in the test period), named ``label``."""
        metric = self._metric(metric)
        wide = self.paired_values(a, b, metric, group, segment, users)
        label = label or (group if segment is None else f"{segment} users")
        if wide.empty:
            return PairedDiff(a, b, metric, label, 0, np.nan, np.nan, np.nan, np.nan, np.nan)
        d, lo, hi = paired_ci(wide[a].to_numpy(), wide[b].to_numpy(), n_boot, seed)
        return PairedDiff(a, b, metric, label, len(wide), float(wide[a].mean()), float(wide[b].mean()), d, lo, hi)

    def paired_table(self, reference: str, metric: str = "ndcg", group: str = "all", segment: str | None = None,
                     n_boot: int = N_BOOT, seed: int = C.SEED) -> pd.DataFrame:
        """Every method against ``reference``: mean, paired difference, its interval and the verdict."""
        rows = []
        for m in self.methods:
            if m == reference:
                continue
            p = self.compare(m, reference, metric, group, segment, n_boot, seed)
            rows.append({"method": m, "users": p.n, metric: p.mean_a, f"{reference}": p.mean_b,
                         "difference": p.diff, "lo": p.lo, "hi": p.hi, "verdict": p.verdict})
        return pd.DataFrame(rows).set_index("method")

    def best(self, metric: str = "ndcg", group: str = "all", segment: str | None = None) -> str:
        """The method with the highest mean (the first in table order among exact ties; see :meth:`identical`)."""
        pu = self._rows(group, segment)
        means = pu.groupby("method", sort=False)[self._metric(metric)].mean().dropna()
        if means.empty:
            raise ValueError(f"no {group} users{'' if segment is None else ' in segment ' + segment} to rank methods on")
        return str(means.idxmax())

    def identical(self, method: str, metric: str = "ndcg", group: str = "all", segment: str | None = None) -> list:
        """Other methods whose per-user ``metric`` equals ``method``'s for every one of these users (for example
        methods that all fall back to popularity, compared on new users): a tie by construction, not by chance."""
        pu = self._rows(group, segment)
        wide = pu.pivot(index="user", columns="method", values=self._metric(metric))
        ref = wide[method]
        return [m for m in self.methods if m != method and m in wide and np.allclose(wide[m], ref, equal_nan=True)]

    def join(self, other: "Evaluation") -> "Evaluation":
        """This run's methods and ``other``'s in one :class:`Evaluation`, for pairing them: both must come from
        the same split, task and ``k`` (the same users in each group). Use it to add a reference that must not take
        part in this run's own tables (the generator oracle: never the "best" method, never tuned)."""
        if not isinstance(other, Evaluation):
            raise TypeError(f"other must be an Evaluation (from evaluate(...)), got {type(other).__name__}")
        if (other.k, other.task) != (self.k, self.task):
            raise ValueError(f"other was scored with k={other.k}, task={other.task!r}; this run with k={self.k}, "
                             f"task={self.task!r}: evaluate both on the same split with the same k and task")
        mine = self.per_user.drop_duplicates("user").set_index("user")["group"]
        theirs = other.per_user.drop_duplicates("user").set_index("user")["group"]
        if not mine.sort_index().equals(theirs.sort_index()):
            raise ValueError(f"other scored {len(theirs)} users, this run {len(mine)} (or their groups differ): "
                             "evaluate both on the same split, train and test")
        clash = sorted(set(self.methods) & set(other.methods))
        if clash:
            raise ValueError(f"both runs have the method(s) {clash}: rename one before joining")
        return Evaluation(per_user=pd.concat([self.per_user, other.per_user], ignore_index=True),
                          beyond=pd.concat([self.beyond, other.beyond]),
                          by_bucket=pd.concat([self.by_bucket, other.by_bucket]), k=self.k, task=self.task,
                          lists={**self.lists, **other.lists}, fallbacks={**self.fallbacks, **other.fallbacks},
                          users=dict(self.users), unreachable_share=self.unreachable_share,
                          constant_rows={**self.constant_rows, **other.constant_rows},
                          models={**self.models, **other.models})


def _relevance(task: str, test_rows: dict, seen: dict, users: list):
    """Per user: (relevant item rows, rows to hide from the list) under ``task``."""
    rel, hide = [], []
    for u in users:
        s = seen.get(u, set())
        t = test_rows[u]
        if task == "discovery":
            rel.append(t - s)
            hide.append(sorted(s))
        elif task == "repeat-aware":
            rel.append(set(t))
            hide.append([])
        else:  # masked-but-counted
            rel.append(set(t))
            hide.append(sorted(s))
    return rel, hide


def evaluate(methods: dict, train: pd.DataFrame, test: pd.DataFrame, catalogue, k: int = 10,
             task: str = "discovery", diversity_vecs: np.ndarray | None = None, thresholds=(5, 20),
             with_auc: bool = True) -> Evaluation:
    """Fit each recommender on ``train``, rank for every test user, score the lists on ``test`` under ``task``.

    ``catalogue``: a :class:`~course_lib.catalogue.Catalogue` (or the items table); every method must rank the same
    item ids in the same order (a method built on another catalogue is refused). ``diversity_vecs`` (default: the
    catalogue's vectors) are used for intra-list diversity. Each method is fitted as a :func:`baselines.clone`, never
    itself (scikit-learn's ``cross_validate`` habit): the caller's objects stay as they were, and
    ``Evaluation.models[name]`` holds the fitted copy that made the lists (read a model from there, e.g. to explain
    it). Returns an :class:`Evaluation`.
    """
    if not isinstance(methods, dict) or not methods:
        raise ValueError("methods must be a non-empty dict of name -> recommender, e.g. {'popularity': Popularity(items)}")
    for name, m in methods.items():
        if not (hasattr(m, "fit") and hasattr(m, "score")):
            raise TypeError(f"method {name!r} must have fit(train) and score(users); got {type(m).__name__}")
    cat = Catalogue.from_items(catalogue)
    for name, m in methods.items():
        theirs = getattr(m, "catalogue", None)
        _check_same_items(name, None if theirs is None else Catalogue.from_items(theirs), cat)
    k = integer("k", k, min=1)
    if k > len(cat):
        raise ValueError(f"k={k} is larger than the catalogue ({len(cat)} items); choose k <= {len(cat)}")
    choice("task", task, TASKS)
    if len(test) == 0:
        raise ValueError("test split is empty: nothing to evaluate (check the split's test_frac)")
    test_items = cat.rows(test[C.ITEM], what="test item_id")
    train_items = cat.rows(train[C.ITEM], what="train item_id")
    test_rows, seen = _sets(test[C.USER], test_items), _sets(train[C.USER], train_items)
    all_users = sorted(test_rows)
    rel_all, _ = _relevance(task, test_rows, seen, all_users)
    keep = [bool(r) for r in rel_all]
    users = [u for u, ok in zip(all_users, keep) if ok]
    if not users:
        raise ValueError(f"no test user has a relevant item under task={task!r} "
                         "(every test item was already in the user's training history)")
    rel, hide = _relevance(task, test_rows, seen, users)
    pairs = sum(len(test_rows[u]) for u in all_users)
    unreachable = None
    if task == "masked-but-counted":
        unreachable = sum(len(test_rows[u] & seen.get(u, set())) for u in all_users) / max(pairs, 1)
    segments = user_segments(train, users, thresholds).reindex(users).to_numpy()
    group = np.where(segments == "cold", "new", "returning")
    buckets = item_buckets(train, cat)
    new_items = buckets == "unseen"
    pop = item_popularity(train, cat)
    tiebreak = tie_order(pop, cat)
    n_train_users = max(train[C.USER].nunique(), 1)
    div = diversity_vecs if diversity_vecs is not None else cat.vectors
    counts = {"test users": len(all_users), "evaluated": len(users), "excluded": len(all_users) - len(users),
              "returning": int((group == "returning").sum()), "new": int((group == "new").sum())}
    per_user, beyond, by_bucket, lists, fallbacks, constant, models = [], [], [], {}, {}, {}, {}
    for name, method in methods.items():
        method = _unfitted_copy(method)
        method.fit(train)
        models[name] = method
        scores = np.asarray(method.score(users), dtype=np.float32)
        if scores.shape != (len(users), len(cat)):
            raise ValueError(f"method {name!r} returned scores of shape {scores.shape}, expected {(len(users), len(cat))}")
        flat = _constant_rows(scores, hide)
        declared = getattr(method, "fallback", None)
        if flat.any() and declared is None:
            raise ValueError(f"method {name!r} gives {int(flat.sum())} of {len(users)} users a constant score row over "
                             f"the candidate items ({int((flat & (group == 'new')).sum())} of them new users) and "
                             "declares no fallback, so their lists would be the arbitrary tie order of the sort. "
                             "Give it a fallback (e.g. fallback='popularity') or evaluate returning users only.")
        constant[name] = int((flat & (group == "returning")).sum())
        fallbacks[name] = getattr(method, "fallback_label", None) or str(declared)
        _, idx = top_k_scores(scores, k, exclude=hide, tiebreak=tiebreak)
        recs = [[int(i) for i in r if i >= 0] for r in idx]
        lists[name] = (users, idx)
        cols = {"method": name, "user": users, "group": group, "segment": segments}
        for metric, fn in RANKING_METRICS.items():
            cols[metric] = fn(recs, rel, k).per_user
        if with_auc:
            cols["auc"] = auc_per_user(scores, rel, exclude=hide)
        new_rel = [{i for i in r if new_items[i]} for r in rel]
        cols["new-item recall"] = [len(set(rc) & nr) / len(nr) if nr else np.nan for rc, nr in zip(recs, new_rel)]
        per_user.append(pd.DataFrame(cols))
        beyond.append({"method": name, "coverage": catalogue_coverage(recs, len(cat)),
                       "diversity (ILD)": intra_list_diversity(recs, div) if div is not None else np.nan,
                       "novelty (bits)": novelty(recs, pop, n_train_users)})
        row = {"method": name}
        for b in ("popular", "long-tail", "unseen"):
            in_b = [{i for i in r if buckets[i] == b} for r in rel]
            if any(in_b):
                row[f"recall@{k} on {b} items"] = recall_at_k(recs, in_b, k).value
        by_bucket.append(row)
    return Evaluation(pd.concat(per_user, ignore_index=True), pd.DataFrame(beyond).set_index("method"),
                      pd.DataFrame(by_bucket).set_index("method"), k, task, lists, fallbacks, counts, unreachable,
                      constant, models)


def _unfitted_copy(method):
    """What evaluate fits: :func:`baselines.clone` of a recommender; a deep copy of any other object with fit and
    score (a test's oracle), so the caller's object is never the one fitted."""
    import copy

    from .baselines import Recommender, clone

    return clone(method) if isinstance(method, Recommender) else copy.deepcopy(method)


def _check_same_items(name: str, theirs, ours: Catalogue) -> None:
    """A method's score columns are read as ``ours``'s items: refuse one built on other item ids (or another order)."""
    if theirs is None:
        return
    a, b = np.asarray(theirs.ids, dtype=object), np.asarray(ours.ids, dtype=object)
    if len(a) == len(b) and (a == b).all():
        return
    at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    first = f"row {at}: {a[at]!r} vs {b[at]!r}" if at < min(len(a), len(b)) else f"{len(a)} vs {len(b)} items"
    raise ValueError(f"method {name!r} ranks other item ids than evaluate's catalogue ({first}); its scores would be "
                     "read as the wrong items: build it on the same items, e.g. Catalogue.from_items(items, vectors)")


def _sets(users, rows) -> dict:
    """user -> set of item rows."""
    out: dict = {}
    for u, r in zip(users.tolist(), rows.tolist()):
        out.setdefault(u, set()).add(r)
    return out


def _constant_rows(scores: np.ndarray, hide: list) -> np.ndarray:
    """True for users whose scores over the items they can be shown are all equal."""
    out = np.zeros(len(scores), dtype=bool)
    for u, h in enumerate(hide):
        s = scores[u]
        if h:
            s = np.delete(s, h)
        out[u] = len(s) > 1 and s.max() == s.min()
    return out


def tune(make, grid, train: pd.DataFrame, valid: pd.DataFrame, catalogue, k: int = 10, metric: str = "ndcg",
         task: str = "discovery", group: str = "all") -> tuple[pd.DataFrame, object]:
    """Evaluate ``make(value)`` for each value of ``grid`` on a validation split; return (table, best value).

    ``group="new"`` scores only users with no training history (e.g. to choose a content fallback).
    """
    if metric not in RANKING_METRICS:
        raise ValueError(f"metric must be one of {tuple(RANKING_METRICS)}, got {metric!r}")
    grid = list(grid)
    if not grid:
        raise ValueError("grid is empty: give at least one value to try")
    rows = []
    for value in grid:
        ev = evaluate({str(value): make(value)}, train, valid, catalogue, k, task=task, with_auc=False)
        pu = ev._rows(group)
        if pu.empty:
            raise ValueError(f"the validation split has no {group} users to tune on "
                             f"({ev.users['returning']} returning, {ev.users['new']} new)")
        rows.append({"value": value, metric: float(pu[metric].mean()), "users": int(len(pu))})
    table = pd.DataFrame(rows)
    return table, table.loc[table[metric].idxmax(), "value"]


def choose_fallback(make, options, train: pd.DataFrame, valid: pd.DataFrame, catalogue, k: int = 10,
                    metric: str = "ndcg", default="popularity") -> tuple[pd.DataFrame | None, object]:
    """Pick what a method does for new users on validation *new* users: ``tune(make, options, ..., group="new")``.

    When the validation split has no new users (a per-user split has none), keep ``default`` and return
    ``(None, default)``: there is nothing to choose on.
    """
    try:
        return tune(make, options, train, valid, catalogue, k, metric, group="new")
    except ValueError as e:
        if "no new users" in str(e):
            return None, default
        raise


# ---------------------------------------------------------------------------------------------------------
# sentences and verdicts computed from an Evaluation
# ---------------------------------------------------------------------------------------------------------
def headlines(ev: Evaluation, metric: str = "ndcg", n_boot: int = N_BOOT, seed: int = C.SEED,
              also=("recall",)) -> list[str]:
    """Plain sentences that state what a run shows, computed from it (so a report with other parameters never carries
    a stale story): the task and who was tested, the leader of each user group and the paired verdicts against it,
    what beats popularity, coverage, and which methods reach new items."""
    k = ev.k
    u = ev.users
    out = [f"Task: **{ev.task}**, {u['evaluated']} test users ({u['returning']} returning, {u['new']} new)"
           + (f"; {u['excluded']} excluded because none of their test items was new to them." if u.get("excluded")
              else ".")]
    if ev.unreachable_share is not None:
        out.append(f"{ev.unreachable_share:.0%} of the relevant (user, item) pairs are repeats hidden from the lists: "
                   "no method can hit them, yet they count. This is the masked-but-counted mistake.")
    for group in GROUPS:
        if group != "all" and u.get(group, 0) == 0:
            continue
        best = ev.best(metric, group)
        same = ev.identical(best, metric, group)
        diffs = [ev.compare(m, best, metric, group, n_boot=n_boot, seed=seed) for m in ev.methods
                 if m != best and m not in same]
        tied = [p.a for p in diffs if p.verdict == "tied"]
        mean = ev._rows(group).query("method == @best")[metric].mean()
        n = u['evaluated'] if group == 'all' else u[group]
        if mean == 0:
            out.append(f"No method scores above 0 on {metric}@{k} for the {n} {group} users: nothing to rank them by.")
            continue
        line = f"Best {metric}@{k} for {group} users ({n}): **{best}** ({mean:.4f})"
        if same:
            line += f", and {', '.join(same)} score exactly the same on every one of these users (the same lists)"
        if tied:
            line += "; tied with " + ", ".join(tied) + " (paired 95% interval of the difference covers 0)"
            line += "." if n >= MIN_USERS else f". Only {n} users: too few to tell methods apart."
        elif diffs:
            line += "; every other method is below it (paired 95% intervals of the differences below 0)."
        else:
            line += "."
        out.append(line)
    if "popularity" in ev.methods:
        for mt in [metric] + [m for m in also if m != metric and m in ev.per_user.columns]:
            above, below = [], []
            for m in ev.methods:
                if m == "popularity":
                    continue
                p = ev.compare(m, "popularity", mt, n_boot=n_boot, seed=seed)
                (above if p.lo > 0 else below if p.hi < 0 else []).append(m)
            out.append(f"Above popularity on {mt}@{k} (paired interval above 0): {', '.join(above) if above else 'none'}"
                       + (f"; below it: {', '.join(below)}." if below else "; none below it."))
    cov = ev.beyond["coverage"].drop(labels=["random"], errors="ignore")
    if len(cov):
        out.append(f"Widest catalogue coverage (random aside): **{cov.idxmax()}** ({cov.max():.0%} of items); "
                   f"narrowest: {cov.idxmin()} ({cov.min():.0%}).")
    unseen = [c for c in ev.by_bucket.columns if c.endswith("unseen items")]
    if unseen:
        reach = ev.by_bucket.index[ev.by_bucket[unseen[0]].fillna(0) > 0].tolist()
        out.append("Methods that recommend items with no training interactions at all: "
                   + (", ".join(reach) if reach else "none") + ".")
    return out


MIN_USERS = 30  # below this many users a verdict says "too few users to judge" instead of "tied"


def __getattr__(name):  # the article's claims moved to verdicts.py; old imports keep working
    if name in ("article_verdicts", "_verdict"):
        from . import verdicts

        return getattr(verdicts, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def strategy_table(ev: Evaluation, metric: str = "ndcg", methods=None, n_boot: int = N_BOOT,
                   seed: int = C.SEED) -> pd.DataFrame:
    """Per activity segment, the best method measured in this run (among ``methods``, default all) and its paired
    margin over the runner-up: a strategy derived from results, not written by hand."""
    keep = ev.methods if methods is None else [choice("method", m, ev.methods) for m in methods]
    rows = []
    for seg in [s for s in SEGMENTS if s in set(ev.per_user["segment"])]:
        pu = ev._rows("all", seg)
        pu = pu[pu["method"].isin(keep)]
        means = pu.groupby("method", sort=False)[metric].mean().sort_values(ascending=False, kind="stable")
        best = means.index[0]
        same = [m for m in ev.identical(best, metric, segment=seg) if m in keep]
        rest = [m for m in means.index[1:] if m not in same]
        second = rest[0] if rest else None
        row = {"segment": seg, "users": int(pu["user"].nunique()),
               "best method": best + (f" (= {', '.join(same)}: the same lists)" if same else ""),
               f"{metric}@{ev.k}": round(float(means.iloc[0]), 4)}
        if second is not None:
            p = ev.compare(best, second, metric, segment=seg, n_boot=n_boot, seed=seed)
            row["runner-up"] = second
            row["margin [95% paired interval]"] = f"{p.diff:+.4f} [{p.lo:+.4f}, {p.hi:+.4f}]"
            row["reading"] = ("clear winner" if p.lo > 0 else f"tied with {second}"
                              + ("" if p.n >= MIN_USERS else f" (only {p.n} users)"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("segment")


def profile_recall(train: pd.DataFrame, test: pd.DataFrame, catalogue, k: int = 10,
                   half_life_days: float | None = None):
    """recall@k of a history-mean content recommender on the discovery task, returning users only.

    Returns a :class:`~course_lib.metrics.MetricResult` (its ``per_user`` values, one per evaluated user).
    """
    from .baselines import Content

    ev = evaluate({"content": Content(catalogue, half_life_days=half_life_days, fallback=None)},
                  train, test[test[C.USER].isin(set(train[C.USER]))], catalogue, k, with_auc=False)
    from .metrics import MetricResult

    v = ev.per_user["recall"].to_numpy()
    return MetricResult(float(v.mean()), len(v), ev.users["excluded"], v)


def evaluation_to_dict(ev: Evaluation, metrics=("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc"),
                       n_boot: int = N_BOOT, seed: int = C.SEED) -> dict:
    """A JSON-ready summary (schema 2): per method and user group (all / returning / new) and segment, each metric's
    mean and 95% interval; coverage, diversity, novelty, per-popularity-bucket recall; the declared fallback.
    Non-finite numbers become ``None`` when written with ``files.write_json``."""
    out = {}
    pu = ev.per_user

    def summary(v):
        v = v.dropna()
        if not len(v):
            return {"mean": None, "lo": None, "hi": None, "users": 0}
        lo, hi = bootstrap_ci(v, n_boot, seed)
        return {"mean": float(v.mean()), "lo": lo, "hi": hi, "users": int(len(v))}

    for method in ev.methods:
        g = pu[pu["method"] == method]
        entry = {"fallback": ev.fallbacks.get(method), "users": int(len(g)), "overall": {}, "groups": {},
                 "segments": {}}
        for m in metrics:
            entry["overall"][m] = summary(g[m])
        for grp in ("returning", "new"):
            gg = g[g["group"] == grp]
            entry["groups"][grp] = {"users": int(len(gg)), **{m: summary(gg[m]) for m in metrics}}
        for seg, gs in g.groupby("segment", sort=False):
            entry["segments"][seg] = {"users": int(len(gs)), **{m: summary(gs[m]) for m in metrics}}
        entry["new_item_recall"] = summary(g["new-item recall"])
        entry["beyond"] = {k: float(v) for k, v in ev.beyond.loc[method].items()}
        entry["by_item_popularity"] = {k: float(v) for k, v in ev.by_bucket.loc[method].items()}
        entry["returning_users_with_constant_scores"] = ev.constant_rows.get(method, 0)
        out[method] = entry
    return {"k": ev.k, "task": ev.task, "users": ev.users, "unreachable_share": ev.unreachable_share,
            "metrics": list(metrics), "groups": list(GROUPS),
            "segments": [s for s in SEGMENTS if s in set(pu["segment"])], "methods": out}


def per_user_to_csv(ev: Evaluation, path) -> dict:
    """Write ``ev.per_user`` (one row per (method, user): group, segment, every metric) as CSV, atomically; return
    ``{"file", "rows", "columns"}`` for metrics.json. Floats keep full precision, so a later paired comparison
    (``python -m course_lib compare``) sees exactly the values this run measured; a metric that is undefined for a
    user (e.g. new-item recall with no new item to find) is an empty cell."""
    from pathlib import Path

    from .files import atomic_write

    path = Path(path)
    atomic_write(path, ev.per_user.to_csv(index=False, lineterminator="\n"))
    return {"file": path.name, "rows": int(len(ev.per_user)), "columns": [str(c) for c in ev.per_user.columns]}


def paired_to_dict(ev: Evaluation, metric: str = "ndcg", n_boot: int = N_BOOT, seed: int = C.SEED) -> list[dict]:
    """Paired differences for metrics.json: in each user group, every method against that group's best method and
    against popularity."""
    rows = []
    for group in GROUPS:
        if group != "all" and ev.users.get(group, 0) == 0:
            continue
        best = ev.best(metric, group)
        refs = [best] + (["popularity"] if "popularity" in ev.methods and best != "popularity" else [])
        for ref in refs:
            for m in ev.methods:
                if m != ref:
                    rows.append({"reference": "best" if ref == best else "popularity",
                                 **ev.compare(m, ref, metric, group, n_boot=n_boot, seed=seed).to_dict()})
    return rows
