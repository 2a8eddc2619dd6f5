"""Reading tables and pictures from disk with errors a learner can act on (file, row, and the fix).

Not a parser of its own: pandas and Pillow read; this module turns their deep tracebacks into one clear line.
"""
from __future__ import annotations

import csv
import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd


# Pictures larger than this are not decoded in full: a JPEG is read at 1/8 scale (Pillow's ``draft``: a 144 MP photo
# in about 1 s instead of 4.6 s, 2 MP instead of 430 MB), anything else is refused. The encoders shrink every picture
# to 224 px anyway. 25 MP holds any camera's ordinary output.
MAX_IMAGE_PIXELS = 25_000_000


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
    if names is not None and len(names) > 1 and df.iloc[:1, 1:].isna().all(axis=None):
        first = str(df.iloc[0, 0])
        other = next((c for c in (",", ";", "\t", "|", " ") if c != sep and c in first), None)
        guess = f" It looks {other!r}-separated: save it with {sep!r} between fields." if other else ""
        raise DataError(f"{path} line 1: expected {len(names)} {sep!r}-separated fields ({', '.join(names[:4])}"
                        f"{', ...' if len(names) > 4 else ''}), found 1: {first[:60]!r}.{guess}{hint}")
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


def read_image(path, name: str):
    """Open the picture at ``path`` as an RGB ``PIL.Image``, its pixels bounded by :data:`MAX_IMAGE_PIXELS` before
    anything is decoded (a larger JPEG is decoded at 1/8 scale, anything else refused); every failure is a
    :class:`DataError` naming ``name`` (e.g. ``item 'i0001'``), the file, and the fix."""
    from PIL import Image, UnidentifiedImageError

    limit = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below says it with the name
            with Image.open(path) as im:
                w, h = im.size
                if w * h > limit and im.format == "JPEG":  # decoded at 1/8 scale: a 144 MP photo in about a second
                    im.draft("RGB", (math.ceil(w / 8), math.ceil(h / 8)))
                if im.size[0] * im.size[1] > limit:
                    raise DataError(f"{name}: image file {path} has {w} x {h} = {w * h / 1e6:.3g} megapixels, more than "
                                    f"the limit of {limit / 1e6:g} (course_lib.data.io.MAX_IMAGE_PIXELS); shrink it "
                                    "first, e.g. PIL's Image.thumbnail((2048, 2048)), or save it as JPEG")
                return im.convert("RGB")
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(f"{name}: image file {path} is too large to decode safely ({e}); shrink it first, "
                        "e.g. PIL's Image.thumbnail((2048, 2048))") from None
    except FileNotFoundError:
        raise DataError(f"{name}: image file {path} not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{name}: image file {path} is corrupt or not an image ({e})") from None
