"""Diagnostics of an embedding space: do an item's nearest neighbours share its label; how spread are cosines.

Not recommendation metrics (see ``metrics.py`` for lists scored against held-out interactions): these look at
vectors and labels only, to compare encoders and poolings before any user is involved.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def neighbour_precision(vectors, labels, k: int = 10) -> float:
    """Mean over items of the share of their ``k`` nearest neighbours (cosine, itself excluded) with the same label."""
    from .rank import top_k

    labels = np.asarray(labels)
    n = len(labels)
    if len(vectors) != n:
        raise ValueError(f"got {len(vectors)} vectors but {n} labels")
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}], got {k}")
    _, idx = top_k(vectors, vectors, k, exclude=[[i] for i in range(n)])
    return float((labels[idx] == labels[:, None]).mean())


def pair_cosines(vectors, labels, n_pairs: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Cosines of random pairs, tagged ``same`` (same label) or ``different``: anisotropy made visible.

    A good space puts unrelated pairs near 0 and related ones clearly above; an anisotropic one puts every pair
    in a narrow band near 1, where no fixed threshold separates them.
    """
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(len(v), size=n_pairs), rng.integers(len(v), size=n_pairs)
    keep = a != b
    a, b = a[keep], b[keep]
    cos = (v[a] * v[b]).sum(axis=1)
    return pd.DataFrame({"cosine": cos, "pair": np.where(labels[a] == labels[b], "same", "different")})


def keyword_vs_semantic(encoder, texts, labels, queries: dict) -> pd.DataFrame:
    """For each label, search the texts with its query word two ways and report how much of the label is found.

    - keyword recall: share of the label's texts that contain the query word (case-insensitive);
    - semantic R-precision: encode the query, take as many nearest texts as the label has, and count the hits.
    ``queries`` maps each label to its query word (e.g. ``{"smartwatch": "smartwatch", ...}``).
    """
    from .rank import top_k

    labels = np.asarray(labels)
    lowered = [t.lower() for t in texts]
    item_vecs = encoder.encode(list(texts))
    qv = encoder.encode(list(queries.values()))
    rows = []
    for (label, word), q in zip(queries.items(), qv):
        rel = labels == label
        n = int(rel.sum())
        if n == 0:
            raise ValueError(f"label {label!r} has no texts")
        kw = np.array([word.lower() in t for t in lowered])
        _, idx = top_k(q[None], item_vecs, n)
        rows.append({"label": label, "query": word, "items": n, "keyword recall": (kw & rel).sum() / n,
                     "semantic R-precision": rel[idx[0]].mean()})
    return pd.DataFrame(rows).set_index("label")
