"""The ``Dataset`` every stage consumes: items, users, interactions and optional ground truth, validated.

Not a loader for any one source (see ``shop.py``, ``movielens.py``) and not a splitter (see ``splits.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import constants as C
from .io import DataError, where

ITEM_COLUMNS = (C.ITEM, C.TITLE, C.CATEGORY, C.DESCRIPTION)
USER_COLUMNS = (C.USER,)
INTERACTION_COLUMNS = (C.USER, C.ITEM, C.TIMESTAMP)


@dataclass
class Dataset:
    """Items, users and interactions of one recommendation dataset.

    ``items`` has at least ``item_id, title, category, description`` and gains ``text`` (what encoders read).
    ``interactions`` has ``user_id, item_id, timestamp`` (datetime64) plus ``event`` and ``weight``.
    ``truth`` (shop only) lists each user's true interests with their tier and weight.
    ``root`` is the folder images are read from (``items.image`` holds paths relative to it).
    """

    name: str
    items: pd.DataFrame
    users: pd.DataFrame
    interactions: pd.DataFrame
    truth: pd.DataFrame | None = None
    user_truth: pd.DataFrame | None = None
    root: Path | None = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        self.validate()
        if C.TEXT not in self.items.columns:
            self.items[C.TEXT] = self.items[C.TITLE].str.strip() + ". " + self.items[C.DESCRIPTION].str.strip()
        if C.WEIGHT not in self.interactions.columns:
            self.interactions[C.WEIGHT] = 1.0
        if C.EVENT not in self.interactions.columns:
            self.interactions[C.EVENT] = "interaction"

    # ---- validation -------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`DataError` naming file and line for duplicate ids, unknown references, missing columns."""
        for df, cols, name in (
            (self.items, ITEM_COLUMNS, "items"),
            (self.users, USER_COLUMNS, "users"),
            (self.interactions, INTERACTION_COLUMNS, "interactions"),
        ):
            missing = [c for c in cols if c not in df.columns]
            if missing:
                src = df.attrs.get("source", name)
                raise DataError(f"{src}: missing column(s) {missing}; found {list(df.columns)}.")
            for c in cols:
                bad = np.flatnonzero(df[c].isna().to_numpy())
                if len(bad):
                    raise DataError(f"{where(df, bad, name)}: empty value in required column '{c}'.")
        for df, key, name in ((self.items, C.ITEM, "items"), (self.users, C.USER, "users")):
            dup = np.flatnonzero(df[key].duplicated(keep="first").to_numpy())
            if len(dup):
                ids = df[key].iloc[dup[:5]].tolist()
                raise DataError(f"{where(df, dup, name)}: duplicate {key} {ids}; each id must appear once.")
        inter = self.interactions
        for key, table, name in ((C.USER, self.users, "users"), (C.ITEM, self.items, "items")):
            unknown = np.flatnonzero(~inter[key].isin(table[key]).to_numpy())
            if len(unknown):
                ids = inter[key].iloc[unknown[:5]].tolist()
                raise DataError(
                    f"{where(inter, unknown, 'interactions')}: {key} {ids} not found in {name}. "
                    f"Add them to {name} or drop those interactions."
                )
        if not pd.api.types.is_datetime64_any_dtype(inter[C.TIMESTAMP]):
            raise DataError(
                f"{inter.attrs.get('source', 'interactions')}: column '{C.TIMESTAMP}' must be datetimes, "
                f"got {inter[C.TIMESTAMP].dtype}. Use parse_timestamps() when building a Dataset by hand."
            )
        if C.WEIGHT in inter.columns:
            w = inter[C.WEIGHT].to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(w) | (w <= 0))
            if len(bad):
                raise DataError(f"{where(inter, bad, 'interactions')}: '{C.WEIGHT}' must be a positive number.")
        if self.truth is not None:
            unknown = np.flatnonzero(~self.truth[C.USER].isin(self.users[C.USER]).to_numpy())
            if len(unknown):
                raise DataError(f"{where(self.truth, unknown, 'truth')}: user_id not found in users.")

    # ---- convenience ------------------------------------------------------------------------------------
    @property
    def has_images(self) -> bool:
        return self.root is not None and C.IMAGE in self.items.columns and bool((self.items[C.IMAGE] != "").any())

    def image_path(self, item_id) -> Path:
        if not self.has_images:
            raise DataError(f"dataset '{self.name}' has no images; use text features only.")
        row = self.items.loc[self.items[C.ITEM] == item_id]
        if row.empty:
            raise KeyError(f"item_id {item_id!r} is not in dataset '{self.name}'.")
        rel = row[C.IMAGE].iloc[0]
        if not rel:
            raise DataError(f"item {item_id!r} has no image in dataset '{self.name}'.")
        return Path(self.root) / rel

    def image(self, item_id):
        """Load one item's image as an RGB ``PIL.Image``; a missing or corrupt file names the item."""
        from PIL import Image, UnidentifiedImageError

        path = self.image_path(item_id)
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except FileNotFoundError:
            raise DataError(f"item {item_id!r}: image file {path} not found. Regenerate the data (see data/shop/README.md).") from None
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"item {item_id!r}: image file {path} is corrupt or not an image ({e}).") from None

    def cold_users(self) -> list:
        """Users with no interactions at all (they only have a self-description)."""
        return sorted(set(self.users[C.USER]) - set(self.interactions[C.USER]))

    def cold_items(self) -> list:
        """Items nobody has interacted with (they only have a description and an image)."""
        return sorted(set(self.items[C.ITEM]) - set(self.interactions[C.ITEM]))

    def summary(self) -> pd.DataFrame:
        """One small table of sizes and long-tail statistics, for notebooks and reports."""
        per_user = self.interactions.groupby(C.USER).size().reindex(self.users[C.USER], fill_value=0)
        per_item = self.interactions.groupby(C.ITEM).size().reindex(self.items[C.ITEM], fill_value=0)
        warm_users = per_user[per_user > 0]
        top_items = per_item.sort_values(ascending=False)
        top10 = top_items.iloc[: max(1, len(top_items) // 10)].sum() / max(1, top_items.sum())
        ts = self.interactions[C.TIMESTAMP]
        rows = {
            "items": len(self.items),
            "users": len(self.users),
            "interactions": len(self.interactions),
            "categories": self.items[C.CATEGORY].nunique(),
            "cold users (no interactions)": int((per_user == 0).sum()),
            "cold items (no interactions)": int((per_item == 0).sum()),
            "median interactions per warm user": float(warm_users.median()),
            "max interactions per user": int(per_user.max()),
            "warm users with < 5 interactions": int((warm_users < 5).sum()),
            "share of interactions on top 10% items": round(float(top10), 3),
            "days covered": int((ts.max() - ts.min()).days),
        }
        return pd.DataFrame({"value": pd.Series(list(rows.values()), dtype=object).to_numpy()}, index=list(rows.keys()))

    def sample_users(self, n: int, seed: int = C.SEED) -> "Dataset":
        """A smaller dataset for quick runs: ``n`` random users (with their interactions), all items."""
        if n <= 0:
            raise ValueError(f"n must be a positive number of users, got {n}")
        if n >= len(self.users):
            return self
        keep = self.users[C.USER].sample(n, random_state=seed)
        users = self.users[self.users[C.USER].isin(keep)].reset_index(drop=True)
        inter = self.interactions[self.interactions[C.USER].isin(keep)].reset_index(drop=True)
        truth = None if self.truth is None else self.truth[self.truth[C.USER].isin(keep)].reset_index(drop=True)
        ut = None if self.user_truth is None else self.user_truth[self.user_truth[C.USER].isin(keep)].reset_index(drop=True)
        return Dataset(self.name, self.items, users, inter, truth, ut, self.root, dict(self.notes))

    def preview_items(self, n: int = 3) -> pd.DataFrame:
        """The first ``n`` items with the columns a person reads (those this dataset has)."""
        cols = [C.ITEM, C.TITLE, C.CATEGORY, C.SUBCATEGORY, C.COLOUR, C.PRICE, C.DESCRIPTION]
        return self.items[[c for c in cols if c in self.items.columns]].head(n)

    def example_user(self, min_n: int = 40, max_n: int = 150):
        """A user worth telling the story of: active, and (with ground truth) with emerging and fading interests."""
        per_user = self.interactions.groupby(C.USER).size()
        pool = per_user[(per_user >= min_n) & (per_user <= max_n)].sort_index()
        if self.truth is not None and len(pool):
            tiers = self.truth.groupby(C.USER)[C.TIER].agg(set)
            rich = [u for u in pool.index if {"emerging", "fading"} <= tiers.get(u, set())]
            if rich:
                return rich[0]
        return pool.index[0] if len(pool) else per_user.idxmax()


def parse_timestamps(frame: pd.DataFrame, column: str = C.TIMESTAMP, name: str = "interactions") -> pd.Series:
    """Parse ISO strings or Unix seconds to ``datetime64[ns]``; bad values raise naming file and line."""
    series = frame[column]
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    if pd.api.types.is_numeric_dtype(series):
        out = pd.to_datetime(series, unit="s", errors="coerce")
    else:
        out = pd.to_datetime(series, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(out.isna().to_numpy())
    if len(bad):
        raise DataError(
            f"{where(frame, bad, name)}: {column} {series.iloc[bad[0]]!r} is not a date "
            "(use ISO 8601 like 2026-05-01T12:00:00, or Unix seconds)."
        )
    return out
