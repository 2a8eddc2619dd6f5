"""Helpers the hidden cases share: seeded generators, small logs, rows of very different lengths, comparators."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import constants as C


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _log(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[C.USER, C.ITEM])


def _scaled(rng, n, d):
    """Rows of very different lengths: a dot product ranks them differently from a cosine."""
    return rng.normal(size=(n, d)) * rng.choice([0.05, 1.0, 20.0], size=(n, 1))


def _number(tol: float = 1e-6):
    def compare(got, expected):
        try:
            g = float(got)
        except (TypeError, ValueError):
            return f"expected a number, got {type(got).__name__}"
        if isinstance(expected, float) and math.isnan(expected):
            return None if math.isnan(g) else "expected nan (undefined)"
        return None if math.isclose(g, expected, rel_tol=tol, abs_tol=tol) else f"off by {g - expected:+.3g}"
    return compare


def _unit(x):
    x = np.asarray(x, dtype=float)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)
