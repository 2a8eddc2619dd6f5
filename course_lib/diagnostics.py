"""Diagnostics of an embedding space: do an item's nearest neighbours share its label; how spread are cosines.

Not recommendation metrics (see ``metrics.py`` for lists scored against held-out interactions): these look at
vectors and labels only, to compare encoders and poolings before any user is involved.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import checks
from .vectors import unit_rows


def _labels(name: str, labels, n: int | None = None) -> np.ndarray:
    """Labels: one per row, no missing ones (a NaN label would never equal itself)."""
    out = np.asarray(checks.sequence(name, labels, what="labels"), dtype=object)
    if n is not None and len(out) != n:
        raise ValueError(f"got {n} vectors but {len(out)} {name}; give one label per vector")
    missing = [i for i, v in enumerate(out) if v is None or (isinstance(v, float) and v != v)]
    if missing:
        raise ValueError(f"{name} has missing values at position(s) {missing[:5]}; fill or drop those rows first")
    return out


def neighbour_precision(vectors, labels, k: int = 10, per_item: bool = False):
    """Mean over items of the share of their ``k`` nearest neighbours (cosine, itself excluded) with the same label.

    ``per_item=True`` returns the share for each item instead of the mean (to break it down by group).
    """
    from .rank import top_k

    vectors = checks.matrix("vectors", vectors)
    labels = _labels("labels", labels, len(vectors))
    n = len(labels)
    k = checks.integer("k", k)
    checks.boolean("per_item", per_item)
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}], got {k}")
    _, idx = top_k(vectors, vectors, k, exclude=[[i] for i in range(n)])
    shares = (labels[idx] == labels[:, None]).mean(axis=1)
    return shares if per_item else float(shares.mean())


def pair_cosines(vectors, labels, n_pairs: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Cosines of random pairs, tagged ``same`` (same label) or ``different``: anisotropy made visible.

    A good space puts unrelated pairs near 0 and related ones clearly above; an anisotropic one puts every pair
    in a narrow band near 1, where no fixed threshold separates them.
    """
    v = unit_rows(checks.matrix("vectors", vectors, dtype=np.float64))
    labels = _labels("labels", labels, len(v))
    n_pairs = checks.integer("n_pairs", n_pairs, min=1)
    seed = checks.integer("seed", seed, min=0, max=2**32 - 1)
    if len(v) < 2:
        raise ValueError(f"vectors must have at least 2 rows to form a pair, got {len(v)}")
    rng = np.random.default_rng(seed)
    a, b = rng.integers(len(v), size=n_pairs), rng.integers(len(v), size=n_pairs)
    keep = a != b
    a, b = a[keep], b[keep]
    cos = (v[a] * v[b]).sum(axis=1)
    return pd.DataFrame({"cosine": cos, "pair": np.where(labels[a] == labels[b], "same", "different")})


def keyword_vs_semantic(encoder, texts, labels, queries: dict) -> pd.DataFrame:
    """For each label, search the texts with its query word two ways and report how much of the label is found.

    - keyword recall: share of the label's texts that contain the query word (case-insensitive);
    - keyword precision: share of the texts containing the word that carry the label (nan if none contains it);
    - keyword matches: how many texts contain the word (the keyword "list" has this length, not R);
    - semantic R-precision: encode the query, take as many nearest texts as the label has (R), and count the hits.
      At a cut-off of R, precision and recall are the same number (hits / R), so R-precision is also the semantic
      recall@R: it compares like-for-like with keyword recall (both divide by R), while keyword precision shows
      what the keyword set, of its own length, pays for its recall.
    ``queries`` maps each label to its query word (e.g. ``{"smartwatch": "smartwatch", ...}``).
    """
    from .rank import top_k

    texts = checks.texts("texts", texts)
    labels = _labels("labels", labels, len(texts))
    queries = checks.mapping("queries", queries, what="label -> query word")
    for label, word in queries.items():
        checks.text(f"queries[{label!r}]", word)
    if not hasattr(encoder, "encode"):
        raise TypeError(f"encoder must have an encode(texts) method (e.g. a TextEncoder), got {type(encoder).__name__}")
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
                     "keyword precision": (kw & rel).sum() / kw.sum() if kw.any() else np.nan,
                     "keyword matches": int(kw.sum()), "semantic R-precision": rel[idx[0]].mean()})
    return pd.DataFrame(rows).set_index("label")


def pooling_report(vectors: dict, labels, groups, k: int = 10, n_pairs: int = 3000, seed: int = 0,
                   threshold: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare embeddings (e.g. one per pooling) on the same items.

    ``labels`` (e.g. subcategory) scores neighbour precision@k; ``groups`` (e.g. category) defines unrelated
    pairs (different group). Returns ``(table, pairs)``: one row per embedding, and the sampled pair cosines.
    """
    vectors = checks.mapping("vectors", vectors, what="name -> (n_items, dim) array")
    k = checks.integer("k", k, min=1)
    n_pairs = checks.integer("n_pairs", n_pairs, min=1)
    threshold = checks.number("threshold", threshold, min=-1, max=1)
    rows, pairs = [], []
    for name, v in vectors.items():
        pc = pair_cosines(v, groups, n_pairs=n_pairs, seed=seed).assign(embedding=name)
        diff = pc.loc[pc["pair"] == "different", "cosine"]
        same = pc.loc[pc["pair"] == "same", "cosine"]
        rows.append({
            "embedding": name,
            f"neighbour precision@{k}": round(neighbour_precision(v, labels, k), 3),
            "mean cos, unrelated pairs": round(float(diff.mean()), 3),
            "mean cos, same-group pairs": round(float(same.mean()), 3),
            f"unrelated pairs with cos >= {threshold}": round(float((diff >= threshold).mean()), 3),
        })
        pairs.append(pc)
    return pd.DataFrame(rows).set_index("embedding"), pd.concat(pairs, ignore_index=True)


def interest_precision(user_vecs, item_vecs, user_interests, item_labels, k: int = 10, per_user: bool = False):
    """Share of each user's top-k items whose label is one of the user's true interests, averaged over users
    (``per_user=True``: the array of each user's share, for a paired comparison)."""
    from .rank import top_k

    user_vecs = checks.matrix("user_vecs", user_vecs)
    item_vecs = checks.matrix("item_vecs", item_vecs, cols=user_vecs.shape[1])
    user_interests = checks.sequence("user_interests", user_interests, what="sets of labels")
    if len(user_vecs) != len(user_interests):
        raise ValueError(f"got {len(user_vecs)} user vectors but {len(user_interests)} interest sets")
    bad = [i for i, s in enumerate(user_interests) if isinstance(s, str) or not hasattr(s, "__iter__")]
    if bad:
        raise TypeError(f"user_interests[{bad[0]}] must be a set of labels, got {user_interests[bad[0]]!r}")
    item_labels = _labels("item_labels", item_labels, len(item_vecs))
    k = checks.integer("k", k, min=1, max=len(item_vecs))
    _, idx = top_k(user_vecs, item_vecs, k)
    shares = np.array([np.isin(item_labels[row], list(s)).mean() for row, s in zip(idx, user_interests)])
    return shares if checks.boolean("per_user", per_user) else float(shares.mean())
