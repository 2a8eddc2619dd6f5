"""Argument checks for the public API: one small set of validators, so every bad input gets the same kind of message.

Not business logic: each function checks one argument and returns it (coerced where that is safe), or raises a
``ValueError``/``TypeError`` whose message names the argument, the value it got, and what to pass instead.
Validate once, at the public boundary; inner helpers trust what they are given.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable, Sequence

import numpy as np


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def integer(name: str, value, *, min: int | None = None, max: int | None = None, fix: str = "") -> int:
    """An integer (not a bool, not 2.5, not None) within ``[min, max]``; returns a plain ``int``.

    A float that is exactly whole (``10.0``) is accepted: notebooks and JSON often produce them.
    """
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer, got {_show(value)} ({type(value).__name__})"
                        + (f"; {fix}" if fix else ""))
    value = int(value)
    _range(name, value, min, max, fix)
    return value


def number(name: str, value, *, min: float | None = None, max: float | None = None, above: float | None = None,
           below: float | None = None, allow_none: bool = False, fix: str = "") -> float | None:
    """A finite real number within the bounds (``min``/``max`` inclusive, ``above``/``below`` exclusive).

    NaN and ±inf are refused: they never make sense as a setting and would spread silently through every result.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_show(value)} ({type(value).__name__})"
                        + (f"; {fix}" if fix else ""))
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}" + (f"; {fix}" if fix else ""))
    _range(name, value, min, max, fix)
    if above is not None and not value > above:
        raise ValueError(f"{name} must be > {above}, got {value}" + (f"; {fix}" if fix else ""))
    if below is not None and not value < below:
        raise ValueError(f"{name} must be < {below}, got {value}" + (f"; {fix}" if fix else ""))
    return value


def _range(name, value, lo, hi, fix) -> None:
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}" + (f"; {fix}" if fix else ""))
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value}" + (f"; {fix}" if fix else ""))


def choice(name: str, value, options: Sequence[str]) -> str:
    """One of ``options`` (exact match), else an error listing them."""
    if value not in tuple(options):
        raise ValueError(f"{name} must be one of {tuple(options)}, got {_show(value)}")
    return value


def boolean(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_show(value)} ({type(value).__name__})")
    return bool(value)


def matrix(name: str, value, *, rows: int | None = None, cols: int | None = None, finite: bool = True,
           dtype=np.float32, allow_empty: bool = True) -> np.ndarray:
    """A 2-D numeric array (rows, dim); ragged lists, 1-D arrays and NaN/inf are refused with the row numbers."""
    try:
        a = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a 2-D array of numbers (rows, dim), got {type(value).__name__} "
                        f"that NumPy cannot read as one ({str(e).splitlines()[0][:80]}); "
                        "check for ragged rows or non-numeric values") from None
    if a.ndim != 2:
        hint = "; for one vector use x[None, :] or [x]" if a.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (rows, dim), got shape {a.shape}{hint}")
    if not allow_empty and a.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}): give at least one row")
    if rows is not None and a.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows, got {a.shape[0]}")
    if cols is not None and a.shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns, got {a.shape[1]}")
    if finite and a.size and not np.isfinite(a).all():
        bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
        raise ValueError(f"{name} has NaN or infinite values in row(s) {bad[:5].tolist()}"
                         + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
                         + "; re-compute or drop those rows")
    return a


def vector(name: str, value, *, length: int | None = None, finite: bool = True, dtype=np.float64) -> np.ndarray:
    """A 1-D numeric array; NaN/inf refused with their positions."""
    try:
        a = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 1-D array of numbers, got {_show(value)}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if length is not None and len(a) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(a)}")
    if finite and not np.isfinite(a).all():
        bad = np.flatnonzero(~np.isfinite(a))
        raise ValueError(f"{name} has NaN or infinite values at position(s) {bad[:5].tolist()}")
    return a


def unique(name: str, values: Iterable) -> list:
    """A list with no repeated entry; a repeat is named."""
    out = list(values)
    seen: set = set()
    for v in out:
        if v in seen:
            raise ValueError(f"{name} has a repeated entry {_show(v)}; each must appear once")
        seen.add(v)
    return out


def index_lists(name: str, lists, n: int, *, allow_padding: bool = False) -> list[list[int]]:
    """Lists of item indices in ``[0, n)``; ``-1`` is the kit's padding value and is dropped only when
    ``allow_padding`` (never read as "the last item", as Python's negative indexing would)."""
    if lists is None:
        raise TypeError(f"{name} must be a list of lists of item indices, got None")
    out = []
    for r, row in enumerate(lists):
        if row is None:
            out.append([])
            continue
        if isinstance(row, (str, bytes)) or not hasattr(row, "__iter__"):
            raise TypeError(f"{name}[{r}] must be a list of item indices, got {_show(row)}")
        a = np.asarray(row if isinstance(row, np.ndarray) else list(row))
        if a.size == 0:
            out.append([])
            continue
        if a.dtype.kind not in "iu":
            bad = next((i for i in a.tolist() if not _is_int(i)), a.tolist()[0])
            raise TypeError(f"{name}[{r}] holds {_show(bad)} ({type(bad).__name__}); item indices are integers")
        if allow_padding:
            a = a[a != -1]
        wrong = (a < 0) | (a >= n)
        if wrong.any():
            i = int(a[wrong][0])
            raise ValueError(f"{name}[{r}] holds item index {i}, outside [0, {n})"
                             + ("; -1 is padding, not an item" if i == -1 else ""))
        out.append(a.astype(np.int64).tolist())
    return out


