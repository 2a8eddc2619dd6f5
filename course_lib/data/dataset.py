"""The ``Dataset`` every stage consumes: items, users, interactions and optional ground truth, validated.

Not a loader for any one source (see ``shop.py``, ``movielens.py``) and not a splitter (see ``splits.py``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import checks
from .. import constants as C
from .io import DataError, read_image, where

ITEM_COLUMNS = (C.ITEM, C.TITLE, C.CATEGORY, C.DESCRIPTION)
USER_COLUMNS = (C.USER,)
INTERACTION_COLUMNS = (C.USER, C.ITEM, C.TIMESTAMP)

# Plausible interaction times. One event dated 9999-12-31 would make every real event "8,000 years old" and give
# it recency weight 0, silently emptying every user's history; so dates outside this window are refused at the
# data boundary (loaders, Dataset, and the public functions that read times: discover, history_profiles), with the
# file and line named.
EARLIEST_TIMESTAMP = pd.Timestamp("1970-01-01")  # Unix time 0: no interaction log starts earlier
FUTURE_SLACK = pd.Timedelta(days=1)  # events may lie up to a day after this computer's clock (time zones)
# The bundled shop's log ends here (ShopConfig.start + days, a test checks it): its dates are plausible whatever this
# computer's clock says, so the course data loads on a laptop whose clock is behind. A far-future date (a typo, 9999)
# is still refused, and data a user brings is still held to the clock beyond this day.
BUNDLED_DATA_END = pd.Timestamp("2026-09-30")


def clock_now() -> pd.Timestamp:
    """This computer's clock, as naive UTC (the one place the data checks read it)."""
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def latest_timestamp() -> pd.Timestamp:
    """The latest plausible event time: the later of now (:func:`clock_now`) and the bundled shop's last day
    (:data:`BUNDLED_DATA_END`), plus :data:`FUTURE_SLACK`."""
    return max(clock_now(), BUNDLED_DATA_END) + FUTURE_SLACK


def _implausible(times: pd.Series) -> np.ndarray:
    t = times.to_numpy()
    lo, hi = np.datetime64(EARLIEST_TIMESTAMP), np.datetime64(latest_timestamp())
    return np.flatnonzero(~pd.isna(t) & ((t < lo) | (t > hi)))


def _plain(value):
    """A NumPy scalar as the Python value it holds (so messages say -5, not np.int64(-5))."""
    return value.item() if isinstance(value, np.generic) else value


def _implausible_error(frame: pd.DataFrame, bad, column: str, name: str, shown) -> DataError:
    return DataError(
        f"{where(frame, bad, name)}: {column} {shown!r} is outside the plausible range "
        f"{EARLIEST_TIMESTAMP:%Y-%m-%d} to {latest_timestamp():%Y-%m-%d} (one day after this computer's clock, or "
        "after the bundled shop's last day). Fix or drop that row: one far-future date would make every other event "
        "look ancient and zero its recency weight. (If the date is right, check this computer's clock.)"
    )


def check_event_times(frame: pd.DataFrame, name: str = "interactions", column: str = C.TIMESTAMP) -> pd.Series:
    """The times of an interaction log handed to a public function (``discover``, ``history_profiles``): the same
    rules as a loaded :class:`Dataset` (datetimes, naive UTC, none missing, plausible), each failure one line naming
    ``name``, the row and the fix. Returns the column."""
    checks.frame(name, frame, [column])
    ts = frame[column]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise TypeError(f"{name}['{column}'] must be datetimes, got {ts.dtype} (e.g. {_plain(ts.iloc[0])!r}); "
                        "parse it first with course_lib.data.parse_timestamps")
    if getattr(ts.dt, "tz", None) is not None:
        raise DataError(f"{name}['{column}'] has a time zone ({ts.dt.tz}); use naive UTC times, as "
                        "parse_timestamps() returns")
    missing = np.flatnonzero(ts.isna().to_numpy())
    if len(missing):
        raise DataError(f"{where(frame, missing, name)}: empty value in '{column}'; drop or fix those rows first")
    bad = _implausible(ts)
    if len(bad):
        raise _implausible_error(frame, bad, column, name, str(ts.iloc[bad[0]]))
    return ts


