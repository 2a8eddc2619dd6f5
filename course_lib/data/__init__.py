"""Datasets for the course: the synthetic shop (with ground truth) and MovieLens-100k, plus splits.

Not feature code: this package turns files into a validated ``Dataset`` and nothing more.
"""
from .dataset import Dataset, parse_timestamps
from .io import DataError, check_root, read_table
from .movielens import load_movielens_100k
from .shop import ShopConfig, load_shop
from .splits import SPLITS, Split, leave_last_n, make_split, split_by_time, split_per_user, split_random

DATASETS = ("shop", "movielens-100k")


def load_dataset(name: str = "shop", root=None) -> Dataset:
    """Load a dataset by name: ``"shop"`` or ``"movielens-100k"``; ``root`` is its folder."""
    if not isinstance(name, str):
        raise TypeError(f"dataset must be one of {DATASETS}, got {name!r} ({type(name).__name__})")
    root = check_root(root)
    key = name.strip().lower()
    if key == "shop":
        return load_shop(root)
    if key in ("movielens-100k", "ml-100k", "movielens"):
        if root is None:
            from .movielens import default_root

            root = default_root()
        return load_movielens_100k(root)
    raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")


def label_vocabulary(ds: Dataset) -> dict:
    """Words to name interests with: the shop's subcategories (with paraphrases), else the dataset's categories."""
    if ds.name == "shop":
        from .shop import label_words

        return label_words()
    cats = sorted(ds.items["category"].dropna().unique())
    return {c: str(c) for c in cats}


__all__ = [
    "label_vocabulary",
    "DATASETS", "DataError", "Dataset", "ShopConfig", "Split", "leave_last_n", "load_dataset",
    "load_movielens_100k", "load_shop", "make_split", "SPLITS", "parse_timestamps", "read_table", "split_by_time", "split_per_user",
    "split_random",
]
