"""Metrics against hand-computed values and independent references (sklearn, torchmetrics, brute force)."""
import numpy as np
import pytest
import torch

from course_lib import metrics as M


# user 0: list [a, b, c, d] = [0, 1, 2, 3], relevant {1, 3, 9}; user 1: list [4, 5, 6, 7], relevant {4}
RECS = [[0, 1, 2, 3], [4, 5, 6, 7]]
REL = [{1, 3, 9}, {4}]


def test_hand_computed_values():
    k = 4
    assert M.precision_at_k(RECS, REL, k).value == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert M.recall_at_k(RECS, REL, k).value == pytest.approx((2 / 3 + 1) / 2)
    assert M.hit_rate_at_k(RECS, REL, k).value == 1.0
    assert M.mrr_at_k(RECS, REL, k).value == pytest.approx((1 / 2 + 1) / 2)
    # AP user 0: hits at ranks 2 and 4 -> (1/2 + 2/4) / min(3, 4) = 1/3 ; user 1: 1
    assert M.map_at_k(RECS, REL, k).value == pytest.approx((1 / 3 + 1) / 2)
    # NDCG user 0: (1/log2(3) + 1/log2(5)) / (1 + 1/log2(3) + 1/log2(4)) ; user 1: 1
    u0 = (1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3) + 1 / np.log2(4))
    assert M.ndcg_at_k(RECS, REL, k).value == pytest.approx((u0 + 1) / 2)


def test_excluded_users_are_counted_not_averaged():
    r = M.recall_at_k(RECS + [[1, 2]], REL + [set()], 4)
    assert r.n_users == 2 and r.n_excluded == 1
    assert r.value == M.recall_at_k(RECS, REL, 4).value


def test_padding_is_ignored():
    assert M.precision_at_k([[1, -1, -1]], [{1}], 3).value == pytest.approx(1 / 3)


