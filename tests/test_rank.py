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
    ({"k": 0}, "k must be >= 1, got 0"),
    ({"k": 2.5}, "k must be an integer, got 2.5"),
    ({"k": None}, "k must be an integer, got None"),
    ({"k": 3, "exclude": [[-2]] * 37}, r"outside \[0, 101\)"),
    ({"k": 3, "candidates": []}, "candidates is empty"),
    ({"k": 3, "candidates": [0, 500]}, r"candidates holds item index 500, outside \[0, 101\)"),
    ({"k": 3, "exclude": [[1]]}, r"one entry per query \(37\), got 1"),
])
def test_bad_arguments(data, kwargs, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
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


def test_padding_is_never_read_as_the_last_item(data):
    q, items = data
    _, plain = top_k(q[:1], items, 101)
    _, padded = top_k(q[:1], items, 101, exclude=[[-1]])
    np.testing.assert_array_equal(plain, padded)  # -1 pads lists; it must not hide item 100


def test_top_k_scores_breaks_ties_by_the_documented_rule():
    from course_lib.catalogue import Catalogue
    from course_lib.rank import tie_order, top_k_scores

    cat = Catalogue.from_items(["10", "9", "2", "1"])  # ids that sort differently as text and as numbers
    pop = np.array([0.0, 3.0, 3.0, 1.0])
    tb = tie_order(pop, cat)
    # constant row: popularity first (rows 1 and 2 tie at 3: id 2 < id 9), then id 1, then id 10
    _, i = top_k_scores(np.zeros((1, 4)), 4, tiebreak=tb)
    assert i[0].tolist() == [2, 1, 3, 0]
    # a real score always wins over the tie-break, and equal scores keep the rule
    _, i = top_k_scores(np.array([[0.5, 0.1, 0.1, 0.1]]), 3, tiebreak=tb)
    assert i[0].tolist() == [0, 2, 1]
    # without a tie-break: item row order, never torch's arbitrary order
    _, i = top_k_scores(np.zeros((2, 4)), 4, exclude=[[1], []])
    assert i.tolist() == [[0, 2, 3, -1], [0, 1, 2, 3]]
    with pytest.raises(ValueError, match="NaN or infinite"):
        top_k_scores(np.array([[np.inf, 0.0]]), 1)
