"""Row-wise helpers for matrices of vectors, shared by every stage.

Not a place for model logic: one function, so "normalise each row, leave zero rows at zero" is written once.
"""
from __future__ import annotations

import numpy as np


def unit_rows(x) -> np.ndarray:
    """Each row divided by its L2 norm; an all-zero row stays zero (its cosines are 0, never NaN).

    Keeps the input's float dtype. Use ``fuse.l2_normalize`` instead where a zero row is an error.
    """
    a = np.asarray(x)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
