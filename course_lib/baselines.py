"""Recommenders: one protocol, the baselines to beat (random, popularity, item-kNN, EASE), and the content and hybrid
recommenders they face.

Not the metrics or the split. Every recommender follows scikit-learn's habits:

- parameters in ``__init__``, data in ``fit(train)``, which returns ``self``; fitted state ends in ``_``;
- ``score(users) -> (n_users, n_items) float32`` and ``recommend(users, k, exclude="seen") -> item rows``;
- a declared ``fallback``: what a user with **no training history** gets. item-kNN and EASE have nothing to say about
  such a user (their score row would be all zeros, and ``torch.topk`` would return its own arbitrary tie order), so
  they fall back to popularity by default. ``fallback=None`` declares "nothing": ``evaluate`` then refuses to rank
  those users rather than report an accident.
- Remaining ties are broken by one rule (``rank.tie_order``): training popularity, then item id.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import constants as C
from .catalogue import Catalogue
from .checks import choice, integer, number
from .profiles import description_profiles, history_profiles
from .rank import tie_order, top_k_scores
from .vectors import unit_rows


def item_popularity(train: pd.DataFrame, catalogue) -> np.ndarray:
    """Per item, the number of distinct training users who interacted with it: the one place popularity is counted."""
    cat = Catalogue.from_items(catalogue)
    pairs = train[[C.USER, C.ITEM]].drop_duplicates()
    return np.bincount(cat.rows(pairs[C.ITEM], what="train item_id"), minlength=len(cat)).astype(np.float32)


def interaction_matrix(train: pd.DataFrame, catalogue, users, weighted: bool = False) -> sp.csr_matrix:
    """Users × items matrix of the training log (1 per pair, or summed event weights with ``weighted=True``)."""
    cat = Catalogue.from_items(catalogue)
    upos = {u: k for k, u in enumerate(users)}
    df = train[train[C.USER].isin(upos)]
    rows = df[C.USER].map(upos).to_numpy()
    cols = cat.rows(df[C.ITEM], what="train item_id")
    vals = df[C.WEIGHT].to_numpy(dtype=np.float32) if weighted and C.WEIGHT in df else np.ones(len(df), np.float32)
    m = sp.csr_matrix((vals, (rows, cols)), shape=(len(users), len(cat)), dtype=np.float32)
    if not weighted:
        m.data[:] = 1.0  # duplicates were summed: back to 0/1
    return m


def _check_log(train: pd.DataFrame, cat: Catalogue) -> pd.DataFrame:
    if not isinstance(train, pd.DataFrame):
        raise TypeError(f"train must be a DataFrame of interactions (user_id, item_id, timestamp), got {type(train).__name__}")
    missing = [c for c in (C.USER, C.ITEM) if c not in train.columns]
    if missing:
        raise ValueError(f"train is missing column(s) {missing}; found {list(train.columns)}")
    if train.empty:
        raise ValueError("train is empty: a recommender needs at least one interaction to fit")
    cat.rows(train[C.ITEM].unique(), what="train item_id")
    return train


class Recommender:
    """The protocol every method follows (see the module docstring). Subclasses implement ``_fit`` and ``_score``."""

    name = "recommender"
    fallbacks: tuple = ("popularity", None)  # what this class can do for a user with no training history

    def __init__(self, catalogue, fallback="popularity"):
        self.catalogue = Catalogue.from_items(catalogue)
        if fallback not in self.fallbacks:
            raise ValueError(f"fallback must be one of {self.fallbacks} for {type(self).__name__}, got {fallback!r}")
        self.fallback = fallback

    @property
    def n_items(self) -> int:
        return len(self.catalogue)

    # ---- fitting ------------------------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame):
        _check_log(train, self.catalogue)
        self.seen_ = None  # built on first use by seen()
        self._train = train[[C.USER, C.ITEM]]
        self.users_ = sorted(train[C.USER].unique())
        self.user_row_ = {u: k for k, u in enumerate(self.users_)}
        self.popularity_ = item_popularity(train, self.catalogue)
        self.tiebreak_ = tie_order(self.popularity_, self.catalogue)
        self._fit(train)
        return self

    def _fit(self, train):  # pragma: no cover - overridden
        pass

    def _check_fitted(self) -> None:
        if not hasattr(self, "users_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call .fit(train) first")

    def has_history(self, users) -> np.ndarray:
        """True for users with at least one training interaction."""
        self._check_fitted()
        return np.array([u in self.user_row_ for u in users], dtype=bool)

    # ---- scoring ------------------------------------------------------------------------------------------
    def score(self, users) -> np.ndarray:
        """``(len(users), n_items)`` float32 scores; users without training history get the fallback's scores."""
        self._check_fitted()
        users = list(users)
        known = self.has_history(users)
        out = np.zeros((len(users), self.n_items), dtype=np.float32)
        if known.any():
            out[known] = self._score([u for u, k in zip(users, known) if k])
        if (~known).any():
            out[~known] = self._score_new([u for u, k in zip(users, known) if not k])
        return out

    def _score(self, users) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _score_new(self, users) -> np.ndarray:
        if self.fallback == "popularity":
            return np.tile(self.popularity_, (len(users), 1))
        return np.zeros((len(users), self.n_items), dtype=np.float32)  # declared: nothing to say

    def recommend(self, users, k: int = 10, exclude="seen") -> np.ndarray:
        """Top-``k`` item rows per user, best first. ``exclude="seen"`` hides each user's training items;
        ``None`` hides nothing; or give one list of item rows per user. Ties: popularity, then item id."""
        self._check_fitted()
        users = list(users)
        if isinstance(exclude, str):
            choice("exclude", exclude, ("seen",))
            exclude = self.seen(users)
        return top_k_scores(self.score(users), k, exclude=exclude, tiebreak=self.tiebreak_)[1]

    def seen(self, users) -> list[list[int]]:
        """Each user's training item rows."""
        self._check_fitted()
        X = self._seen_matrix()
        return [X.indices[X.indptr[r]:X.indptr[r + 1]].tolist() if r >= 0 else []
                for r in (self.user_row_.get(u, -1) for u in users)]

    def _seen_matrix(self) -> sp.csr_matrix:
        if self.seen_ is None:
            self.seen_ = interaction_matrix(self._train, self.catalogue, self.users_)
        return self.seen_

    @property
    def fallback_label(self) -> str:
        """How tables name what new users get."""
        return "none" if self.fallback is None else str(self.fallback)

    def _history(self, users) -> sp.csr_matrix:
        """Training rows of these (known) users."""
        return self.X_[[self.user_row_[u] for u in users]]

    def __repr__(self):
        return f"{type(self).__name__}(fallback={self.fallback!r})"


