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
- ``get_params()`` and :func:`clone` (an unfitted copy with the same parameters), as in scikit-learn, so
  ``evaluate`` and ``tune`` fit copies and leave the caller's objects as they were;
- explanation is part of the protocol: ``contributions(user, item_row)`` gives the exact decomposition of a score over
  the user's history items (:class:`Terms`), or raises :class:`NotDecomposable` for a method whose score is not such a
  sum; ``score_history(user, history)`` scores a modified history without touching the fitted model (``explain``
  removes cited items with it).
- ``ordinal_score = True`` declares a score that is a rank, not a similarity (``serving.MultiInterest``): evaluate
  ranks by it as by any score, but :class:`Hybrid` refuses to blend it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

import copy
import inspect
from dataclasses import dataclass

from . import constants as C
from .catalogue import Catalogue
from .checks import choice, integer, number
from .profiles import description_profiles, event_weights, history_profiles
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


class NotDecomposable(TypeError):
    """The method's score is not a sum over the user's history items, so no item can be cited for it."""


DECOMPOSABLE = "content, multi-interest, item-kNN and EASE"  # the course's methods whose scores decompose


@dataclass(frozen=True)
class Terms:
    """A score's exact decomposition over one user's history: ``values`` sum to ``score``.

    ``rows``: the distinct history item rows; ``values``: their terms. ``score`` is the quantity the terms decompose:
    the model's own score, except where the model says otherwise in ``note`` (multi-interest ranks by slot and
    decomposes the cosine with the interest that retrieved the item, given as ``interest``).
    """

    rows: np.ndarray
    values: np.ndarray
    score: float
    interest: object | None = None  # tiers.Interest that retrieved the item, when the model serves by interest
    note: str | None = None  # how ``score`` relates to the model's ranking score; "{interest}" and "{score:g}" filled in


