"""Registration-based recommending (注册资料): popularity among the training users who registered like this user.

Not a taste model: it reads the users table's registration columns (MovieLens-100k's ``u.user``: age, gender,
occupation, zip code), never a history, so it is the baseline for users who have just signed up. A dataset without
such columns (the shop) is refused, naming the missing column.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import constants as C
from .baselines import Recommender
from .checks import frame, integer, sequence

# MovieLens-1M's own age bands (its README: under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+): the lower bounds
AGE_BANDS = (18, 25, 35, 45, 50, 56)
AGE = "age"  # the one column that is banded before grouping; every other column is grouped by its value
LEVELS = (("age", "occupation"), ("age",))  # most specific group first; the global list comes after the last


def age_band(age, bands=AGE_BANDS) -> pd.Series:
    """Each age as its band's label ("<18", "18-24", ..., "56+"); a missing or non-numeric age is missing (NaN)."""
    a = pd.to_numeric(pd.Series(age), errors="coerce")
    edges = [-np.inf, *bands, np.inf]
    labels = [f"<{bands[0]}"] + [f"{lo}-{hi - 1}" for lo, hi in zip(bands[:-1], bands[1:])] + [f"{bands[-1]}+"]
    return pd.cut(a, edges, right=False, labels=labels).astype(object).where(a.notna())


def _levels(levels, columns) -> tuple:
    levels = sequence("levels", levels, allow_empty=False, what="tuples of column names",
                      fix="e.g. levels=[('age', 'occupation'), ('age',)]")
    out = []
    for lv in levels:
        lv = tuple(sequence("levels entry", lv, allow_empty=False, what="column names",
                            fix="e.g. ('age', 'occupation')"))
        missing = [c for c in lv if c not in columns]
        if missing:
            raise ValueError(f"users has no registration column {missing[0]!r} (levels ask for {list(lv)}; found "
                             f"{list(columns)}): this dataset has no such registration data (MovieLens-100k's u.user "
                             "has age, gender, occupation, zip_code; the shop has none), so use a description or "
                             "popularity for its new users")
        out.append(lv)
    return tuple(out)


class DemographicPopularity(Recommender):
    """Score(u, i) = how many training users of u's registration group interacted with i, with ties inside the group
    broken by global popularity within the score (a fraction below 1, so AUC sees the same order as the list).

    Groups back off from most to least specific: ``levels`` (default: age band × occupation, then age band), and a
    group counts only when it has at least ``min_users`` training users; a user whose groups are all smaller, or
    whose registration is missing (not in ``users``, or an empty value), gets global popularity, declared
    (``fallback="popularity"``; :meth:`served_by` says which level served each user). The same rule serves every
    user, with history or not: it never reads a history, so it is a baseline for new users.
    ``users``: the users table with the registration columns (``ds.users``). ``age`` is banded by ``age_bands`` (lower
    bounds; MovieLens-1M's bands by default); other columns are grouped by value.
    """

    name = "demographic popularity"
    fallbacks = ("popularity",)

    def __init__(self, catalogue, users: pd.DataFrame, levels=LEVELS, min_users: int = 20, age_bands=AGE_BANDS):
        super().__init__(catalogue, fallback="popularity")
        frame("users", users, [C.USER], fix="pass the dataset's users table (ds.users)")
        self.levels = _levels(levels, users.columns)
        self.min_users = integer("min_users", min_users, min=1)
        bands = sequence("age_bands", age_bands, allow_empty=False, what="ages")
        if not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in bands) \
                or list(bands) != sorted(set(bands)):
            raise ValueError(f"age_bands must be increasing whole ages (the lower bound of each band), got {bands!r}; "
                             f"e.g. {AGE_BANDS}")
        self.age_bands = tuple(int(b) for b in bands)
        self.users = users

    def _keys(self, users) -> list[pd.Series]:
        """Per level, each user's group key (a tuple), or None where a value is missing or the user is unknown."""
        table = self.users.drop_duplicates(C.USER).set_index(C.USER)
        out = []
        for lv in self.levels:
            cols = [age_band(table[c], self.age_bands).set_axis(table.index) if c == AGE else table[c] for c in lv]
            parts = pd.concat(cols, axis=1).reindex(list(users))
            ok = parts.notna().all(axis=1) & (parts.astype(str).apply(lambda s: s.str.strip()) != "").all(axis=1)
            out.append(pd.Series([tuple(r) if o else None for r, o in zip(parts.itertuples(index=False), ok)],
                                 index=list(users), dtype=object))
        return out

    def _fit(self, train):
        pairs = train[[C.USER, C.ITEM]].drop_duplicates()
        rows = self.catalogue.rows(pairs[C.ITEM], what="train item_id")
        keys = self._keys(self.users_)
        self.groups_ = []  # per level: group key -> (training users, item counts), only groups of >= min_users
        for lv_keys in keys:
            sizes = lv_keys.dropna().value_counts()
            big = [g for g, n in sizes.items() if n >= self.min_users]
            code = {g: j for j, g in enumerate(big)}
            of_pair = pairs[C.USER].map(lv_keys).map(lambda g: code.get(g, -1)).to_numpy(dtype=np.int64)
            counts = np.zeros((len(big), self.n_items), dtype=np.float32)
            np.add.at(counts, (of_pair[of_pair >= 0], rows[of_pair >= 0]), 1.0)
            self.groups_.append({g: (int(sizes[g]), counts[j]) for g, j in code.items()})
        self.tie_ = self.popularity_ / (float(self.popularity_.max()) + 1.0)  # in [0, 1): global popularity

    def served_by(self, users) -> pd.Series:
        """For each user, the group that serves them ("age × occupation = ('25-34', 'engineer')", ...) or
        ``"popularity"`` (every group too small, or no registration)."""
        self._check_fitted()
        users = list(users)
        keys = self._keys(users)
        out = []
        for k in range(len(users)):
            label = "popularity"
            for lv, lv_keys, groups in zip(self.levels, keys, self.groups_):
                g = lv_keys.iloc[k]
                if g is not None and g in groups:
                    label = f"{' × '.join(lv)} = {g}"
                    break
            out.append(label)
        return pd.Series(out, index=users, name="served by")

    def level_of(self, users) -> pd.Series:
        """For each user, the level that serves them: ``"age × occupation"``, ``"age"``, ... or ``"popularity"``."""
        return self.served_by(users).str.split(" = ").str[0].rename("level")

    def score(self, users) -> np.ndarray:
        self._check_fitted()
        users = list(users)
        keys = self._keys(users)
        out = np.tile(self.popularity_ + self.tie_, (len(users), 1)).astype(np.float32)  # the global list
        for k in range(len(users)):
            for lv_keys, groups in zip(keys, self.groups_):
                g = lv_keys.iloc[k]
                if g is not None and g in groups:
                    out[k] = groups[g][1] + self.tie_
                    break
        return out

    @property
    def fallback_label(self) -> str:
        return (f"{' → '.join(' × '.join(lv) for lv in self.levels)} group (≥ {self.min_users} training users), "
                "else popularity")

    def __repr__(self):
        return f"DemographicPopularity(levels={self.levels!r}, min_users={self.min_users})"


__all__ = ["AGE_BANDS", "DemographicPopularity", "LEVELS", "age_band"]
