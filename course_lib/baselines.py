"""Recommenders to beat: random, popularity, item-kNN, EASE; and the content and hybrid recommenders they face.

Not the metrics or the split: each recommender is fitted on a training log and returns a score for every
(user, item); ``rank.top_k_scores`` turns scores into lists. Every recommender has the same two methods:
``fit(train)`` and ``scores(users) -> (n_users, n_items) float32``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import constants as C
from .profiles import description_profiles, history_profiles, item_index
from .vectors import unit_rows


def interaction_matrix(train: pd.DataFrame, items: pd.DataFrame, users, weighted: bool = False) -> sp.csr_matrix:
    """Users × items matrix of the training log (1 per pair, or summed event weights with ``weighted=True``)."""
    index = item_index(items)
    upos = {u: k for k, u in enumerate(users)}
    df = train[train[C.USER].isin(upos)]
    rows = df[C.USER].map(upos).to_numpy()
    cols = df[C.ITEM].map(index).to_numpy()
    vals = df[C.WEIGHT].to_numpy(dtype=np.float32) if weighted and C.WEIGHT in df else np.ones(len(df), np.float32)
    m = sp.csr_matrix((vals, (rows, cols)), shape=(len(users), len(items)), dtype=np.float32)
    if not weighted:
        m.data[:] = 1.0  # duplicates were summed: back to 0/1
    return m


class _Base:
    name = "base"

    def __init__(self, items: pd.DataFrame):
        self.items = items
        self.n_items = len(items)
        self._users: list = []
        self._upos: dict = {}

    def fit(self, train: pd.DataFrame):
        self._users = sorted(train[C.USER].unique())
        self._upos = {u: k for k, u in enumerate(self._users)}
        self._fit(train)
        return self

    def _fit(self, train):  # pragma: no cover - overridden
        pass

    def _history(self, users) -> sp.csr_matrix:
        """Training rows of these users; users unseen in training get an empty row."""
        rows = np.array([self._upos.get(u, -1) for u in users])
        out = sp.lil_matrix((len(users), self.n_items), dtype=np.float32)
        known = rows >= 0
        if known.any():
            sub = self.X[rows[known]]
            out[np.flatnonzero(known)] = sub
        return out.tocsr()

    def __repr__(self):
        return f"{type(self).__name__}()"


class RandomRec(_Base):
    """Uniform random scores: the floor every method must clear."""

    name = "random"

    def __init__(self, items, seed: int = C.SEED):
        super().__init__(items)
        self.seed = seed

    def scores(self, users) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return rng.random((len(users), self.n_items), dtype=np.float32)


class Popularity(_Base):
    """Score = number of training users who interacted with the item (same list for everyone)."""

    name = "popularity"

    def _fit(self, train):
        index = item_index(self.items)
        pairs = train[[C.USER, C.ITEM]].drop_duplicates()
        self.counts = np.bincount(pairs[C.ITEM].map(index), minlength=self.n_items).astype(np.float32)

    def scores(self, users) -> np.ndarray:
        return np.tile(self.counts, (len(users), 1))


class ItemKNN(_Base):
    """Item-based collaborative filtering: cosine between item columns of the 0/1 matrix, ``neighbours`` kept per item.

    score(u, i) = Σ_{j in history(u)} sim(j, i).
    """

    name = "item-kNN"

    def __init__(self, items, neighbours: int = 100, shrink: float = 10.0):
        super().__init__(items)
        if neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, got {neighbours}")
        self.neighbours, self.shrink = neighbours, shrink

    def _fit(self, train):
        self.X = interaction_matrix(train, self.items, self._users)
        co = (self.X.T @ self.X).toarray()
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.shrink + 1e-12)
        np.fill_diagonal(sim, 0)
        if self.neighbours < self.n_items:
            cut = np.argpartition(-sim, self.neighbours, axis=1)[:, self.neighbours:]
            np.put_along_axis(sim, cut, 0, axis=1)
        self.sim = sim.astype(np.float32)

    def scores(self, users) -> np.ndarray:
        return np.asarray(self._history(users) @ self.sim, dtype=np.float32)


class EASE(_Base):
    """EASE (Steck, 2019): a closed-form item-item linear model.

    B = I − P · diagMat(1 / diag(P)), with P = (XᵀX + λI)⁻¹, which makes diag(B) = 0; score = X · B.
    ``lam`` (λ) regularises: larger values trust co-occurrence less.
    """

    name = "EASE"

    def __init__(self, items, lam: float = 200.0):
        super().__init__(items)
        if not lam > 0:
            raise ValueError(f"lam must be > 0, got {lam}")
        self.lam = lam

    def _fit(self, train):
        self.X = interaction_matrix(train, self.items, self._users)
        G = (self.X.T @ self.X).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.lam
        P = np.linalg.inv(G)
        B = -P / np.diag(P)[None, :]
        np.fill_diagonal(B, 0.0)
        self.B = B.astype(np.float32)

    def scores(self, users) -> np.ndarray:
        return np.asarray(self._history(users) @ self.B, dtype=np.float32)


class Content(_Base):
    """Content-based: cosine between the user's profile and each item's vector (text, or fused text + image).

    Profile = recency-weighted mean of history item vectors (``half_life_days``); a user with no history uses
    their self-description (``user_vecs``), and with neither, popularity.
    """

    name = "content"

    def __init__(self, items, item_vecs: np.ndarray, half_life_days: float | None = None,
                 user_vecs: dict | None = None):
        super().__init__(items)
        if len(item_vecs) != len(items):
            raise ValueError(f"got {len(item_vecs)} item vectors for {len(items)} items")
        v = np.asarray(item_vecs, dtype=np.float32)
        self.item_vecs = unit_rows(v)
        self.half_life_days = half_life_days
        self.user_vecs = user_vecs or {}
        dims = {len(np.asarray(v)) for v in self.user_vecs.values()}
        if dims and dims != {self.item_vecs.shape[1]}:
            raise ValueError(f"user_vecs have dimension {sorted(dims)} but item vectors {self.item_vecs.shape[1]}; "
                             "for a fused item space map descriptions with fuse.text_only_query()")

    def _fit(self, train):
        self.train = train
        self._pop = Popularity(self.items).fit(train).counts

    def profiles(self, users) -> tuple[np.ndarray, np.ndarray]:
        """``(profiles, source)`` with source 'history', 'description' or 'none' per user."""
        prof, has = history_profiles(self.train, self.item_vecs, item_index(self.items), users=users,
                                     half_life_days=self.half_life_days)
        source = np.where(has, "history", "none").astype(object)
        for k, u in enumerate(users):
            if not has[k] and u in self.user_vecs:
                prof[k] = self.user_vecs[u]
                source[k] = "description"
        return prof, source

    def scores(self, users) -> np.ndarray:
        prof, source = self.profiles(users)
        s = unit_rows(prof) @ self.item_vecs.T
        none = source == "none"
        if none.any():  # nothing known: popularity, scaled into the cosine range
            s[none] = self._pop / max(self._pop.max(), 1.0)
        return s.astype(np.float32)


def _standardise(s: np.ndarray) -> np.ndarray:
    """Per-user z-scores, so scores on different scales can be blended (a constant row becomes 0)."""
    mu = s.mean(axis=1, keepdims=True)
    sd = s.std(axis=1, keepdims=True)
    return np.where(sd > 1e-12, (s - mu) / np.maximum(sd, 1e-12), 0.0).astype(np.float32)


class Hybrid(_Base):
    """weight · z(content) + (1 − weight) · z(collaborative), z = per-user standardisation.

    ``weight`` is the content share; tune it on a validation split (``evaluate.tune``).
    """

    name = "hybrid"

    def __init__(self, items, content: Content, collaborative: _Base, weight: float = 0.5):
        super().__init__(items)
        if not 0 <= weight <= 1:
            raise ValueError(f"weight must be in [0, 1], got {weight}")
        self.content, self.collaborative, self.weight = content, collaborative, weight

    def _fit(self, train):
        self.content.fit(train)
        self.collaborative.fit(train)

    def scores(self, users) -> np.ndarray:
        s = np.zeros((len(users), self.n_items), dtype=np.float32)
        if self.weight > 0:
            s += self.weight * _standardise(self.content.scores(users))
        if self.weight < 1:
            s += (1 - self.weight) * _standardise(self.collaborative.scores(users))
        return s


__all__ = ["EASE", "Content", "Hybrid", "ItemKNN", "Popularity", "RandomRec", "interaction_matrix",
           "description_profiles"]
