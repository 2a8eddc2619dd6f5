"""Cosine top-k: score every item for every query vector and keep the best ``k``, in bounded memory.

Not a profile builder or a metric: it takes query and item vectors (and what to hide) and returns item indices.
The article's ``[item for item, sim in zip(item_representation.tolist(), ...) if sim >= 0.5]`` returns *vectors*
and uses a fixed threshold; ``top_k`` returns item *indices* ranked by score, ``k`` of them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

MEMORY_BUDGET = 256 * 2**20  # bytes of scores held at once: queries are processed in chunks to stay under it


def _tensor(x, name: str, device):
    import torch

    t = torch.as_tensor(np.asarray(x, dtype=np.float32) if not isinstance(x, torch.Tensor) else x).to(device).float()
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, dim), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        bad = (~torch.isfinite(t).all(dim=1)).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name} has NaN or infinite values in row(s) {bad}")
    return t


def top_k(query_vecs, item_vecs, k: int, exclude: Sequence | None = None, candidates: Sequence[int] | None = None,
          chunk_size: int | None = None, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores, indices)``, each ``(n_queries, k)``, best first, by cosine similarity.

    - ``exclude``: for each query, item indices to hide (e.g. items already seen), as a list of lists or a
      SciPy sparse matrix (n_queries x n_items) whose non-zeros are hidden.
    - ``candidates``: rank only these item indices (e.g. cold items); returned indices still refer to ``item_vecs``.
    - ``k`` larger than the items available is capped to that number. Where a query has fewer visible items
      than ``k`` (everything else excluded), the tail is padded with index ``-1`` and score ``-inf``.
    - A zero query or item vector scores 0 against everything (never NaN).
    """
    import torch
    import torch.nn.functional as F

    from .runtime import get_device

    if int(k) != k or k <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    dev = get_device(device)
    q = F.normalize(_tensor(query_vecs, "query_vecs", dev), dim=1)
    items = F.normalize(_tensor(item_vecs, "item_vecs", dev), dim=1)
    if q.shape[1] != items.shape[1]:
        raise ValueError(f"query dim {q.shape[1]} != item dim {items.shape[1]}: both must come from the same encoder/fusion")
    n_items = items.shape[0]
    cand = None
    if candidates is not None:
        cand = np.unique(np.asarray(candidates, dtype=np.int64))
        if len(cand) == 0:
            raise ValueError("candidates is empty: nothing to rank")
        if cand.min() < 0 or cand.max() >= n_items:
            raise ValueError(f"candidates must be item indices in [0, {n_items}), got values {cand.min()}..{cand.max()}")
        items = items[torch.as_tensor(cand, device=dev)]
    m = items.shape[0]
    k = int(min(k, m))
    if exclude is not None:
        n_ex = exclude.shape[0] if hasattr(exclude, "shape") else len(exclude)
        if n_ex != q.shape[0]:
            raise ValueError(f"exclude must have one entry per query ({q.shape[0]}), got {n_ex}")
    # position of each item index inside the (possibly restricted) item matrix
    pos = None
    if cand is not None:
        pos = np.full(n_items, -1, dtype=np.int64)
        pos[cand] = np.arange(len(cand))
    chunk = chunk_size or max(1, int(MEMORY_BUDGET // (4 * max(m, 1))))
    out_s = np.empty((q.shape[0], k), dtype=np.float32)
    out_i = np.empty((q.shape[0], k), dtype=np.int64)
    for start in range(0, q.shape[0], chunk):
        stop = min(start + chunk, q.shape[0])
        scores = q[start:stop] @ items.T  # (chunk, m): the only large matrix, bounded by MEMORY_BUDGET
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
