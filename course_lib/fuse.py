"""Fusing text and image vectors so that one cosine mixes both modalities with weights you choose.

Not an encoder and not a ranker: it takes finished vectors and returns vectors.

The article writes ``alpha * text + beta * image`` after adding a 768-d text vector to an image vector and slicing
the sum. Vectors from two models live in different spaces (and usually have different sizes), so adding them has no
meaning. The exact alternative: L2-normalise each block, scale it by ``sqrt(weight)``, and concatenate. Then, for the
fused vectors of two items,

    cos(fused_a, fused_b) = (alpha * cos_text(a, b) + beta * cos_image(a, b)) / (alpha + beta)

because the cross terms between blocks never meet in a dot product.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from . import checks


def _as_matrix(x, name: str) -> np.ndarray:
    if x is None:
        raise TypeError(f"{name} must be a 2-D array (n_items, dim), got None")
    return checks.matrix(name, x)


def l2_normalize(x, name: str = "vectors") -> np.ndarray:
    """Row-wise unit length. A zero row cannot be normalised and raises instead of turning into NaN."""
    a = _as_matrix(x, name)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    zero = norms[:, 0] < 1e-12
    if zero.any():
        raise ValueError(f"{name} has all-zero row(s) {np.flatnonzero(zero)[:5].tolist()}: a zero vector has no "
                         "direction, so its cosine is undefined. Check those inputs (empty image? failed encode?)")
    return a / norms


def fuse(blocks: Mapping[str, np.ndarray] | Sequence[np.ndarray], weights: Mapping[str, float] | Sequence[float]) -> np.ndarray:
    """Concatenate L2-normalised blocks scaled by ``sqrt(w / sum(w))``; the result has unit length.

    ``fuse({"text": T, "image": I}, {"text": 0.7, "image": 0.3})`` makes dot products equal
    ``0.7 * cos_text + 0.3 * cos_image``. A block with weight 0 is dropped (not merely zeroed).
    """
    if isinstance(blocks, Mapping):
        names = list(blocks)
        if not isinstance(weights, Mapping) or set(weights) != set(names):
            raise ValueError(f"weights must name the same blocks {names}, got {list(weights) if isinstance(weights, Mapping) else weights}")
        mats, ws = [blocks[n] for n in names], [weights[n] for n in names]
        labels = [f"blocks[{n!r}]" for n in names]
    else:
        if isinstance(blocks, np.ndarray):
            raise TypeError(f"blocks must be a dict or list of 2-D arrays, got one array of shape {blocks.shape}; "
                            "pass [text_vecs, image_vecs]")
        mats = checks.sequence("blocks", blocks, what="2-D arrays")
        ws = checks.sequence("weights", weights, what="numbers")
        names = [f"block {i}" for i in range(len(mats))]
        labels = [f"blocks[{i}]" for i in range(len(mats))]
        if len(mats) != len(ws):
            raise ValueError(f"got {len(mats)} blocks but {len(ws)} weights")
    if not mats:
        raise ValueError("fuse() needs at least one block")
    ws = [checks.number(f"weights[{n!r}]" if isinstance(blocks, Mapping) else f"weights[{i}]", w, min=0)
          for i, (n, w) in enumerate(zip(names, ws))]
    total = sum(ws)
    if total <= 0:
        raise ValueError(f"the weights must sum to > 0, got {dict(zip(names, ws))}")
    mats = [_as_matrix(m, n if isinstance(blocks, Mapping) else label) for m, n, label in zip(mats, names, labels)]
    rows = {len(m) for m in mats}
    if len(rows) != 1:
        raise ValueError(f"blocks have different numbers of rows {dict(zip(names, [len(m) for m in mats]))}; "
                         "each row must be the same item in every block")
    parts = [l2_normalize(m, n) * math.sqrt(w / total) for m, n, w in zip(mats, names, ws) if w > 0]
    return np.concatenate(parts, axis=1).astype(np.float32)


def fuse_text_image(text, image, alpha: float = 0.5, beta: float | None = None) -> np.ndarray:
    """The article's two weights, done right: ``alpha`` for text, ``beta`` (default ``1 - alpha``) for the image."""
    alpha = checks.number("alpha", alpha, min=0, fix="alpha is the text weight, e.g. 0.5")
    beta = 1.0 - alpha if beta is None else checks.number("beta", beta, min=0, fix="beta is the image weight")
    if alpha < 0 or beta < 0 or alpha + beta <= 0:
        raise ValueError(f"alpha and beta must be >= 0 with alpha + beta > 0, got alpha={alpha}, beta={beta}")
    return fuse({"text": text, "image": image}, {"text": alpha, "image": beta})


