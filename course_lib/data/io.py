"""Reading tables from disk with errors a learner can act on (file, row, and the fix).

Not a parser of its own: pandas reads; this module turns pandas' deep tracebacks into one clear line.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd


class DataError(ValueError):
    """A data file is missing, unreadable, or does not hold what the kit expects."""


def check_root(root, name: str = "root") -> Path | None:
    """A dataset folder argument: ``None`` (the default folder) or a path; a path to a file is refused."""
    if root is None:
        return None
    if not isinstance(root, (str, os.PathLike)) or (isinstance(root, str) and not root.strip()):
        raise TypeError(f"{name} must be a folder path (or None for the default), got {root!r} ({type(root).__name__})")
    path = Path(root).expanduser()
    if path.is_file():
        raise DataError(f"{path}: is a file; {name} must be the dataset's folder (the one holding its files).")
    return path


def read_table(
    path: str | Path,
    required: Sequence[str],
    *,
    sep: str = ",",
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    dtype=None,
    fix: str = "",
) -> pd.DataFrame:
    """Read a delimited text file and check its columns.

    ``names`` is for header-less files (MovieLens); otherwise the first line is the header.
    Every failure raises :class:`DataError` naming ``path`` and what to do (``fix`` is appended).
    The frame remembers its source in ``df.attrs["source"]`` so later checks can name file and line.
    """
    path = Path(path)
    hint = f" {fix}" if fix else ""
    if not path.exists():
        raise DataError(f"{path}: file not found.{hint}")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file.{hint}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty.{hint}")
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            header=None if names is not None else "infer",
            names=list(names) if names is not None else None,
            encoding=encoding,
            dtype=dtype,
            keep_default_na=False,
            na_values=[""],
            quoting=csv.QUOTE_NONE if sep in ("\t", "|") else csv.QUOTE_MINIMAL,
            engine="c",
        )
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not valid {encoding} text (byte {e.start}: {e.reason}). "
            f"Save the file as {encoding.upper()}.{hint}"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file has no rows or header.{hint}") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: cannot be parsed as a '{sep}'-separated table ({e}).{hint}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {list(df.columns)}. "
            f"Expected at least {list(required)}.{hint}"
        )
    if len(df) == 0:
        raise DataError(f"{path}: has a header but no rows.{hint}")
    df.attrs["source"] = str(path)
    df.attrs["line_offset"] = 1 if names is not None else 2  # data row 0 sits on this line
    return df


def where(df: pd.DataFrame, rows: Iterable[int], name: str) -> str:
    """Describe rows for an error: ``items.csv line 12, 40`` (file lines) or ``items row 10, 38``."""
    rows = list(rows)
    shown = rows[:5]
    more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
    if "source" in df.attrs:
        off = df.attrs.get("line_offset", 2)
        return f"{df.attrs['source']} line {', '.join(str(r + off) for r in shown)}{more}"
    return f"{name} row {', '.join(str(r) for r in shown)}{more}"