class RandomRec(Recommender):
    """Uniform random scores: the floor every method must clear. New users: random too (no fallback needed)."""

    name = "random"
    fallbacks = ("random",)

    def __init__(self, catalogue, seed: int = C.SEED):
        super().__init__(catalogue, fallback="random")
        self.seed = integer("seed", seed, min=0)

    def score(self, users) -> np.ndarray:
        self._check_fitted()
        rng = np.random.default_rng(self.seed)
        return rng.random((len(list(users)), self.n_items), dtype=np.float32)


class Popularity(Recommender):
    """Score = number of training users who interacted with the item: the same list for everyone, new users included."""

    name = "popularity"
    fallbacks = ("popularity",)

    def __init__(self, catalogue):
        super().__init__(catalogue, fallback="popularity")

    @property
    def counts(self) -> np.ndarray:
        return self.popularity_

    def score(self, users) -> np.ndarray:
        self._check_fitted()
        return np.tile(self.popularity_, (len(list(users)), 1))


class ItemKNN(Recommender):
    """Item-based collaborative filtering: cosine between item columns of the 0/1 matrix, ``neighbours`` kept per item.

    score(u, i) = Σ_{j in history(u)} sim(j, i). New users: ``fallback`` (popularity by default).
    """

    name = "item-kNN"

    def __init__(self, catalogue, neighbours: int = 100, shrink: float = 10.0, fallback="popularity"):
        super().__init__(catalogue, fallback)
        self.neighbours = integer("neighbours", neighbours, min=1)
        self.shrink = number("shrink", shrink, min=0)

    def _fit(self, train):
        self.X_ = interaction_matrix(train, self.catalogue, self.users_)
        co = (self.X_.T @ self.X_).toarray()
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.shrink + 1e-12)
        np.fill_diagonal(sim, 0)
        if self.neighbours < self.n_items:
            cut = np.argpartition(-sim, self.neighbours, axis=1)[:, self.neighbours:]
            np.put_along_axis(sim, cut, 0, axis=1)
        self.sim_ = sim.astype(np.float32)

    def _score(self, users) -> np.ndarray:
        return np.asarray(self._history(users) @ self.sim_, dtype=np.float32)


class EASE(Recommender):
    """EASE (Steck, 2019): a closed-form item-item linear model.

    B = I − P · diagMat(1 / diag(P)), with P = (XᵀX + λI)⁻¹, which makes diag(B) = 0; score = X · B.
    ``lam`` (λ) regularises: larger values trust co-occurrence less. New users: ``fallback`` (popularity by default).
    """

    name = "EASE"

    def __init__(self, catalogue, lam: float = 200.0, fallback="popularity"):
        super().__init__(catalogue, fallback)
        self.lam = number("lam", lam, above=0)

    def _fit(self, train):
        self.X_ = interaction_matrix(train, self.catalogue, self.users_)
        G = (self.X_.T @ self.X_).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.lam
        P = np.linalg.inv(G)
        B = -P / np.diag(P)[None, :]
        np.fill_diagonal(B, 0.0)
        self.B_ = B.astype(np.float32)

    def _score(self, users) -> np.ndarray:
        return np.asarray(self._history(users) @ self.B_, dtype=np.float32)


