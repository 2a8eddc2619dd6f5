"""MovieLens-100k from the official GroupLens files (u.data, u.item, u.user), as a ``Dataset``.

Not shipped: its license forbids redistribution. Put the files in a folder, or pass ``download=True`` online.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .. import constants as C
from .dataset import Dataset, parse_timestamps
from .io import DataError, check_root, read_table

URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
MD5 = "0e33842e24a9c977be4e0107933c0723"  # published by GroupLens next to the zip (ml-100k.zip.md5)
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
ITEM_FIELDS = ("movie_id", "movie_title", "release_date", "video_release_date", "imdb_url") + GENRES
FILES = ("u.data", "u.item", "u.user")


def default_root() -> Path:
    env = os.environ.get("COURSE_DATA_DIR")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "data"
    return base / "ml-100k"


def _resolve(root: Path) -> Path:
    """Accept the folder holding the files, or its parent with an ``ml-100k/`` inside (the zip's layout)."""
    if (root / "u.data").exists():
        return root
    if (root / "ml-100k" / "u.data").exists():
        return root / "ml-100k"
    return root


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(root: str | Path, url: str | None = None, md5: str | None = None) -> Path:
    """Download the official zip (``URL``), verify its MD5, and unpack it under ``root`` (atomically)."""
    url, md5 = url or URL, md5 or MD5
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        zpath = Path(tmp) / "ml-100k.zip"
        try:
            with urllib.request.urlopen(url, timeout=60) as r, open(zpath, "wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:
            raise DataError(f"could not download {url} ({e}). Download it by hand and unzip it into {root}.") from None
        got = _md5(zpath)
        if got != md5:
            raise DataError(f"{url}: checksum mismatch (md5 {got}, expected {md5}); the download is corrupt. Try again.")
        with zipfile.ZipFile(zpath) as z:
            z.extractall(tmp)
        src = Path(tmp) / "ml-100k"
        if not (src / "u.data").exists():
            raise DataError(f"{url}: the zip has no ml-100k/u.data inside.")
        dest = root / "ml-100k"
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(src, dest)
    return dest


def load_movielens_100k(root: str | Path, download: bool = False) -> Dataset:
    """Load MovieLens-100k from ``root`` (the folder with ``u.data``, ``u.item``, ``u.user``).

    Items get text such as ``"Toy Story (1995). Genres: Animation, Children's, Comedy"``; users get a
    description from their demographics; each rating becomes an interaction with ``weight`` = the rating.
    """
    if root is None:
        raise TypeError("root must be the folder holding u.data, u.item and u.user, got None; "
                        "load_dataset('movielens-100k') uses data/ml-100k")
    root = check_root(root)
    if not isinstance(download, (bool, np.bool_)):
        raise TypeError(f"download must be True or False, got {download!r}")
    folder = _resolve(root)
    missing = [f for f in FILES if not (folder / f).exists()]
    if missing:
        if download:
            folder = _download_into(root)
        else:
            raise DataError(
                f"MovieLens-100k files {missing} not found in {folder}. Put u.data, u.item and u.user from "
                f"{URL} there (unzipped), or call load_movielens_100k(root, download=True) when online."
            )
    fix = f"These should be the unmodified GroupLens files from {URL}."
    data = read_table(folder / "u.data", [C.USER, C.ITEM, "rating", C.TIMESTAMP], sep="\t",
                      names=[C.USER, C.ITEM, "rating", C.TIMESTAMP], dtype={C.USER: str, C.ITEM: str}, fix=fix)
    items = read_table(folder / "u.item", ITEM_FIELDS, sep="|", names=ITEM_FIELDS, encoding="latin-1",
                       dtype={"movie_id": str}, fix=fix)
    users = read_table(folder / "u.user", [C.USER], sep="|", names=[C.USER, "age", "gender", "occupation", "zip_code"],
                       dtype={C.USER: str, "zip_code": str}, fix=fix)
    flags = items[list(GENRES)]
    if not flags.isin([0, 1]).all().all():
        raise DataError(f"{folder / 'u.item'}: genre columns must be 0/1 flags. {fix}")
    genre_lists = flags.apply(lambda r: [g for g in GENRES if r[g] == 1], axis=1)
    title = items["movie_title"].fillna("").str.strip()
    out_items = pd.DataFrame({
        C.ITEM: items["movie_id"],
        C.TITLE: title,
        C.CATEGORY: genre_lists.map(lambda g: g[0] if g else "unknown"),
        C.SUBCATEGORY: genre_lists.map(lambda g: "|".join(g) if g else "unknown"),
        C.DESCRIPTION: genre_lists.map(lambda g: "Genres: " + ", ".join(g) if g else "Genres: unknown"),
        C.IMAGE: "",
        "release_date": items["release_date"].fillna(""),
    })
    out_items.attrs.update(items.attrs)
    out_users = users.copy()
    out_users[C.DESCRIPTION] = (
        "A " + users["age"].astype(str) + "-year-old " + users["gender"].map({"M": "man", "F": "woman"}).fillna("person")
        + " working as " + users["occupation"].astype(str) + "."
    )
    rating = pd.to_numeric(data["rating"], errors="coerce")
    if rating.isna().any() or not rating.between(1, 5).all():
        raise DataError(f"{folder / 'u.data'}: ratings must be numbers from 1 to 5. {fix}")
    data[C.TIMESTAMP] = parse_timestamps(data)
    data[C.EVENT] = "rating"
    data[C.WEIGHT] = rating.astype(float)
    return Dataset("movielens-100k", out_items, out_users, data, root=folder,
                   notes={"images": "MovieLens-100k has no item images: fusion falls back to text."})


def _download_into(root: Path) -> Path:
    return download(root)
