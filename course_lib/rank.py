"""Cosine top-k: score every item for every query vector and keep the best ``k``, in bounded memory.

Not a profile builder or a metric: it takes query and item vectors (and what to hide) and returns item indices.
The article's ``[item for item, sim in zip(item_representation.tolist(), ...) if sim >= 0.5]`` returns *vectors*
and uses a fixed threshold; ``top_k`` returns item *indices* ranked by score, ``k`` of them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .vectors import unit_rows

MEMORY_BUDGET = 256 * 2**20  # bytes of scores held at once: queries are processed in chunks to stay under it


def _unit_rows(x, name: str, device):
    """Float32 tensor of unit rows; NaN/inf rows raise (found through the norms, cheaper than a full scan).

    A zero row stays zero, so it scores 0 against everything instead of NaN.
    """
    import torch

    if not isinstance(x, torch.Tensor):
        from .checks import matrix

        x = matrix(name, x, finite=False)  # ragged rows and strings get one clear line; NaN rows are found below
        if not x.flags.writeable:  # e.g. a Catalogue's read-only vectors: torch wants a writable buffer
            x = x.copy()
    t = torch.as_tensor(x).to(device).float()
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, dim), got shape {tuple(t.shape)}")
    norms = torch.linalg.vector_norm(t, dim=1)
    bad = ~torch.isfinite(norms)
    if bad.any():
        raise ValueError(f"{name} has NaN or infinite values in row(s) {bad.nonzero().flatten()[:5].tolist()}")
    return t / norms.clamp_min(1e-12).unsqueeze(1)


class ExactIndex:
    """Item vectors normalised once, searched many times: ``ExactIndex(item_vecs).search(query_vecs, k, ...)``.

    ``top_k`` builds one per call; keep an index when you rank the same catalogue repeatedly.
    """

    def __init__(self, item_vecs, device: str = "cpu"):
        from .runtime import get_device

        self.device = get_device(device)
        self.items = _unit_rows(item_vecs, "item_vecs", self.device)

    @classmethod
    def from_unit_rows(cls, unit_items, device: str = "cpu") -> "ExactIndex":
        """An index over rows that are already unit length (``ExactIndex(...).items``), used as they are.

        On the CPU the rows are not copied, even when read-only: a Ray worker searches the item matrix that the
        object store shares between processes (``scale.recommend_all``) instead of holding its own copy.
        """
        import warnings

        import torch

        from .runtime import get_device

        index = cls.__new__(cls)
        index.device = get_device(device)
        with warnings.catch_warnings():  # torch warns that it could write to a read-only array; search never does
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            index.items = torch.as_tensor(unit_items).to(index.device)
        if index.items.ndim != 2 or index.items.dtype != torch.float32:
            raise ValueError(f"unit_items must be a 2-D float32 matrix, got shape {tuple(index.items.shape)} "
                             f"and dtype {index.items.dtype}")
        return index

    def search(self, query_vecs, k: int, exclude: Sequence | None = None, candidates: Sequence[int] | None = None,
               chunk_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """See :func:`top_k`."""
        import torch

        from .checks import indices, integer, sparse_rows

        k = integer("k", k, min=1)
        dev = self.device
        q = _unit_rows(query_vecs, "query_vecs", dev)
        items = self.items
        if q.shape[1] != items.shape[1]:
            raise ValueError(f"query dim {q.shape[1]} != item dim {items.shape[1]}: both must come from the same encoder/fusion")
        n_items = items.shape[0]
        cand = None
        if candidates is not None:
            cand = np.unique(indices("candidates", candidates, n_items))
            if len(cand) == 0:
                raise ValueError("candidates is empty: nothing to rank")
            items = items[torch.as_tensor(cand, device=dev)]
        m = items.shape[0]
        k = int(min(k, m))
        if exclude is not None:
            n_ex = exclude.shape[0] if hasattr(exclude, "shape") else len(exclude)
            if n_ex != q.shape[0]:
                raise ValueError(f"exclude must have one entry per query ({q.shape[0]}), got {n_ex}")
            if hasattr(exclude, "tocsr"):
                sparse_rows("exclude", exclude, q.shape[0], n_items)
            else:  # -1 is padding, never "the last item"
                from .checks import index_lists

                exclude = index_lists("exclude", exclude, n_items, allow_padding=True)
        pos = None  # position of each item index inside the (possibly restricted) item matrix
        if cand is not None:
            pos = np.full(n_items, -1, dtype=np.int64)
            pos[cand] = np.arange(len(cand))
        chunk = chunk_size or max(1, int(MEMORY_BUDGET // (4 * max(m, 1))))
        out_s = np.empty((q.shape[0], k), dtype=np.float32)
        out_i = np.empty((q.shape[0], k), dtype=np.int64)
        items_t = items.T
        for start in range(0, q.shape[0], chunk):
            stop = min(start + chunk, q.shape[0])
            scores = q[start:stop] @ items_t  # (chunk, m): the only large matrix, bounded by MEMORY_BUDGET
            if exclude is not None:
                rows, cols = _exclusions(exclude, start, stop, pos)
                if len(rows):
                    scores[torch.as_tensor(rows, device=dev), torch.as_tensor(cols, device=dev)] = float("-inf")
            s, i = torch.topk(scores, k, dim=1)
            s, i = s.cpu().numpy(), i.cpu().numpy()
            if cand is not None:
                i = cand[i]
            i[~np.isfinite(s)] = -1
            out_s[start:stop], out_i[start:stop] = s, i
        return out_s, out_i


def top_k(query_vecs, item_vecs, k: int, exclude: Sequence | None = None, candidates: Sequence[int] | None = None,
          chunk_size: int | None = None, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores, indices)``, each ``(n_queries, k)``, best first, by cosine similarity.

    - ``exclude``: for each query, item indices to hide (e.g. items already seen), as a list of lists or a
      SciPy sparse matrix (n_queries x n_items) whose non-zeros are hidden.
    - ``candidates``: rank only these item indices (e.g. cold items); returned indices still refer to ``item_vecs``.
    - ``k`` larger than the items available is capped to that number. Where a query has fewer visible items
      than ``k`` (everything else excluded), the tail is padded with index ``-1`` and score ``-inf``.
    - A zero query or item vector scores 0 against everything (never NaN).
    - Queries are processed in chunks so the score block never exceeds ``MEMORY_BUDGET`` bytes.
    """
    from .checks import integer

    k = integer("k", k, min=1)
    return ExactIndex(item_vecs, device).search(query_vecs, k, exclude, candidates, chunk_size)