def sum_by_item(rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum values per distinct item row (an item bought twice contributes once, with both terms)."""
    uniq, inv = np.unique(rows, return_inverse=True)
    return uniq, np.bincount(inv, weights=values, minlength=len(uniq))


class Recommender:
    """The protocol every method follows (see the module docstring). Subclasses implement ``_fit`` and ``_score``,
    and, when their score is a sum over the user's history, ``contributions`` and ``score_history``."""

    name = "recommender"
    fallbacks: tuple = ("popularity", None)  # what this class can do for a user with no training history
    decomposable = False  # True: contributions() gives each score's exact terms over the user's history
    ordinal_score = False  # True: score() is a rank whose values mean nothing beyond their order (Hybrid refuses it)

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
        self.train_ = train[[C.USER, C.ITEM]]  # methods that need more of the log keep all of it in _fit
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
            self.seen_ = interaction_matrix(self.train_, self.catalogue, self.users_)
        return self.seen_

    @property
    def fallback_label(self) -> str:
        """How tables name what new users get."""
        return "none" if self.fallback is None else str(self.fallback)

    def _history(self, users) -> sp.csr_matrix:
        """Training rows of these (known) users."""
        return self.X_[[self.user_row_[u] for u in users]]

    # ---- explanation --------------------------------------------------------------------------------------
    def history(self, user) -> pd.DataFrame:
        """The user's rows of the training log (empty for a user with no history)."""
        self._check_fitted()
        return self.train_[self.train_[C.USER] == user]

    def new_user_source(self, user) -> str:
        """What the fallback builds a new user's scores from: ``"description"`` or ``"popularity"``."""
        return "popularity"

    def contributions(self, user, item_row: int) -> Terms:
        """The exact terms of ``user``'s score for item ``item_row`` over their history items (a user with history).
        Methods whose score is no such sum raise :class:`NotDecomposable`."""
        raise self._not_decomposable()

    def _not_decomposable(self) -> NotDecomposable:
        return NotDecomposable(
            f"{type(self).__name__}'s score is not a sum over the user's history, so explain() has nothing to cite: "
            f"explain() knows {DECOMPOSABLE} models; got {type(self).__name__}. "
            "For a hybrid, explain its parts (hybrid.content, hybrid.collaborative).")

    def score_history(self, user, history: pd.DataFrame) -> np.ndarray:
        """``user``'s scores (one row over all items) had their training history been ``history`` (rows of a log,
        e.g. ``self.history(user)`` with items removed), the fitted model unchanged (not refitted). An empty history
        gets the fallback."""
        self._check_fitted()
        if not self.decomposable:
            raise self._not_decomposable()
        if history.empty:
            return self._score_new([user])[0]
        return self._score_history(user, history)

    def _score_history(self, user, history: pd.DataFrame) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(fallback={self.fallback!r})"

    # ---- parameters (scikit-learn's habit) ----------------------------------------------------------------
    def get_params(self, deep: bool = False) -> dict:
        """The constructor's parameters as this object holds them (``deep=True`` adds those of recommenders it
        holds, as ``part__name``). Fitted state (names ending in ``_``) is never a parameter."""
        out = {}
        for name, p in inspect.signature(type(self).__init__).parameters.items():
            if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[name] = getattr(self, name, p.default)
        if deep:
            for name, value in list(out.items()):
                if isinstance(value, Recommender):
                    out.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
        return out


def clone(model: Recommender) -> Recommender:
    """An unfitted copy of ``model`` with the same parameters (scikit-learn's ``clone``): fitted state (attributes
    ending in ``_``) is left out, recommenders it holds are cloned too, and dicts and lists are copied, so fitting the
    copy never changes ``model``. Parameters are not validated again: they were when ``model`` was made."""
    if not isinstance(model, Recommender):
        raise TypeError(f"clone() needs a recommender (e.g. EASE(catalogue)), got {type(model).__name__}")
    new = copy.copy(model)
    for name, value in list(vars(new).items()):
        if name.endswith("_") and not name.startswith("__"):
            delattr(new, name)
        elif isinstance(value, Recommender):
            setattr(new, name, clone(value))
        elif isinstance(value, (dict, list)):
            setattr(new, name, copy.copy(value))
    return new


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


class _ItemItem(Recommender):
    """A score that is a linear map of the user's 0/1 history row: score(u, i) = Σ_j X[u, j] · W[j, i]."""

    decomposable = True

    def _weights(self) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def contributions(self, user, item_row: int) -> Terms:
        """History item rows and their terms X[u, j] · W[j, i] (W = the kNN similarity or EASE's B)."""
        self._check_fitted()
        x = self._history([user])
        rows = x.indices
        return Terms(rows, np.asarray(x.data, dtype=np.float64) * self._weights()[rows, item_row],
                     float(self.score([user])[0, item_row]))

    def _score_history(self, user, history: pd.DataFrame) -> np.ndarray:
        x = np.zeros(self.n_items, dtype=np.float32)
        x[self.catalogue.rows(history[C.ITEM], what="history item_id")] = 1.0
        return x @ self._weights()


class ItemKNN(_ItemItem):
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

    def _weights(self) -> np.ndarray:
        return self.sim_


class EASE(_ItemItem):
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

    def _weights(self) -> np.ndarray:
        return self.B_


class Content(Recommender):
    """Content-based: cosine between the user's profile and each item's vector (text, or fused text + image).

    Profile = recency-weighted mean of history item vectors (``half_life_days``). New users (no history):
    ``fallback="description"`` ranks by their self-description (``user_vecs``; users who wrote nothing get
    popularity), ``"popularity"`` gives every new user the popular list. Which is better is a question for
    validation data (``evaluate.tune(..., group="new")``), not an assumption.
    """

    name = "content"
    fallbacks = ("description", "popularity", None)
    decomposable = True

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

    def get_params(self, deep: bool = False) -> dict:
        return {**super().get_params(deep), "item_vecs": None}  # the catalogue holds the (unit) vectors

    def _fit(self, train):
        self.train_ = train
        # every known user's profile, in one pass over the log, kept for every later call (explanations and fidelity
        # score one user at a time): the same numbers as history_profiles for those users alone, since each row
        # sums the same events in the same order
        self.profiles_, _ = history_profiles(train, self.catalogue, users=self.users_,
                                             half_life_days=self.half_life_days)

    def _known_profiles(self, users) -> np.ndarray:
        return self.profiles_[[self.user_row_[u] for u in users]]

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
        return (unit_rows(self._known_profiles(users)) @ self.item_vecs.T).astype(np.float32)

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

    def new_user_source(self, user) -> str:
        return "description" if self.fallback == "description" and user in self.user_vecs else "popularity"

    def contributions(self, user, item_row: int) -> Terms:
        """History item rows and their exact terms of the cosine: (w_j / W) (v_j · v_i) / ‖p_u‖."""
        h = self.history(user)
        rows = self.catalogue.rows(h[C.ITEM])
        w = event_weights(h, self.half_life_days, now=self.train_[C.TIMESTAMP].max())
        v = self.item_vecs
        profile = (w[:, None] * v[rows]).sum(0) / w.sum()
        norm = max(float(np.linalg.norm(profile)), 1e-12)
        rows, values = sum_by_item(rows, (w / w.sum()) * (v[rows] @ v[item_row]) / norm)
        return Terms(rows, values, float(self.score([user])[0, item_row]))

    def _score_history(self, user, history: pd.DataFrame) -> np.ndarray:
        rows = self.catalogue.rows(history[C.ITEM], what="history item_id")
        w = event_weights(history, self.half_life_days, now=self.train_[C.TIMESTAMP].max())
        p = (w[:, None] * self.item_vecs[rows]).sum(0)
        return (unit_rows(p[None]) @ self.item_vecs.T)[0]


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
            if part.ordinal_score:
                raise ValueError(f"{what} is a {type(part).__name__}, whose score is a list rank, not a similarity "
                                 "(only its order means anything), so a weighted blend of it would be meaningless; "
                                 "blend a scoring method (e.g. Content, EASE) or compare the two in evaluate")
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


__all__ = ["EASE", "Content", "Hybrid", "ItemKNN", "NotDecomposable", "clone", "Popularity", "RandomRec", "Recommender",
           "Terms", "interaction_matrix", "item_popularity", "description_profiles", "sum_by_item"]