class Content(Recommender):
    """Content-based: cosine between the user's profile and each item's vector (text, or fused text + image).

    Profile = recency-weighted mean of history item vectors (``half_life_days``). New users (no history):
    ``fallback="description"`` ranks by their self-description (``user_vecs``; users who wrote nothing get
    popularity), ``"popularity"`` gives every new user the popular list. Which is better is a question for
    validation data (``evaluate.tune(..., group="new")``), not an assumption.
    """

    name = "content"
    fallbacks = ("description", "popularity", None)

    def __init__(self, catalogue, item_vecs=None, half_life_days: float | None = None, user_vecs: dict | None = None,
                 fallback="description"):
        cat = Catalogue.from_items(catalogue, item_vecs)
        super().__init__(cat.with_vectors(unit_rows(cat.require_vectors("Content"))), fallback)
        self.half_life_days = number("half_life_days", half_life_days, above=0, allow_none=True)
        self.user_vecs = dict(user_vecs or {})
        dims = {len(np.asarray(v)) for v in self.user_vecs.values()}
        if dims and dims != {self.catalogue.dim}:
            raise ValueError(f"user_vecs have dimension {sorted(dims)} but item vectors {self.catalogue.dim}; "
                             "for a fused item space map descriptions with fuse.text_only_query()")

    @property
    def item_vecs(self) -> np.ndarray:
        return self.catalogue.vectors

    def _fit(self, train):
        self.train_ = train

    def profiles(self, users) -> tuple[np.ndarray, np.ndarray]:
        """``(profiles, source)`` with source 'history', 'description' or 'none' per user."""
        self._check_fitted()
        users = list(users)
        prof, has = history_profiles(self.train_, self.catalogue, users=users, half_life_days=self.half_life_days)
        source = np.where(has, "history", "none").astype(object)
        if self.fallback == "description":
            for k, u in enumerate(users):
                if not has[k] and u in self.user_vecs:
                    prof[k] = self.user_vecs[u]
                    source[k] = "description"
        return prof, source

    def _score(self, users) -> np.ndarray:
        prof, _ = history_profiles(self.train_, self.catalogue, users=users, half_life_days=self.half_life_days)
        return (unit_rows(prof) @ self.item_vecs.T).astype(np.float32)

    def _score_new(self, users) -> np.ndarray:
        if self.fallback is None:
            return np.zeros((len(users), self.n_items), dtype=np.float32)
        pop = self.popularity_ / max(float(self.popularity_.max()), 1.0)  # scaled into the cosine range
        s = np.tile(pop, (len(users), 1)).astype(np.float32)
        if self.fallback == "description":
            rows = [k for k, u in enumerate(users) if u in self.user_vecs]
            if rows:
                q = unit_rows(np.stack([np.asarray(self.user_vecs[users[k]], dtype=np.float32) for k in rows]))
                s[rows] = q @ self.item_vecs.T
        return s


def _standardise(s: np.ndarray) -> np.ndarray:
    """Per-user z-scores, so scores on different scales can be blended (a constant row becomes 0)."""
    mu = s.mean(axis=1, keepdims=True)
    sd = s.std(axis=1, keepdims=True)
    return np.where(sd > 1e-12, (s - mu) / np.maximum(sd, 1e-12), 0.0).astype(np.float32)


class Hybrid(Recommender):
    """weight · z(content) + (1 − weight) · z(collaborative), z = per-user standardisation.

    ``weight`` is the content share; tune it on a validation split (``evaluate.tune``). New users get the same blend
    of what each part does for them (``fallback="parts"``: e.g. their description and popularity).
    """

    name = "hybrid"
    fallbacks = ("parts",)

    def __init__(self, catalogue, content: Recommender, collaborative: Recommender, weight: float = 0.5):
        super().__init__(catalogue, fallback="parts")
        self.weight = number("weight", weight, min=0, max=1)
        for part, what in ((content, "content"), (collaborative, "collaborative")):
            if not isinstance(part, Recommender):
                raise TypeError(f"{what} must be a recommender (e.g. Content(...), EASE(...)), got {type(part).__name__}")
            if len(part.catalogue) != len(self.catalogue):
                raise ValueError(f"{what} ranks {len(part.catalogue)} items, the hybrid {len(self.catalogue)}")
        self.content, self.collaborative = content, collaborative

    @property
    def fallback_label(self) -> str:
        return f"blend of parts ({self.content.fallback_label} + {self.collaborative.fallback_label})"

    def _fit(self, train):
        self.content.fit(train)
        self.collaborative.fit(train)

    def score(self, users) -> np.ndarray:
        self._check_fitted()
        users = list(users)
        s = np.zeros((len(users), self.n_items), dtype=np.float32)
        if self.weight > 0:
            s += self.weight * _standardise(self.content.score(users))
        if self.weight < 1:
            s += (1 - self.weight) * _standardise(self.collaborative.score(users))
        return s


__all__ = ["EASE", "Content", "Hybrid", "ItemKNN", "Popularity", "RandomRec", "Recommender", "interaction_matrix",
           "item_popularity", "description_profiles"]
