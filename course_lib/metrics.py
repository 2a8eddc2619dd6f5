"""Ranking and beyond-accuracy metrics for recommendation lists, written out to be read.

Not a harness (see ``evaluate``): functions take lists, relevant sets and scores and return numbers. Each docstring
gives the formula. Edge-case policy: users with no relevant item are excluded from the mean and counted in
``n_excluded``; if no user is left, a ``ValueError`` says so (never a silent NaN).

Notation: ``L_u`` the top-k list of user u, ``R_u`` the user's relevant (held-out) items, ``rank(i)`` the 1-based
position of item i in ``L_u``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .checks import integer, matrix
from .vectors import unit_rows


@dataclass
class MetricResult:
    value: float  # mean over users with at least one relevant item
    n_users: int  # users averaged over
    n_excluded: int  # users skipped because they had no relevant item
    per_user: np.ndarray | None = None  # the values averaged, one per included user

    def __float__(self) -> float:
        return self.value


def _clean(rec, u: int) -> list:
    """A list without its padding (``-1`` or ``None`` pad lists shorter than k); a repeated item is an error,
    because counting one item twice would push precision, NDCG and MAP above their maximum."""
    top = [i for i in list(rec) if i is not None and i != -1]
    if len(set(top)) != len(top):
        dup = next(i for i in top if top.count(i) > 1)
        raise ValueError(f"list {u} recommends item {dup!r} more than once; a top-k list must hold distinct items "
                         "(deduplicate it, e.g. list(dict.fromkeys(rec)))")
    return top


# ---- per-user formulas (top = the first k items of the list, rel = set of relevant items) ---------------------
def _precision(top, rel, k):
    return len(set(top) & rel) / k


def _recall(top, rel, k):
    return len(set(top) & rel) / len(rel)


def _hit(top, rel, k):
    return float(bool(set(top) & rel))


def _rr(top, rel, k):
    for r, i in enumerate(top, 1):
        if i in rel:
            return 1.0 / r
    return 0.0


def _ap(top, rel, k):
    hits, total = 0, 0.0
    for r, i in enumerate(top, 1):
        if i in rel:
            hits += 1
            total += hits / r
    return total / min(len(rel), k)


def _ndcg(top, rel, k):
    dcg = sum(1.0 / np.log2(r + 1) for r, i in enumerate(top, 1) if i in rel)
    ideal = sum(1.0 / np.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
    return dcg / ideal


def _f1(top, rel, k):
    hits = len(set(top) & rel)
    return 0.0 if hits == 0 else 2 * hits / (k + len(rel))  # 2PR/(P+R) with P = hits/k, R = hits/|R_u|


def _kind(value) -> str:
    return "text" if isinstance(value, str) else "number" if isinstance(value, (int, float, np.number)) else "other"


def _same_kind(recommended, relevant) -> None:
    """Lists of item rows (numbers) against relevant ids (strings) never match: say so instead of scoring 0.0."""
    rec = next((i for rec in recommended for i in rec if i is not None and i != -1), None)
    rel = next((i for r in relevant for i in r), None)
    if rec is not None and rel is not None and _kind(rec) != _kind(rel):
        raise ValueError(f"the lists hold {type(rec).__name__} entries (e.g. {rec!r}) but the relevant sets hold "
                         f"{type(rel).__name__} (e.g. {rel!r}): they can never match; use the same kind for both, "
                         "e.g. item rows via catalogue.rows(ids)")


def _per_user(recommended: Sequence[Sequence], relevant: Sequence[Iterable], k: int, fn) -> MetricResult:
    if len(recommended) != len(relevant):
        raise ValueError(f"got {len(recommended)} lists but {len(relevant)} relevant sets: one per user")
    k = integer("k", k, min=1)
    _same_kind(recommended, relevant)
    vals, excluded = [], 0
    for u, (rec, rel) in enumerate(zip(recommended, relevant)):
        rel = set(rel)
        if not rel:
            excluded += 1
            continue
        top = _clean(rec, u)[:k]
        vals.append(fn(top, rel, k))
    if not vals:
        raise ValueError(f"none of the {excluded} users has a relevant item: nothing to average "
                         "(check that the test split is not empty and uses the same item ids)")
    arr = np.asarray(vals, dtype=float)
    return MetricResult(float(arr.mean()), len(arr), excluded, arr)


def precision_at_k(recommended, relevant, k: int) -> MetricResult:
    """precision@k = |L_u ∩ R_u| / k (a list shorter than k still divides by k)."""
    return _per_user(recommended, relevant, k, _precision)


def recall_at_k(recommended, relevant, k: int) -> MetricResult:
    """recall@k = |L_u ∩ R_u| / |R_u|: the user's relevant items, not the catalogue size.

    The article divides by the number of all items, which makes recall shrink as the shop grows and is no recall.
    """
    return _per_user(recommended, relevant, k, _recall)


def hit_rate_at_k(recommended, relevant, k: int) -> MetricResult:
    """hit-rate@k = 1 if L_u ∩ R_u is non-empty, else 0."""
    return _per_user(recommended, relevant, k, _hit)


def mrr_at_k(recommended, relevant, k: int) -> MetricResult:
    """MRR@k = 1 / rank of the first relevant item in L_u (0 if none in the top k)."""
    return _per_user(recommended, relevant, k, _rr)


def map_at_k(recommended, relevant, k: int) -> MetricResult:
    """AP@k = (1 / min(|R_u|, k)) · Σ_{r ≤ k, L_u[r] ∈ R_u} precision@r;  MAP@k is its mean over users."""
    return _per_user(recommended, relevant, k, _ap)


def ndcg_at_k(recommended, relevant, k: int) -> MetricResult:
    """NDCG@k = DCG / IDCG with binary gains: DCG = Σ_{r ≤ k, L_u[r] ∈ R_u} 1 / log2(r + 1),
    IDCG = Σ_{r ≤ min(|R_u|, k)} 1 / log2(r + 1) (all relevant items ranked first)."""
    return _per_user(recommended, relevant, k, _ndcg)


def f1_at_k(recommended, relevant, k: int) -> MetricResult:
    """F1@k = 2 · P · R / (P + R) with P = precision@k, R = recall@k (0 when the list hits nothing), per user.

    Equal to 2 · |L_u ∩ R_u| / (k + |R_u|): a harmonic mean, so it sits close to the smaller of P and R.
    The article names F1 (F1分数) among its metrics; for a ranked list it ignores the order inside the top k.
    """
    return _per_user(recommended, relevant, k, _f1)


def classification_accuracy_at_k(recommended, relevant, k: int, n_items: int) -> MetricResult:
    """What *accuracy* means for a classifier, applied to a top-k list: every item of the catalogue is predicted
    relevant (in the top k) or not, and accuracy = (hits + correctly left-out items) / n_items.

    Kept to compare with the article's "accuracy" (准确率 = relevant recommended / recommended), which is precision@k.
    With thousands of items and a handful relevant, leaving everything out already scores close to 1.
    """
    n_items = integer("n_items", n_items, min=1)

    def acc(top, rel, k):
        hits = len(set(top) & rel)
        false_pos, false_neg = len(top) - hits, len(rel) - hits
        return (n_items - false_pos - false_neg) / n_items

    return _per_user(recommended, relevant, k, acc)


def relevant_ranks(scores: np.ndarray, relevant: Sequence[Iterable], exclude: Sequence[Iterable] | None = None) -> list:
    """Per user, the 1-based ranks of its relevant items among the visible ones (``exclude`` hidden), best = 1.

    Ties count one half, as in :func:`auc`: rank = 1 + (items scored higher) + ½ (other items scored the same).
    This is where AUC looks (the whole catalogue) and NDCG does not (only ranks ≤ k).
    """
    from .checks import index_lists

    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (users, items), got shape {scores.shape}")
    if len(scores) != len(relevant):
        raise ValueError(f"got {len(scores)} score rows but {len(relevant)} relevant sets")
    m = scores.shape[1]
    hidden = ([[] for _ in scores] if exclude is None else index_lists("exclude", exclude, m, allow_padding=True))
    out = []
    for row, rel, hid in zip(scores, index_lists("relevant", [list(r) for r in relevant], m), hidden):
        visible = np.ones(m, dtype=bool)
        visible[list(hid)] = False
        rel = [i for i in dict.fromkeys(rel) if visible[i]]
        v = row[visible]
        out.append(np.array([1 + (v > row[i]).sum() + 0.5 * ((v == row[i]).sum() - 1) for i in rel], dtype=float))
    return out


RANKING_METRICS = {
    "precision": precision_at_k, "recall": recall_at_k, "ndcg": ndcg_at_k,
    "map": map_at_k, "mrr": mrr_at_k, "hit_rate": hit_rate_at_k,
}


def auc_per_user(scores: np.ndarray, relevant: Sequence[Iterable], exclude: Sequence[Iterable] | None = None) -> np.ndarray:
    """AUC of each user (see :func:`auc`), ``NaN`` where it is undefined (no relevant or no non-relevant item).

    Vectorised: hidden items get ``-inf`` so they rank below every visible one; a visible item's rank among the
    visible items is then its overall rank minus the number of hidden items.
    """
    from scipy.stats import rankdata

    scores = np.array(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (users, items), got shape {scores.shape}")
    if len(scores) != len(relevant):
        raise ValueError(f"got {len(scores)} score rows but {len(relevant)} relevant sets")
    n, m = scores.shape
    hidden = np.zeros((n, m), dtype=bool)
    from .checks import index_lists

    if exclude is not None:
        for u, row in enumerate(index_lists("exclude", exclude, m, allow_padding=True)):
            hidden[u, row] = True
    pos = np.zeros((n, m), dtype=bool)
    for u, row in enumerate(index_lists("relevant", [list(r) for r in relevant], m)):
        pos[u, row] = True
    pos &= ~hidden
    bad = ~np.isfinite(scores) & ~hidden
    if bad.any():
        raise ValueError(f"user row {int(np.flatnonzero(bad.any(1))[0])} has non-finite scores; AUC needs a finite score "
                         "for every item")
    scores[hidden] = -np.inf
    n_hidden = hidden.sum(1)
    n_pos = pos.sum(1)
    n_neg = m - n_hidden - n_pos
    ranks = rankdata(scores, axis=1) - n_hidden[:, None]  # ties count one half, as in Mann-Whitney U
    out = np.full(n, np.nan)
    ok = (n_pos > 0) & (n_neg > 0)
    num = np.where(pos, ranks, 0.0).sum(1) - n_pos * (n_pos + 1) / 2
    out[ok] = num[ok] / (n_pos[ok] * n_neg[ok])
    return out


def auc(scores: np.ndarray, relevant: Sequence[Iterable], exclude: Sequence[Iterable] | None = None) -> MetricResult:
    """AUC per user = P(score of a random relevant item > score of a random non-relevant one), ties count ½.

    ``scores`` is ``(n_users, n_items)``; items in ``exclude`` (e.g. seen in training) are left out of both groups.
    Computed from ranks (Mann-Whitney U): AUC = (Σ ranks of positives − n_pos(n_pos + 1)/2) / (n_pos · n_neg).
    Users with no relevant item, or with nothing but relevant items, are excluded.
    """
    per = auc_per_user(scores, relevant, exclude)
    ok = ~np.isnan(per)
    if not ok.any():
        raise ValueError(f"none of the {len(per)} users has both relevant and non-relevant items")
    return MetricResult(float(per[ok].mean()), int(ok.sum()), int((~ok).sum()), per[ok])


# ---- beyond accuracy ---------------------------------------------------------------------------------------
def catalogue_coverage(recommended: Sequence[Sequence], n_items: int) -> float:
    """coverage = |∪_u L_u| / n_items: the share of the catalogue that appears in at least one list."""
    n_items = integer("n_items", n_items, min=1)
    seen = {i for u, rec in enumerate(recommended) for i in _clean(rec, u)}
    outside = [i for i in seen if not (isinstance(i, (int, np.integer)) and 0 <= i < n_items)]
    if outside:
        raise ValueError(f"lists hold {len(outside)} entries that are not item indices in [0, {n_items}), "
                         f"e.g. {outside[:3]}; pass item rows (not ids) and the catalogue size as n_items")
    return len(seen) / n_items


def intra_list_diversity(recommended: Sequence[Sequence], item_vecs: np.ndarray) -> float:
    """ILD = mean over users of the mean pairwise (1 − cos) between the items of L_u (lists of ≥ 2 items)."""
    v = unit_rows(matrix("item_vecs", item_vecs, dtype=np.float64))
    vals = []
    for u, rec in enumerate(recommended):
        idx = _clean(rec, u)
        if any(not 0 <= i < len(v) for i in idx):
            raise ValueError(f"list {u} holds an item index outside [0, {len(v)}): {idx}")
        if len(idx) < 2:
            continue
        m = v[idx] @ v[idx].T
        n = len(idx)
        vals.append((n * n - m.sum()) / (n * (n - 1)))  # off-diagonal mean of 1 - cos (diagonal is 1 - 1 = 0)
    if not vals:
        raise ValueError("no list has two or more items: diversity is undefined")
    return float(np.mean(vals))


def novelty(recommended: Sequence[Sequence], item_popularity: np.ndarray, n_users: int) -> float:
    """novelty = mean over recommended items of −log2 p(i), p(i) = (users who had i in training + 1) / (n_users + 1).

    Popular items carry little information (low novelty); long-tail items more. The +1 keeps unseen items finite.
    """
    from .checks import vector

    n_users = integer("n_users", n_users, min=1)
    pop = vector("item_popularity", item_popularity)
    if (pop < 0).any() or (pop > n_users).any():
        raise ValueError(f"item_popularity must count training users per item, in [0, n_users={n_users}]; got values "
                         f"{pop.min():g}..{pop.max():g} (count distinct users, e.g. baselines.item_popularity)")
    p = (pop + 1) / (n_users + 1)
    lists = [_clean(rec, u) for u, rec in enumerate(recommended)]
    outside = [i for rec in lists for i in rec if not (isinstance(i, (int, np.integer)) and 0 <= i < len(p))]
    if outside:
        raise ValueError(f"lists hold entries that are not item indices in [0, {len(p)}) (one per item_popularity "
                         f"entry), e.g. {outside[:3]}; pass item rows (not ids)")
    vals = [-np.log2(p[i]) for rec in lists for i in rec]
    if not vals:
        raise ValueError("all lists are empty: novelty is undefined")
    return float(np.mean(vals))


def article_recall(recommended: Sequence, true_items: Sequence, n_catalogue: int) -> float:
    """The article's formula, kept to compare: relevant items recommended / *all items in the catalogue*."""
    return len(set(recommended) & set(true_items)) / n_catalogue