def check_time(name: str, value) -> pd.Timestamp:
    """A reference time argument (``now=``): a ``Timestamp``, ``datetime`` or ISO string, as naive UTC, in the
    plausible range; else one line naming ``name``, the value and the fix."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (str, pd.Timestamp, np.datetime64)) \
            and not hasattr(value, "isoformat"):
        raise TypeError(f"{name} must be a time such as '2026-08-01' or a pandas Timestamp, got "
                        f"{checks._show(value)} ({type(value).__name__})")
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a time such as '2026-08-01' or a pandas Timestamp, got "
                         f"{checks._show(value)} ({str(e).splitlines()[0][:60]})") from None
    if pd.isna(t):
        raise ValueError(f"{name} must be a time such as '2026-08-01', got {checks._show(value)}")
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    if not EARLIEST_TIMESTAMP <= t <= latest_timestamp():
        raise ValueError(f"{name}={checks._show(value)} is outside the plausible range {EARLIEST_TIMESTAMP:%Y-%m-%d} "
                         f"to {latest_timestamp():%Y-%m-%d}: pass a time inside the log's range, or None for its "
                         "last event")
    return t


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
            # titles may be numbers ("1984", read as int from a CSV): text is built from their string form
            self.items[C.TEXT] = (self.items[C.TITLE].astype(str).str.strip() + ". "
                                  + self.items[C.DESCRIPTION].astype(str).str.strip())
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
        if getattr(inter[C.TIMESTAMP].dt, "tz", None) is not None:
            raise DataError(f"{inter.attrs.get('source', 'interactions')}: column '{C.TIMESTAMP}' has a time zone "
                            f"({inter[C.TIMESTAMP].dt.tz}); use naive UTC times, as parse_timestamps() returns.")
        bad = _implausible(inter[C.TIMESTAMP])
        if len(bad):
            raise _implausible_error(inter, bad, C.TIMESTAMP, "interactions", str(inter[C.TIMESTAMP].iloc[bad[0]]))
        if C.WEIGHT in inter.columns:
            raw = inter[C.WEIGHT]
            w = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)  # 'heavy' becomes NaN, named below
            bad = np.flatnonzero(~np.isfinite(w) | (w <= 0))
            if len(bad):
                raise DataError(f"{where(inter, bad, 'interactions')}: '{C.WEIGHT}' must be a positive number, got "
                                f"{_plain(raw.iloc[bad[0]])!r}; fix that value (e.g. 1.0) or drop the row.")
        if self.truth is not None:
            unknown = np.flatnonzero(~self.truth[C.USER].isin(self.users[C.USER]).to_numpy())
            if len(unknown):
                raise DataError(f"{where(self.truth, unknown, 'truth')}: user_id not found in users.")

    # ---- convenience ------------------------------------------------------------------------------------
    @property
    def has_images(self) -> bool:
        return self.root is not None and C.IMAGE in self.items.columns and bool((self.items[C.IMAGE] != "").any())

    def image_path(self, item_id) -> Path:
        """The file of one item's picture: ``items.image`` read relative to ``root``; a path that leads out of the
        dataset folder (``../``, or absolute elsewhere) is refused, naming it."""
        if not self.has_images:
            raise DataError(f"dataset '{self.name}' has no images; use text features only.")
        row = self.items.loc[self.items[C.ITEM] == item_id]
        if row.empty:
            raise KeyError(f"item_id {item_id!r} is not in dataset '{self.name}'.")
        rel = row[C.IMAGE].iloc[0]
        if not rel:
            raise DataError(f"item {item_id!r} has no image in dataset '{self.name}'.")
        root = os.path.normpath(os.path.abspath(self.root))
        path = os.path.normpath(os.path.join(root, str(rel)))
        if os.path.commonpath([root, path]) != root:
            raise DataError(f"item {item_id!r}: image path {str(rel)!r} leads outside the dataset folder {root}; "
                            "image paths must be relative to it and stay inside it, e.g. 'images/i0001.png'.")
        return Path(path)

    def image(self, item_id):
        """Load one item's image as an RGB ``PIL.Image``; a missing, corrupt or oversized file names the item."""
        path = self.image_path(item_id)
        try:
            return read_image(path, f"item {item_id!r}")
        except DataError as e:
            if not path.exists():
                raise DataError(f"{e}. Regenerate the data (see data/shop/README.md).") from None
            raise

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
        n = checks.integer("n", n, min=1, fix="a positive number of users")
        seed = checks.integer("seed", seed, min=0, max=2**32 - 1)
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
    """Parse ISO strings or Unix seconds to naive UTC ``datetime64``; bad values raise naming file and line.

    A column of mostly numbers is read as Unix seconds, so one stray word is blamed on its own line (not on every
    line that holds a number). Times with a UTC offset are converted to UTC. Dates outside the plausible window
    (:data:`EARLIEST_TIMESTAMP` to :func:`latest_timestamp`) are refused: see the note at the top of this module.
    """
    checks.frame("frame", frame, [column])
    series = frame[column]
    if pd.api.types.is_datetime64_any_dtype(series):
        out = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz is not None else series
    else:
        numbers = series if pd.api.types.is_numeric_dtype(series) else pd.to_numeric(series, errors="coerce")
        as_unix = pd.api.types.is_numeric_dtype(series) or numbers.notna().mean() >= 0.5
        if as_unix:
            out = pd.to_datetime(numbers, unit="s", errors="coerce")
        else:
            out = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None)
        bad = np.flatnonzero(out.isna().to_numpy())
        if len(bad):
            raw = _plain(series.iloc[bad[0]])
            if as_unix:
                what = ("is not a number of Unix seconds, like the rest of the column" if pd.isna(numbers.iloc[bad[0]])
                        else "is out of range for Unix seconds")
            else:
                what = "is not a date (use ISO 8601 like 2026-05-01T12:00:00, or Unix seconds)"
            raise DataError(f"{where(frame, bad, name)}: {column} {raw!r} {what}.")
    bad = _implausible(out)
    if len(bad):
        raise _implausible_error(frame, bad, column, name, _plain(series.iloc[bad[0]]))
    return out