def top_k_loop(query_vecs, item_vecs, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed-style way, for comparison only: a Python loop over users and items, one cosine at a time."""
    import math

    q, items = np.asarray(query_vecs, dtype=np.float64).tolist(), np.asarray(item_vecs, dtype=np.float64).tolist()
    out_s, out_i = [], []
    for u in q:
        nu = math.sqrt(sum(x * x for x in u)) or 1.0
        sims = []
        for j, it in enumerate(items):
            ni = math.sqrt(sum(x * x for x in it)) or 1.0
            sims.append((sum(a * b for a, b in zip(u, it)) / (nu * ni), j))
        sims.sort(key=lambda t: -t[0])
        out_s.append([s for s, _ in sims[:k]])
        out_i.append([j for _, j in sims[:k]])
    return np.array(out_s, dtype=np.float32), np.array(out_i, dtype=np.int64)


def tie_order(popularity, catalogue=None) -> np.ndarray:
    """The kit's one tie-breaking rule as a per-item priority (0 first): higher training popularity first, then the
    smaller item id (ids compared as numbers when they all are integers). Pass it as ``tiebreak=`` to
    :func:`top_k_scores`; ``evaluate`` and every recommender's ``recommend`` use it."""
    pop = np.asarray(popularity, dtype=np.float64)
    ids = catalogue.id_order if catalogue is not None else np.arange(len(pop))
    order = np.lexsort((ids, -pop))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def top_k_scores(scores, k: int, exclude: Sequence | None = None, candidates: Sequence[int] | None = None,
                 tiebreak: Sequence[int] | None = None, chunk_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`top_k`, for a ready ``(n_users, n_items)`` score matrix (collaborative filtering, hybrids).

    - Equal scores are ordered by ``tiebreak`` (a per-item priority, lower first; see :func:`tie_order`), else by
      item index: never by the arbitrary order of ``torch.topk``, so a constant row gives a documented list.
    - Same masks as :func:`top_k`; where a user has fewer visible items than ``k`` the tail is padded with index
      ``-1`` and score ``-inf``. Scores must be finite (hide items with ``exclude=``, not with ``-inf``).
    """
    from .checks import index_lists, indices, integer, matrix, sparse_rows

    s_all = matrix("scores", scores, finite=False)  # (users, items)
    bad = ~np.isfinite(s_all)
    if bad.any():
        rows = np.flatnonzero(bad.any(1))[:5].tolist()
        raise ValueError(f"scores contain NaN or infinite values in row(s) {rows}; scores must be finite "
                         "(to hide items use exclude=, not -inf)")
    k = integer("k", k, min=1)
    n, m = s_all.shape
    if exclude is not None:
        n_ex = exclude.shape[0] if hasattr(exclude, "shape") else len(exclude)
        if n_ex != n:
            raise ValueError(f"exclude must have one entry per user ({n}), got {n_ex}")
        if hasattr(exclude, "tocsr"):
            sparse_rows("exclude", exclude, n, m)
        else:
            exclude = index_lists("exclude", exclude, m, allow_padding=True)
    allowed = None
    if candidates is not None:
        cand = np.unique(indices("candidates", candidates, m))
        if len(cand) == 0:
            raise ValueError(f"candidates must be a non-empty set of item indices in [0, {m})")
        allowed = np.zeros(m, dtype=bool)
        allowed[cand] = True
        k = min(k, len(cand))
    k = int(min(k, m))
    tb = np.arange(m, dtype=np.int64) if tiebreak is None else np.asarray(tiebreak, dtype=np.int64)
    if tb.shape != (m,):
        raise ValueError(f"tiebreak must give one priority per item ({m}), got shape {tb.shape}")
    out_s = np.empty((n, k), dtype=np.float32)
    out_i = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        block = s_all[start:stop]
        hidden = np.zeros(block.shape, dtype=bool)
        if allowed is not None:
            hidden[:, ~allowed] = True
        if exclude is not None:
            rows, cols = _exclusions(exclude, start, stop, None)
            hidden[rows, cols] = True
        # sort keys, last is primary: visible first, then higher score, then the tie-break priority
        order = np.lexsort((np.broadcast_to(tb, block.shape), -block, hidden), axis=-1)[:, :k]
        v = np.take_along_axis(block, order, axis=1).astype(np.float32)
        gone = np.take_along_axis(hidden, order, axis=1)
        order[gone] = -1
        v[gone] = -np.inf
        out_s[start:stop], out_i[start:stop] = v, order
    return out_s, out_i


def above_threshold(query_vecs, item_vecs, threshold: float = 0.5) -> list[np.ndarray]:
    """The article's recipe, for teaching only: every item with cosine >= ``threshold``, in item order.

    How many items pass depends on the model and the pooling, not on the user: see notebooks 03 and 05.
    """
    from .checks import matrix, number

    threshold = number("threshold", threshold, min=-1, max=1, fix="a cosine lies in [-1, 1]")
    q = unit_rows(matrix("query_vecs", query_vecs))
    v = unit_rows(matrix("item_vecs", item_vecs, cols=q.shape[1]))
    return [np.flatnonzero(row >= threshold) for row in q @ v.T]


def ann_index(item_vecs, m: int = 32, ef_search: int = 64):
    """An approximate nearest-neighbour index (faiss HNSW, inner product on normalised vectors).

    Needs ``pip install faiss-cpu``; returns an object with ``search(query_vecs, k) -> (scores, indices)``.
    """
    try:
        import faiss
    except ImportError:
        raise ImportError("the ANN path needs faiss: pip install faiss-cpu (exact top_k needs nothing)") from None
    from .checks import integer, matrix

    v = np.ascontiguousarray(unit_rows(matrix("item_vecs", item_vecs, allow_empty=False)))
    m, ef_search = integer("m", m, min=2), integer("ef_search", ef_search, min=1)
    index = faiss.IndexHNSWFlat(v.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = ef_search
    index.add(v)

    class _Index:
        def search(self, query_vecs, k):
            q = np.ascontiguousarray(unit_rows(matrix("query_vecs", query_vecs, cols=v.shape[1])))
            return index.search(q, integer("k", k, min=1))

    return _Index()


def recall_vs_exact(approx_indices, exact_indices) -> float:
    """Share of the exact top-k that the approximate top-k also returns (ANN recall@k)."""
    a, e = np.asarray(approx_indices), np.asarray(exact_indices)
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, e)]))


def _exclusions(exclude, start: int, stop: int, pos):
    if hasattr(exclude, "tocsr"):  # scipy sparse
        sub = exclude.tocsr()[start:stop].tocoo()
        rows, cols = sub.row.astype(np.int64), sub.col.astype(np.int64)
    else:
        rows_l, cols_l = [], []
        for r, seen in enumerate(exclude[start:stop]):
            seen = np.asarray(list(seen) if seen is not None else [], dtype=np.int64)
            rows_l.append(np.full(len(seen), r, dtype=np.int64))
            cols_l.append(seen)
        rows = np.concatenate(rows_l) if rows_l else np.zeros(0, np.int64)
        cols = np.concatenate(cols_l) if cols_l else np.zeros(0, np.int64)
    if pos is not None:
        cols = pos[cols]
        keep = cols >= 0
        rows, cols = rows[keep], cols[keep]
    return rows, cols


def lists_table(items, query_ids, indices, scores=None, columns=("title", "subcategory")) -> "pd.DataFrame":
    """A tidy table of ranked lists: one row per (query, rank) with the item's id and chosen columns.

    This is what the article's comprehension should have returned: items, not their vectors.
    """
    import pandas as pd

    from . import constants as C

    indices = np.asarray(indices)
    if len(query_ids) != len(indices):
        raise ValueError(f"got {len(query_ids)} query ids for {len(indices)} lists")
    cols = [c for c in columns if c in items.columns]
    rows = []
    for qi, q in enumerate(query_ids):
        for r, i in enumerate(indices[qi]):
            if i < 0:
                continue
            row = {"query": q, "rank": r + 1, C.ITEM: items[C.ITEM].iloc[i]}
            if scores is not None:
                row["score"] = round(float(scores[qi][r]), 3)
            row.update({c: items[c].iloc[i] for c in cols})
            rows.append(row)
    return pd.DataFrame(rows)
