"""top_k against a brute-force argsort, with masks, candidates, chunking and edge cases."""
import numpy as np
import pytest
import scipy.sparse as sp

from course_lib.rank import lists_table, top_k


def brute(q, items, k, exclude=None, candidates=None):
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    itn = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
    s = qn @ itn.T
    allowed = np.ones_like(s, dtype=bool)
    if candidates is not None:
        allowed[:] = False
        allowed[:, candidates] = True
    if exclude is not None:
        for r, seen in enumerate(exclude):
            allowed[r, list(seen)] = False
    s = np.where(allowed, s, -np.inf)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, 1), idx


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(37, 16)), rng.normal(size=(101, 16))


@pytest.mark.parametrize("chunk", [None, 1, 5, 100])
def test_matches_brute_force(data, chunk):
    q, items = data
    s, i = top_k(q, items, 10, chunk_size=chunk)
    bs, bi = brute(q, items, 10)
    np.testing.assert_allclose(s, bs, atol=1e-5)
    np.testing.assert_array_equal(i, bi)


def test_exclude_seen_items_list_and_sparse(data):
    q, items = data
    seen = [list(range(r % 7, 101, 9)) for r in range(len(q))]
    s, i = top_k(q, items, 5, exclude=seen)
    bs, bi = brute(q, items, 5, exclude=seen)
    np.testing.assert_array_equal(i, bi)
    assert all(not set(i[r]) & set(seen[r]) for r in range(len(q)))
    rows = np.concatenate([[r] * len(x) for r, x in enumerate(seen)])
    cols = np.concatenate(seen)
    mat = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(q), len(items)))
    np.testing.assert_array_equal(top_k(q, items, 5, exclude=mat, chunk_size=4)[1], bi)


def test_candidates_return_global_indices(data):
    q, items = data
    cand = [3, 50, 7, 99, 64]
    s, i = top_k(q, items, 3, candidates=cand, exclude=[[50]] * len(q))
    bs, bi = brute(q, items, 3, exclude=[[50]] * len(q), candidates=cand)
    np.testing.assert_array_equal(i, bi)
    assert set(i.ravel()) <= set(cand) - {50}


def test_k_is_capped_and_tail_is_padded(data):
    q, items = data
    s, i = top_k(q[:2], items[:4], 10)
    assert i.shape == (2, 4)
    s, i = top_k(q[:1], items[:4], 4, exclude=[[0, 1, 2]])
    assert i[0, 0] == 3 and list(i[0, 1:]) == [-1, -1, -1] and np.isneginf(s[0, 1:]).all()


def test_zero_vectors_never_give_nan(data):
    q, items = data
    q, items = q.copy(), items.copy()
    q[0] = 0
    items[5] = 0
    s, _ = top_k(q, items, 101)
    assert np.isfinite(s).all() and np.allclose(s[0], 0)


@pytest.mark.parametrize("kwargs,msg", [
    ({"k": 0}, "k must be a positive integer"),
    ({"k": 2.5}, "k must be a positive integer"),
    ({"k": 3, "candidates": []}, "candidates is empty"),
    ({"k": 3, "candidates": [0, 500]}, r"item indices in \[0, 101\)"),
    ({"k": 3, "exclude": [[1]]}, r"one entry per query \(37\), got 1"),
])
def test_bad_arguments(data, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        top_k(*data, **kwargs)


def test_dimension_mismatch_and_nan(data):
    q, items = data
    with pytest.raises(ValueError, match="query dim 16 != item dim 8"):
        top_k(q, items[:, :8], 3)
    bad = q.copy()
    bad[2, 2] = np.nan
    with pytest.raises(ValueError, match=r"query_vecs has NaN or infinite values in row\(s\) \[2\]"):
        top_k(bad, items, 3)


def test_chunks_bound_memory(monkeypatch, data):
    import course_lib.rank as rank

    q, items = data
    monkeypatch.setattr(rank, "MEMORY_BUDGET", 4 * 101 * 3)  # room for 3 rows of scores at a time
    seen = []
    real_topk = __import__("torch").topk
    monkeypatch.setattr("torch.topk", lambda x, k, dim: seen.append(x.shape[0]) or real_topk(x, k, dim=dim))
    top_k(q, items, 4)
    assert max(seen) == 3 and sum(seen) == len(q)


def test_lists_table_returns_items_not_vectors(shop):
    s, i = top_k(np.eye(3, 5), np.eye(5), 2)
    items = shop.items.head(5)
    t = lists_table(items, ["a", "b", "c"], i, s)
    assert list(t.columns[:4]) == ["query", "rank", "item_id", "score"]
    assert t.loc[t["query"] == "b", "item_id"].iloc[0] == items["item_id"].iloc[1]