def random_case(seed, n_users=30, n_items=40, k=7):
    rng = np.random.default_rng(seed)
    scores = rng.random((n_users, n_items))
    rel = [set(rng.choice(n_items, size=rng.integers(1, 6), replace=False).tolist()) for _ in range(n_users)]
    recs = [list(np.argsort(-s)[:k]) for s in scores]
    return scores, rel, recs, k


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ndcg_against_sklearn(seed):
    from sklearn.metrics import ndcg_score

    scores, rel, recs, k = random_case(seed)
    truth = np.zeros_like(scores)
    for u, r in enumerate(rel):
        truth[u, list(r)] = 1
    assert M.ndcg_at_k(recs, rel, k).value == pytest.approx(ndcg_score(truth, scores, k=k), abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_auc_against_sklearn_with_exclusions(seed):
    from sklearn.metrics import roc_auc_score

    scores, rel, _, _ = random_case(seed)
    scores = np.round(scores, 1)  # ties, counted as 1/2 by both
    exclude = [[(u * 3) % 40, (u * 7 + 1) % 40] for u in range(len(rel))]
    ours = M.auc(scores, rel, exclude=exclude)
    ref = []
    for u, r in enumerate(rel):
        keep = np.setdiff1d(np.arange(40), exclude[u])
        y = np.isin(keep, list(r)).astype(int)
        if 0 < y.sum() < len(y):
            ref.append(roc_auc_score(y, scores[u, keep]))
    assert ours.value == pytest.approx(np.mean(ref)) and ours.n_users == len(ref)


@pytest.mark.parametrize("seed", [0, 1])
def test_against_torchmetrics_retrieval(seed):
    from torchmetrics.retrieval import (RetrievalHitRate, RetrievalMAP, RetrievalMRR, RetrievalNormalizedDCG,
                                        RetrievalPrecision, RetrievalRecall)

    scores, rel, recs, k = random_case(seed)
    n_users, n_items = scores.shape
    preds = torch.tensor(scores.ravel(), dtype=torch.float64)
    target = torch.tensor([i in rel[u] for u in range(n_users) for i in range(n_items)])
    indexes = torch.arange(n_users).repeat_interleave(n_items)
    pairs = [(M.precision_at_k, RetrievalPrecision(top_k=k)), (M.recall_at_k, RetrievalRecall(top_k=k)),
             (M.hit_rate_at_k, RetrievalHitRate(top_k=k)), (M.mrr_at_k, RetrievalMRR(top_k=k)),
             (M.ndcg_at_k, RetrievalNormalizedDCG(top_k=k))]
    for ours, ref in pairs:
        assert ours(recs, rel, k).value == pytest.approx(float(ref(preds, target, indexes=indexes)), abs=1e-6), ref
    # torchmetrics' MAP@k divides by the relevant items *found*; ours by min(|R|, k) (the usual AP@k); check by hand
    ap = [sum((sum(1 for j in recs[u][:r] if j in rel[u]) / r) for r in range(1, k + 1) if recs[u][r - 1] in rel[u])
          / min(len(rel[u]), k) for u in range(n_users)]
    assert M.map_at_k(recs, rel, k).value == pytest.approx(np.mean(ap))
    assert RetrievalMAP  # imported to document the difference above


def test_beyond_accuracy_by_hand():
    recs = [[0, 1], [1, 2]]
    assert M.catalogue_coverage(recs, 10) == pytest.approx(0.3)
    v = np.array([[1.0, 0], [0, 1.0], [1.0, 0]])
    # list 1: items 0, 1 orthogonal -> 1 - 0 = 1 ; list 2: items 1, 2 orthogonal -> 1
    assert M.intra_list_diversity(recs, v) == pytest.approx(1.0)
    assert M.intra_list_diversity([[0, 2]], v) == pytest.approx(0.0)
    pop = np.array([9, 0, 4])  # users who had each item, out of 9
    expected = np.mean([-np.log2(10 / 10), -np.log2(1 / 10), -np.log2(1 / 10), -np.log2(5 / 10)])
    assert M.novelty(recs, pop, 9) == pytest.approx(expected)


def test_article_recall_shrinks_with_the_catalogue():
    assert M.article_recall([1, 2, 3], [1, 2], 1000) == pytest.approx(0.002)
    assert M.recall_at_k([[1, 2, 3]], [{1, 2}], 3).value == 1.0


@pytest.mark.parametrize("call,msg", [
    (lambda: M.ndcg_at_k([[1]], [set()], 1), "none of the 1 users has a relevant item"),
    (lambda: M.ndcg_at_k([[1]], [{1}], 0), "k must be >= 1, got 0"),
    (lambda: M.ndcg_at_k([[7, 7, 7]], [{7}], 3), "recommends item 7 more than once"),
    (lambda: M.map_at_k([[1, 2, 1]], [{1}], 3), "more than once"),
    (lambda: M.catalogue_coverage([[0, 1, 5]], 3), r"not item indices in \[0, 3\)"),
    (lambda: M.novelty([[0]], np.array([5.0, 1.0]), 3), r"in \[0, n_users=3\]"),
    (lambda: M.novelty([[0]], np.array([-1.0, 1.0]), 3), "item_popularity must count"),
    (lambda: M.intra_list_diversity([[0, 1]], np.array([[np.nan, 1.0], [1.0, 0.0]])), "NaN or infinite"),
    (lambda: M.auc(np.zeros((1, 3)), [{0}], exclude=[[3]]), r"outside \[0, 3\)"),
    (lambda: M.auc(np.zeros((1, 3)), [{0, 1, 2}]), "both relevant and non-relevant"),
    (lambda: M.auc(np.array([[np.nan, 1, 2]]), [{1}]), "non-finite scores"),
    (lambda: M.intra_list_diversity([[1]], np.eye(3)), "two or more items"),
    (lambda: M.catalogue_coverage([[1]], 0), "n_items must be >= 1, got 0"),
])
def test_errors_are_explicit(call, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        call()