def indices(name: str, value, n: int) -> np.ndarray:
    """A flat list of item indices in ``[0, n)``: integers only (``2.7`` is refused, never truncated to 2)."""
    out = sequence(name, value, what="item indices")
    a = np.asarray(out)
    if a.size and a.dtype.kind == "f" and np.isfinite(a).all() and (a == np.round(a)).all():
        a = a.astype(np.int64)  # 3.0 is 3, as integer() accepts it
    if a.size and a.dtype.kind not in "iu":
        bad = next((i for i in out if not (_is_int(i) or isinstance(i, float) and i.is_integer())), out[0])
        raise TypeError(f"{name} holds {_show(bad)} ({type(bad).__name__}); item indices are integers "
                        "(e.g. catalogue.rows(ids))")
    a = a.astype(np.int64)
    wrong = (a < 0) | (a >= n)
    if wrong.any():
        raise ValueError(f"{name} holds item index {int(a[wrong][0])}, outside [0, {n})")
    return a


def sparse_rows(name: str, value, rows: int, cols: int):
    """A SciPy sparse matrix of shape ``(rows, cols)`` (one row per query, one column per item)."""
    if tuple(value.shape) != (rows, cols):
        raise ValueError(f"{name} must have shape (queries, items) = ({rows}, {cols}), got {tuple(value.shape)}; "
                         "build it over the same catalogue")
    return value


def _fix(fix: str) -> str:
    return f"; {fix}" if fix else ""


def text(name: str, value, *, allow_empty: bool = False, fix: str = "") -> str:
    """A string (not bytes, not None, not a number); empty only when ``allow_empty``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {_show(value)} ({type(value).__name__}){_fix(fix)}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} must not be empty, got {value!r}{_fix(fix)}")
    return value


def sequence(name: str, value, *, allow_empty: bool = True, what: str = "values", fix: str = "") -> list:
    """A list-like of ``what`` (list, tuple, array, Series, ...): not None, not one string, not a dict; returns a list.

    One string is refused rather than read as a list of characters: ``["a text"]`` was meant.
    """
    if value is None:
        raise TypeError(f"{name} must be a list of {what}, got None{_fix(fix)}")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a list of {what}, got one {type(value).__name__} {_show(value)}; "
                        f"wrap it in a list: [{_show(value)}]")
    if isinstance(value, dict) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of {what}, got {_show(value)} ({type(value).__name__}){_fix(fix)}")
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise ValueError(f"{name} must be a flat list of {what}, got an array of shape {value.shape}{_fix(fix)}")
    out = list(value)
    if not allow_empty and not out:
        raise ValueError(f"{name} is empty: give at least one of the {what}{_fix(fix)}")
    return out


def texts(name: str, value, *, fix: str = "") -> list[str]:
    """A list of strings; a missing entry (None, NaN) or a number is named by its index."""
    out = sequence(name, value, what="strings", fix=fix)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            what = "NaN" if isinstance(t, float) and t != t else _show(t)
            raise TypeError(f"{name}[{i}] is {what} ({type(t).__name__}), not a string"
                            + _fix(fix or "fill missing texts first, e.g. df['description'].fillna('')"))
    return out


def mapping(name: str, value, *, allow_empty: bool = False, what: str = "entries", fix: str = "") -> dict:
    """A dict-like (``{name: value}``); empty only when ``allow_empty``."""
    from collections.abc import Mapping

    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of {what}, got {_show(value)} ({type(value).__name__}){_fix(fix)}")
    if not allow_empty and not value:
        raise ValueError(f"{name} is empty: give at least one of the {what}{_fix(fix)}")
    return dict(value)


def frame(name: str, value, columns: Sequence[str] = (), *, allow_empty: bool = True, fix: str = ""):
    """A ``pandas.DataFrame`` holding ``columns``; the missing ones are named along with those found."""
    import pandas as pd

    if not isinstance(value, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {_show(value)} ({type(value).__name__}){_fix(fix)}")
    missing = [c for c in columns if c not in value.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; found {list(value.columns)}{_fix(fix)}")
    if not allow_empty and len(value) == 0:
        raise ValueError(f"{name} is empty (no rows){_fix(fix)}")
    return value


def known(name: str, values, universe, *, what: str = "id", fix: str = "") -> list:
    """Every entry of ``values`` must be in ``universe`` (a set, index or list); the unknown ones are named."""
    out = sequence(name, values, what=f"{what}s")
    pool = universe if isinstance(universe, (set, frozenset, dict)) else set(universe)
    unknown = [v for v in out if v not in pool]
    if unknown:
        raise ValueError(f"{name} has unknown {what}(s) {_show(unknown[:5])}"
                         + (f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else "") + _fix(fix))
    return out


def same_length(**named) -> int:
    """All the named sequences have one length; else each is named with its length."""
    lengths = {k: len(v) for k, v in named.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("these must have the same length: " + ", ".join(f"{k} has {n}" for k, n in lengths.items()))
    return next(iter(lengths.values()), 0)


class UnknownSetting(TypeError, ValueError):
    """A config has no field of that name (a ``TypeError`` as for a wrong keyword, and a ``ValueError``)."""


def replace_checked(cfg, what: str = "", **changes):
    """A copy of the config dataclass ``cfg`` with some fields changed, validated by its ``__post_init__``: the one
    way the kit changes a config. An unknown name is refused, listing the settings (``what`` names the kind, e.g.
    ``"index"``)."""
    import dataclasses

    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"cfg must be a config dataclass instance (e.g. TierConfig()), got {type(cfg).__name__}")
    known = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise UnknownSetting(f"unknown {what + ' ' if what else ''}setting(s) {unknown}: {type(cfg).__name__} has no "
                             f"setting {unknown[0]!r}; the settings are {sorted(known)}")
    return dataclasses.replace(cfg, **changes)
