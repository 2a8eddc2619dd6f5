"""The catalogue: item ids, their vectors (optional) and id → row, said once.

Not a dataset (see ``data``) and not a ranker (see ``rank``): one small frozen object that replaces the
``(items, item_vecs, index)`` triple so every stage agrees on which row is which item.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from . import constants as C


def _id_sort_key(ids: np.ndarray) -> np.ndarray:
    """Ids compared as numbers when every id looks like an integer (MovieLens "1", "2", "10"), else as text."""
    text = [str(i) for i in ids]
    if text and all(t.lstrip("-").isdigit() for t in text):
        return np.array([int(t) for t in text], dtype=np.int64)
    return np.array(text, dtype=object)


@dataclass(frozen=True, eq=False)
class Catalogue:
    """Item ids in row order, optional item vectors (one row per item) and the item table for attributes.

    >>> cat = Catalogue.from_items(ds.items, text_vecs)
    >>> cat.rows(["i0001", "i0002"])       # item rows; an unknown id is an error that names it
    >>> cat.vectors.shape                  # (n_items, dim), or None for a catalogue without vectors
    """

    ids: np.ndarray  # item ids, row order
    vectors: np.ndarray | None = None  # (n_items, dim) float32, or None
    items: pd.DataFrame | None = field(default=None, repr=False)  # the item table (titles, categories, ...), same order
    row: Mapping = field(default=None, repr=False)  # item id -> row

    def __post_init__(self):
        ids = np.asarray(self.ids, dtype=object)
        if ids.ndim != 1:
            raise ValueError(f"catalogue ids must be 1-D, got shape {ids.shape}")
        row = {i: k for k, i in enumerate(ids)}
        if len(row) != len(ids):
            dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
            raise ValueError(f"catalogue ids must be unique; {dup!r} appears more than once")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "row", row)
        if self.vectors is not None:
            from .checks import matrix

            v = matrix("item vectors", self.vectors, rows=len(ids))
            v.setflags(write=False)
            object.__setattr__(self, "vectors", v)
        if self.items is not None and len(self.items) != len(ids):
            raise ValueError(f"items table has {len(self.items)} rows for {len(ids)} ids")

    @classmethod
    def from_items(cls, items, vectors=None) -> "Catalogue":
        """From an item table (its ``item_id`` column, in order) or a plain sequence of ids."""
        if isinstance(items, Catalogue):
            return items if vectors is None else items.with_vectors(vectors)
        if isinstance(items, pd.DataFrame):
            if C.ITEM not in items.columns:
                raise ValueError(f"items must have a column {C.ITEM!r}; found {list(items.columns)}")
            return cls(items[C.ITEM].to_numpy(), vectors, items.reset_index(drop=True))
        if isinstance(items, np.ndarray) and items.ndim == 2:
            raise TypeError(f"items is a {items.shape} matrix, which looks like item vectors: pass the item table "
                            "first, Catalogue.from_items(ds.items, item_vecs)")
        return cls(np.asarray(list(items), dtype=object), vectors)

    def with_vectors(self, vectors) -> "Catalogue":
        """The same items with other vectors (another encoder, a fused space)."""
        return Catalogue(self.ids, vectors, self.items)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        if self.vectors is None:
            raise ValueError("this catalogue has no vectors: build it with Catalogue.from_items(items, vectors)")
        return int(self.vectors.shape[1])

    def rows(self, ids: Iterable, what: str = "item ids") -> np.ndarray:
        """Rows of ``ids``; any unknown id raises, naming a few of them."""
        ids = np.asarray(ids if isinstance(ids, (pd.Series, pd.Index, np.ndarray)) else list(ids), dtype=object)
        out = self._id_index.get_indexer(ids).astype(np.int64)  # -1: unknown id
        if (out < 0).any():
            bad = [i for i, r in zip(ids, out) if r < 0]
            raise ValueError(f"{what}: {len(bad)} id(s) not in the catalogue, e.g. {bad[:3]}; "
                             "use the same item table for the log and the catalogue")
        return out

    def require_vectors(self, who: str) -> np.ndarray:
        if self.vectors is None:
            raise ValueError(f"{who} needs item vectors: build the catalogue with Catalogue.from_items(items, vectors)")
        return self.vectors

    @cached_property
    def _id_index(self) -> pd.Index:
        """The ids as a hash index (a vectorised ``row``: row k is ``ids[k]``, and ids are unique)."""
        return pd.Index(self.ids)

    @cached_property
    def id_order(self) -> np.ndarray:
        """Each row's position when items are sorted by id (numbers as numbers): the last tie-breaker."""
        order = np.argsort(_id_sort_key(self.ids), kind="stable")
        pos = np.empty(len(order), dtype=np.int64)
        pos[order] = np.arange(len(order))
        return pos


def require_catalogue(value, who: str, name: str = "catalogue") -> Catalogue:
    """``value`` if it is a :class:`Catalogue`; else one line for code written for the old API, which passed item
    vectors and an id -> row index (``(item_vecs, index)``) where one Catalogue now goes."""
    if isinstance(value, Catalogue):
        return value
    shape = f" of shape {value.shape}" if hasattr(value, "shape") else ""
    raise TypeError(f"{who}: {name} must be a Catalogue, got {type(value).__name__}{shape}; the old (item_vecs, index) "
                    "arguments are one object now: pass Catalogue.from_items(ds.items, item_vecs)")