def article_fusion(text, image, alpha: float, beta: float, text_dim: int = 768) -> np.ndarray:
    """The article's snippet, verbatim in NumPy, kept to show how it fails:

        item_multimodal_features = item_representation + item_image_feature
        item_combined_feature = alpha * item_multimodal_features[:, :768] + beta * item_multimodal_features[:, 768:]

    With a 384-d text vector and a 1280-d image vector the first line raises a broadcasting error; with equal
    sizes it silently adds unrelated coordinates, and the slices then split that sum at an arbitrary column.
    """
    alpha, beta = checks.number("alpha", alpha), checks.number("beta", beta)
    text_dim = checks.integer("text_dim", text_dim, min=1)
    item_multimodal_features = np.asarray(text) + np.asarray(image)
    return alpha * item_multimodal_features[:, :text_dim] + beta * item_multimodal_features[:, text_dim:]


def pca_project(x: np.ndarray, dim: int, fit_rows: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Project vectors to ``dim`` dimensions with PCA (fit on ``fit_rows`` if given), then L2-normalise.

    The alternative to concatenation: bring both modalities to one size so they *can* be added. Their axes still
    mean different things, which is what notebook 02 measures.
    """
    from sklearn.decomposition import PCA

    a = _as_matrix(x, "x")
    dim = checks.integer("dim", dim)
    seed = checks.integer("seed", seed, min=0, max=2**32 - 1)
    if not 1 <= dim <= min(a.shape):
        raise ValueError(f"dim must be between 1 and min(n_items, n_features) = {min(a.shape)}, got {dim}")
    if fit_rows is None:
        fit = a
    else:
        rows = np.asarray(fit_rows)
        if rows.dtype == bool:
            if rows.shape != (len(a),):
                raise ValueError(f"fit_rows as a mask must have {len(a)} entries, got shape {rows.shape}")
            rows = np.flatnonzero(rows)
        rows = checks.index_lists("fit_rows", [rows.tolist()], len(a))[0]
        if len(rows) < dim:
            raise ValueError(f"fit_rows selects {len(rows)} rows, fewer than dim={dim}: PCA needs at least dim rows")
        fit = a[rows]
    key = (_digest(a), _digest(fit), dim, seed)  # a sweep over alpha projects the same vectors again and again
    if key not in _PCA_MEMO:
        if len(_PCA_MEMO) >= 8:
            _PCA_MEMO.pop(next(iter(_PCA_MEMO)))
        _PCA_MEMO[key] = l2_normalize(PCA(n_components=dim, random_state=seed).fit(fit).transform(a),
                                      "projected vectors")
    return _PCA_MEMO[key].copy()


_PCA_MEMO: dict = {}  # (vectors, fit rows, dim, seed) -> projection: small, in memory only


def _digest(a: np.ndarray) -> tuple:
    import hashlib

    a = np.ascontiguousarray(a)
    return a.shape, str(a.dtype), hashlib.blake2b(a.view(np.uint8), digest_size=16).hexdigest()


def fuse_by_projection(text, image, alpha: float = 0.5, dim: int = 128, seed: int = 0) -> np.ndarray:
    """PCA both modalities to ``dim``, then ``alpha * text + (1 - alpha) * image``, then L2-normalise."""
    alpha = checks.number("alpha", alpha, min=0, max=1, fix="alpha is the text weight")
    t, i = pca_project(text, dim, seed=seed), pca_project(image, dim, seed=seed)
    return l2_normalize(alpha * t + (1 - alpha) * i, "fused vectors")


def text_only_query(text_vecs, image_dim: int) -> np.ndarray:
    """Put text-only queries (e.g. self-descriptions) into a text+image space built by :func:`fuse_text_image`.

    A description has no picture, so its image block is zero: its cosine with a fused item is then proportional to
    the text cosine alone (times ``sqrt(alpha)``), which ranks items exactly as text-only search would.
    """
    t = l2_normalize(text_vecs, "text_vecs")
    image_dim = checks.integer("image_dim", image_dim, min=0, fix="the width of the image block (e.g. 1280)")
    return np.concatenate([t, np.zeros((len(t), image_dim), dtype=np.float32)], axis=1)
