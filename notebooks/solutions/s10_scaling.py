"""Worked solutions for 10_scaling's exercises (tested in tests/test_scale.py and tests/test_exercises.py)."""
from course_lib import scale


def memory_ratio(table):
    """The exact matrix's memory over IVF-PQ's."""
    exact = table.loc[table["index"] == "exact", "MiB"].iloc[0]
    ivfpq = table.loc[table["index"] == "IVF-PQ", "MiB"].iloc[0]
    return exact / ivfpq


def recall_gain(table, k=10):
    """HNSW's recall@k at the largest efSearch minus at the smallest (the rows are in the order searched)."""
    hnsw = table[table["index"] == "HNSW"]
    return hnsw[f"recall@{k}"].iloc[-1] - hnsw[f"recall@{k}"].iloc[0]


def first_user_items(profiles, catalogue, seen, n_users=5, k=3):
    """The first user's list from recommend_all on the first ``n_users`` users, as item ids."""
    _, idx = scale.recommend_all(profiles[:n_users], catalogue, k, exclude=seen[:n_users])
    return catalogue.ids[idx[0]].tolist()


def chunked_top_k(query_vecs, item_vecs, k, chunk_size):
    """Exercise 1: the exact cosine top-k, chunk_size items at a time, with a running top-k (ties: lower index)."""
    import numpy as np

    q = query_vecs / np.linalg.norm(query_vecs, axis=1, keepdims=True)
    v = item_vecs / np.linalg.norm(item_vecs, axis=1, keepdims=True)
    best_s, best_i = np.empty((len(q), 0)), np.empty((len(q), 0), dtype=np.int64)
    for start in range(0, len(v), chunk_size):
        s = q @ v[start:start + chunk_size].T
        cand_s = np.hstack([best_s, s])
        cand_i = np.hstack([best_i, np.broadcast_to(np.arange(start, start + s.shape[1]), s.shape)])
        order = np.lexsort((cand_i, -cand_s), axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    return best_i


def ann_recall(approx_indices, exact_indices):
    """Exercise 2: mean over queries of the share of the exact top-k the approximate list also returns."""
    import numpy as np

    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx_indices, exact_indices)]))


def user_chunks(n_users, n_chunks):
    """Exercise 3: balanced, ordered (start, stop) spans covering every user once."""
    k = min(n_chunks, n_users)
    base, extra = divmod(n_users, k)
    spans, start = [], 0
    for c in range(k):
        stop = start + base + (1 if c < extra else 0)
        spans.append((start, stop))
        start = stop
    return spans
