"""Bad input at every public boundary: a clear error naming the argument (and the value), or a documented result.

Table-driven. Each row is a ``Case(func, kwargs, raises, must_mention=[...])``: ``func(**kwargs)`` must raise
``raises`` with every string of ``must_mention`` in its message (plain substrings, not regexes), or, when
``raises`` is None, return a value that ``check(value)`` accepts (a documented correct result). Values that need a
fixture (the shop, the tiny BERT, a temporary folder) are written ``L(lambda c: c.shop)`` and built when the case runs.

To cover another module, add rows to ``CASES`` (or a list of your own, concatenated below): e.g.
``Case(metrics.recall_at_k, {"recs": [[0, 1]], "relevant": [[0]], "k": -1}, ValueError, ["k", "-1"])``.
Behaviours that need more than one call (caches, concurrency, the report CLI) have their own tests further down.
"""
from __future__ import annotations

import math
import os
import shutil
import stat
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

from course_lib import cache as cache_mod
from course_lib import constants as C
from course_lib import diagnostics, exercises, fuse, plots, runtime
from course_lib.cache import EmbeddingCache
from course_lib.data import (DataError, Dataset, leave_last_n, load_dataset, load_movielens_100k, load_shop,
                             parse_timestamps, split_by_time, split_per_user, split_random)
from course_lib.encode import (ImageEncoder, ModelNotFoundError, TextEncoder, colour_texture_descriptor,
                               locate_text_model)

ROOT = Path(__file__).resolve().parents[1]
ML_FIXTURE = Path(__file__).parent / "fixtures" / "ml-100k-tiny"


# ---------------------------------------------------------------------------------------------------------
# the table machinery
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class L:
    """A keyword value built from the fixtures when the case runs: ``L(lambda c: c.shop)``."""

    make: Callable[[Any], Any]


@dataclass(frozen=True)
class Case:
    func: Callable
    kwargs: dict
    raises: type[BaseException] | tuple | None  # None: a documented result, accepted by ``check``
    must_mention: list = field(default_factory=list)
    check: Callable[[Any], bool] | None = None
    id: str = ""
    warns: type[Warning] | None = None  # the call must also warn (e.g. the cache that cannot write)


class Ctx:
    """The fixtures a case may use, created only when asked for."""

    def __init__(self, request, tmp_path):
        self._request, self.tmp = request, tmp_path

    @property
    def shop(self) -> Dataset:
        return self._request.getfixturevalue("shop")

    @property
    def tiny_bert(self) -> str:
        return self._request.getfixturevalue("tiny_bert")

    def text_encoder(self, **kw) -> TextEncoder:
        return TextEncoder(self.tiny_bert, **{"cache": False, "device": "cpu", **kw})


def _resolve(value, ctx):
    if isinstance(value, L):
        return value.make(ctx)
    return value


def _short(v) -> str:
    if isinstance(v, np.ndarray):
        return f"array{v.shape}"
    if isinstance(v, pd.DataFrame):
        return _short(v.iloc[:, 0].tolist()) if v.shape[1] == 1 and len(v) <= 3 else f"frame{v.shape}"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_short(x)}" for k, x in list(v.items())[:3]) + "}"
    if isinstance(v, (list, tuple)) and len(v) > 3:
        return f"[{_short(v[0])},...{len(v)} items]"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_short(x) for x in v) + "]"
    text = repr(v)
    return text if len(text) <= 24 else text[:21] + "..."


def _case_id(case: Case) -> str:
    if case.id:
        return case.id
    name = getattr(case.func, "__qualname__", str(case.func)).replace("<lambda>", "call")
    shown = ",".join(f"{k}={_short(v)}" for k, v in case.kwargs.items() if not isinstance(v, L))
    outcome = getattr(case.raises, "__name__", "ok") + (":" + "|".join(map(str, case.must_mention)))[:60]
    return f"{name}({shown})->{outcome}"


def run_case(case: Case, ctx: Ctx):
    kwargs = {k: _resolve(v, ctx) for k, v in case.kwargs.items()}
    ctx_warn = pytest.warns(case.warns) if case.warns else warnings.catch_warnings()
    with ctx_warn:
        if case.raises is None:
            result = case.func(**kwargs)
            assert case.check is not None, "a case without an error needs a check of its documented result"
            assert case.check(result), f"unexpected result {result!r}"
            return
        with pytest.raises(case.raises) as info:
            case.func(**kwargs)
    message = str(info.value)
    for word in case.must_mention:
        assert str(word) in message, f"{word!r} not in the message: {message}"
    assert "\n" not in message.strip(), f"the message should be one line: {message}"


# ---------------------------------------------------------------------------------------------------------
# small inputs
# ---------------------------------------------------------------------------------------------------------
RNG = np.random.default_rng(0)
A = RNG.normal(size=(6, 4))
B = RNG.normal(size=(6, 3))
NAN_A = A.copy()
NAN_A[2, 1] = np.nan
ZERO_A = A.copy()
ZERO_A[4] = 0
RAGGED = [[1.0, 2.0], [3.0]]
LABELS = ["x", "x", "y", "y", "z", "z"]
IMG = np.full((8, 8, 3), 120, dtype=np.uint8)


def toy(times=("2026-01-01", "2026-01-02", "2026-01-03"), **inter_cols):
    items = pd.DataFrame({C.ITEM: ["a", "b"], C.TITLE: ["A", "B"], C.CATEGORY: ["x", "y"], C.DESCRIPTION: ["aa", "bb"]})
    users = pd.DataFrame({C.USER: ["u1", "u2"]})
    n = len(times)
    inter = pd.DataFrame({C.USER: (["u1", "u2"] * n)[:n], C.ITEM: (["a", "b"] * n)[:n],
                          C.TIMESTAMP: pd.to_datetime(list(times)), **inter_cols})
    return items, users, inter


def toy_dataset(**kw):
    return Dataset("toy", *toy(**kw))


def log():
    return toy_dataset().interactions


def times(*values):
    return pd.DataFrame({C.TIMESTAMP: list(values)})


def text_encode(ctx_encoder, **kw):
    return ctx_encoder.encode(**kw)


def cache_at(c, dim=4):
    return EmbeddingCache(c.tmp / "cache", dim)


def pairs_table():
    return pd.DataFrame({"embedding": ["m"] * 4, "cosine": [0.1, 0.2, 0.8, 0.9],
                         "pair": ["different", "different", "same", "same"]})


class FakeEncoder:
    def encode(self, texts):
        return np.eye(len(texts), 4, dtype=np.float32) + 0.1


class NoInterests:
    interests = []
    labels = None


# ---------------------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------------------
DATA_CASES = [
    Case(load_dataset, {"name": None}, TypeError, ["dataset", "None"]),
    Case(load_dataset, {"name": "netflix"}, ValueError, ["dataset", "netflix", "shop"]),
    Case(load_dataset, {"name": "shop", "root": 42}, TypeError, ["root", "42"]),
    Case(load_dataset, {"name": "shop", "root": L(lambda c: (c.tmp / "f.txt").write_text("x") and c.tmp / "f.txt")},
         DataError, ["f.txt", "is a file"]),
    Case(load_shop, {"root": L(lambda c: c.tmp / "nope")}, DataError, ["nope", "shop folder not found"]),
    Case(load_movielens_100k, {"root": None}, TypeError, ["root", "None"]),
    Case(load_movielens_100k, {"root": ML_FIXTURE, "download": "yes"}, TypeError, ["download", "'yes'"]),
    Case(load_movielens_100k, {"root": L(lambda c: c.tmp)}, DataError, ["u.data", "not found"]),
    # timestamps: unparsable, far future, before 1970, out of range, time zones
    Case(parse_timestamps, {"frame": None}, TypeError, ["frame", "None"]),
    Case(parse_timestamps, {"frame": pd.DataFrame({"time": ["2026-01-01"]})}, ValueError, ["timestamp", "time"]),
    Case(parse_timestamps, {"frame": times("2026-01-01", "9999-12-31T00:00:00")}, DataError,
         ["row 1", "9999-12-31", "plausible range"]),
    Case(parse_timestamps, {"frame": times("2026-01-01", "1969-07-20")}, DataError, ["row 1", "1969-07-20"]),
    Case(parse_timestamps, {"frame": times(874965758, -5)}, DataError, ["row 1", "-5"]),
    Case(parse_timestamps, {"frame": times(874965758, 1e20)}, DataError, ["row 1", "out of range"]),
    Case(parse_timestamps, {"frame": times("874965758", "874965759", "soon")}, DataError,
         ["row 2", "'soon'", "Unix seconds"]),
    Case(parse_timestamps, {"frame": times("2026-05-01", "yesterday")}, DataError, ["row 1", "'yesterday'", "ISO 8601"]),
    Case(parse_timestamps, {"frame": times("2026-05-01T12:00:00+02:00", "2026-05-01T12:00:00")}, None,
         check=lambda s: s.dt.tz is None and s.tolist() == [pd.Timestamp("2026-05-01 10:00"), pd.Timestamp("2026-05-01 12:00")],
         id="parse_timestamps converts offsets to naive UTC"),
    # Dataset validation of hand-built tables
    Case(lambda **kw: toy_dataset(**kw), {"times": ("2026-01-01", "2200-01-01")}, DataError,
         ["interactions row 1", "2200-01-01", "plausible range"], id="Dataset far-future time"),
    Case(lambda **kw: toy_dataset(**kw), {"times": ("2026-01-01", None)}, DataError,
         ["interactions row 1", "empty value", "timestamp"], id="Dataset missing time"),
    Case(lambda: Dataset("toy", *toy()[:2], toy()[2].assign(timestamp=lambda d: d[C.TIMESTAMP].dt.tz_localize("UTC"))),
         {}, DataError, ["time zone"], id="Dataset tz-aware times"),
    Case(lambda: Dataset("toy", toy()[0].assign(item_id=["a", "a"]), *toy()[1:]), {}, DataError,
         ["items row 1", "duplicate item_id", "'a'"], id="Dataset duplicate ids"),
    Case(lambda: Dataset("toy", *toy()[:2], toy()[2].assign(user_id=["u1", "ghost", "u1"])), {}, DataError,
         ["interactions row 1", "'ghost'", "not found in users"], id="Dataset unknown user"),
    # Dataset.sample_users
    *[Case(lambda n, **kw: toy_dataset().sample_users(n, **kw), {"n": n}, err, ["n", shown], id=f"sample_users n={n!r}")
      for n, err, shown in [(2.5, TypeError, "2.5"), (None, TypeError, "None"), ("10", TypeError, "'10'"),
                            (0, ValueError, "0"), (-3, ValueError, "-3"), (float("nan"), TypeError, "nan")]],
    Case(lambda **kw: toy_dataset().sample_users(1, **kw), {"seed": -1}, ValueError, ["seed", "-1"],
         id="sample_users seed=-1"),
    Case(lambda n: toy_dataset().sample_users(n), {"n": 10**9}, None, check=lambda d: len(d.users) == 2,
         id="sample_users n beyond the users: all of them"),
    # splits
    Case(split_per_user, {"interactions": None}, TypeError, ["interactions", "DataFrame"]),
    Case(split_per_user, {"interactions": [1, 2]}, TypeError, ["interactions", "list"]),
    *[Case(split_per_user, {"interactions": L(lambda c: log()), "test_frac": v}, err, ["test_frac", shown],
           id=f"split_per_user test_frac={v!r}")
      for v, err, shown in [(0, ValueError, "0"), (1.5, ValueError, "1.5"), (float("nan"), ValueError, "nan"),
                            (float("inf"), ValueError, "inf"), ("0.2", TypeError, "'0.2'"), (None, TypeError, "None"),
                            (-0.1, ValueError, "-0.1")]],
    Case(split_per_user, {"interactions": L(lambda c: log().assign(timestamp=lambda d: d[C.TIMESTAMP].astype(str)))},
         TypeError, ["timestamp", "parse_timestamps"], id="split_per_user string times"),
    Case(split_per_user, {"interactions": L(lambda c: log().drop(columns=[C.USER]))}, ValueError, ["user_id"]),
    Case(split_per_user, {"interactions": L(lambda c: log().iloc[:0])}, None,
         check=lambda s: len(s.train) == 0 and len(s.test) == 0, id="split_per_user empty log: empty split"),
    *[Case(leave_last_n, {"interactions": L(lambda c: log()), "n": v}, err, ["n", shown], id=f"leave_last_n n={v!r}")
      for v, err, shown in [(2.5, TypeError, "2.5"), (None, TypeError, "None"), (0, ValueError, "0"),
                            (-1, ValueError, "-1"), ("1", TypeError, "'1'")]],
    Case(split_by_time, {"interactions": L(lambda c: log())}, ValueError, ["exactly one", "cut", "test_frac"]),
    Case(split_by_time, {"interactions": L(lambda c: log()), "cut": "2026-01-02", "test_frac": 0.2}, ValueError,
         ["exactly one"]),
    Case(split_by_time, {"interactions": L(lambda c: log()), "cut": "not a date"}, ValueError, ["cut", "not a date"]),
    Case(split_by_time, {"interactions": L(lambda c: log()), "test_frac": 2}, ValueError, ["test_frac", "2"]),
    Case(split_by_time, {"interactions": L(lambda c: log()), "cut": pd.Timestamp("2026-01-02", tz="Europe/Berlin")},
         None, check=lambda s: len(s.test) == 2, id="split_by_time tz-aware cut"),
    Case(split_random, {"interactions": L(lambda c: log()), "seed": -1}, ValueError, ["seed", "-1"]),
    Case(split_random, {"interactions": L(lambda c: log()), "seed": 2.5}, TypeError, ["seed", "2.5"]),
]

ENCODE_CASES = [
    Case(TextEncoder, {"model": None}, TypeError, ["model", "None"]),
    Case(TextEncoder, {"model": ""}, ValueError, ["model"]),
    Case(TextEncoder, {"model": L(lambda c: c.tmp / "no-such-folder")}, ModelNotFoundError,
         ["no-such-folder", "does not exist"]),
    Case(TextEncoder, {"model": L(lambda c: c.tmp)}, ModelNotFoundError, ["config.json"], id="TextEncoder empty folder"),
    *[Case(TextEncoder, {"model": L(lambda c: c.tiny_bert), key: v}, err, [key, shown], id=f"TextEncoder {key}={v!r}")
      for key, v, err, shown in [
          ("pooling", "max", ValueError, "'max'"), ("pooling", None, ValueError, "None"),
          ("batch_size", 0, ValueError, "0"), ("batch_size", -1, ValueError, "-1"),
          ("batch_size", 2.5, TypeError, "2.5"), ("batch_size", None, TypeError, "None"),
          ("batch_size", "64", TypeError, "'64'"), ("max_length", 1, ValueError, "1"),
          ("max_length", 10**6, ValueError, "1000000"), ("max_length", 65, ValueError, "64"),
          ("max_length", 8.5, TypeError, "8.5"), ("normalize", "yes", TypeError, "'yes'"),
          ("cache", 3, TypeError, "3"), ("cache", "", ValueError, "cache"), ("device", "tpu", ValueError, "'tpu'"),
          ("device", 3, TypeError, "3"), ("show_progress", "no", TypeError, "'no'")]],
    *[Case(lambda enc, **kw: enc.encode(**kw), {"enc": L(lambda c: c.text_encoder()), **kw}, err, words,
           id=f"TextEncoder.encode({_short(kw)})->{err.__name__}")
      for kw, err, words in [
          ({"texts": None}, TypeError, ["texts", "None"]),
          ({"texts": "one text"}, TypeError, ["wrap a single text in a list"]),
          ({"texts": 42}, TypeError, ["texts", "42"]),
          ({"texts": ["ok", None]}, TypeError, ["index 1", "None"]),
          ({"texts": ["ok", float("nan")]}, TypeError, ["index 1", "NaN"]),
          ({"texts": ["ok"], "batch_size": -1}, ValueError, ["batch_size", "-1"]),
          ({"texts": ["ok"], "batch_size": 0}, ValueError, ["batch_size", "0"]),
          ({"texts": ["ok"], "batch_size": 2.5}, TypeError, ["batch_size", "2.5"]),
          ({"texts": ["ok"], "show_progress": "no"}, TypeError, ["show_progress", "'no'"])]],
    Case(lambda enc, **kw: enc.encode(**kw), {"enc": L(lambda c: c.text_encoder()), "texts": []}, None,
         check=lambda v: v.shape == (0, 32), id="TextEncoder.encode empty list: (0, dim)"),
    Case(lambda enc, **kw: enc.encode(**kw), {"enc": L(lambda c: c.text_encoder()), "texts": ["red shoes"] * 3}, None,
         check=lambda v: np.allclose(v, v[0]) and np.allclose(np.linalg.norm(v, axis=1), 1),
         id="TextEncoder.encode duplicates: equal unit rows"),
    Case(lambda enc, **kw: enc.encode_one_by_one(**kw), {"enc": L(lambda c: c.text_encoder()), "texts": None},
         TypeError, ["texts", "None"]),
    Case(locate_text_model, {"name": "someone/not-a-real-model-xyz", "offline": True}, ModelNotFoundError,
         ["someone/not-a-real-model-xyz", "HF_HUB_OFFLINE=1", "all-MiniLM-L6-v2"]),
    Case(locate_text_model, {"name": 3}, TypeError, ["model", "3"]),
    # images
    *[Case(ImageEncoder, {"kind": "histogram", key: v}, err, [key, shown], id=f"ImageEncoder {key}={v!r}")
      for key, v, err, shown in [
          ("batch_size", -1, ValueError, "-1"), ("batch_size", 0, ValueError, "0"), ("batch_size", 2.5, TypeError, "2.5"),
          ("image_size", 16, ValueError, "16"), ("image_size", 10**5, ValueError, "100000"),
          ("image_size", 64.5, TypeError, "64.5"), ("cache", 1.5, TypeError, "1.5")]],
    Case(ImageEncoder, {"kind": "vit"}, ValueError, ["kind", "'vit'", "histogram"]),
    *[Case(lambda **kw: ImageEncoder("histogram", cache=False).encode(**kw), kw, err, words,
           id=f"ImageEncoder.encode({_short(kw)})->{err.__name__}")
      for kw, err, words in [
          ({"images": None}, TypeError, ["images", "None"]),
          ({"images": IMG}, TypeError, ["wrap a single picture in a list"]),
          ({"images": [IMG, None]}, TypeError, ["image 1", "None"]),
          ({"images": [np.zeros((8, 8))]}, ValueError, ["image 0", "(8, 8)"]),
          ({"images": [IMG.astype(np.float32)]}, ValueError, ["image 0", "float32"]),
          ({"images": [np.zeros((0, 8, 3), np.uint8)]}, ValueError, ["image 0", "no pixels"]),
          ({"images": [IMG, IMG], "names": ["only one"]}, ValueError, ["images has 2", "names has 1"]),
          ({"images": [IMG], "names": "x"}, TypeError, ["names"])]],
    Case(lambda **kw: ImageEncoder("histogram", cache=False).encode(**kw), {"images": []}, None,
         check=lambda v: v.shape == (0, 71), id="ImageEncoder.encode empty list: (0, dim)"),
    Case(lambda **kw: ImageEncoder("histogram", cache=False).encode(**kw),
         {"images": [np.full((1, 5, 3), 200, np.uint8), np.full((5, 1, 3), 9, np.uint8), np.zeros((1, 1, 3), np.uint8)]},
         None, check=lambda v: np.isfinite(v).all() and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5),
         id="ImageEncoder histogram of 1-pixel-high pictures: finite unit vectors"),
    Case(lambda **kw: ImageEncoder("histogram", cache=False).encode_items(**kw), {"ds": None}, TypeError,
         ["ds", "NoneType"]),
    Case(lambda **kw: ImageEncoder("histogram", cache=False).encode_items(**kw),
         {"ds": L(lambda c: c.shop), "item_ids": ["i0001", "nope"]}, ValueError, ["item_ids", "nope"]),
    Case(colour_texture_descriptor, {"images": IMG[None].astype(float)}, TypeError, ["uint8", "float64"]),
    Case(colour_texture_descriptor, {"images": IMG}, ValueError, ["(n, h, w, 3)", "(8, 8, 3)"]),
    Case(colour_texture_descriptor, {"images": IMG[None], "bins": 0}, ValueError, ["bins", "0"]),
    Case(colour_texture_descriptor, {"images": IMG[None], "bins": 2.5}, TypeError, ["bins", "2.5"]),
]

CACHE_CASES = [
    Case(EmbeddingCache, {"folder": None, "dim": 4}, TypeError, ["folder", "None"]),
    Case(EmbeddingCache, {"folder": "c", "dim": 0}, ValueError, ["dim", "0"]),
    Case(EmbeddingCache, {"folder": "c", "dim": 2.5}, TypeError, ["dim", "2.5"]),
    Case(EmbeddingCache, {"folder": "c", "dim": 4, "max_shards": 0}, ValueError, ["max_shards", "0"]),
    *[Case(lambda c, **kw: c.put(**kw), {"c": L(cache_at), **kw}, err, words, id=f"EmbeddingCache.put {words[-1]}")
      for kw, err, words in [
          ({"keys": "abc", "vectors": np.ones((1, 4))}, TypeError, ["keys", "wrap it in a list"]),
          ({"keys": None, "vectors": np.ones((1, 4))}, TypeError, ["keys", "None"]),
          ({"keys": [1], "vectors": np.ones((1, 4))}, TypeError, ["keys[0]", "1"]),
          ({"keys": [""], "vectors": np.ones((1, 4))}, TypeError, ["keys[0]", "''"]),
          ({"keys": ["a", "a"], "vectors": np.ones((2, 4))}, ValueError, ["keys", "'a'", "repeated"]),
          ({"keys": ["x" * 300], "vectors": np.ones((1, 4))}, ValueError, ["keys[0]", "300", "256"]),
          ({"keys": ["a"], "vectors": np.ones((2, 4))}, ValueError, ["vectors", "1 rows", "2"]),
          ({"keys": ["a"], "vectors": np.ones((1, 5))}, ValueError, ["vectors", "4 columns", "5"]),
          ({"keys": ["a"], "vectors": np.ones(4)}, ValueError, ["vectors", "2-D", "(4,)"]),
          ({"keys": ["a", "b"], "vectors": RAGGED}, TypeError, ["vectors", "ragged"])]],
    Case(lambda c, **kw: c.put(**kw), {"c": L(cache_at), "keys": ["z", "n", "ok"],
                                       "vectors": np.array([[0, 0, 0, 0], [np.nan, 1, 1, 1], [1, 2, 3, 4]], float)},
         None, warns=RuntimeWarning, check=lambda r: r is None, id="EmbeddingCache.put zero and NaN rows: warned, skipped"),
    Case(lambda c, **kw: c.get(**kw), {"c": L(cache_at), "keys": "abc"}, TypeError, ["keys", "wrap it in a list"]),
    Case(lambda c, **kw: c.get(**kw), {"c": L(cache_at), "keys": None}, TypeError, ["keys", "None"]),
    Case(lambda c, **kw: c.get(**kw), {"c": L(cache_at), "keys": ["unknown", "unknown"]}, None,
         check=lambda r: not r[0].any() and r[1].shape == (2, 4) and not r[1].any(),
         id="EmbeddingCache.get unknown keys: not found"),
]

FUSE_CASES = [
    Case(fuse.fuse, {"blocks": None, "weights": None}, TypeError, ["blocks", "None"]),
    Case(fuse.fuse, {"blocks": [A, B], "weights": ["0.5", "0.5"]}, TypeError, ["weights[0]", "'0.5'"]),
    Case(fuse.fuse, {"blocks": [A, B], "weights": [0.5]}, ValueError, ["2 blocks", "1 weights"]),
    Case(fuse.fuse, {"blocks": [A, B], "weights": [float("nan"), 1]}, ValueError, ["weights[0]", "nan"]),
    Case(fuse.fuse, {"blocks": [A, B], "weights": [1, float("inf")]}, ValueError, ["weights[1]", "inf"]),
    Case(fuse.fuse, {"blocks": [A, B], "weights": [-1, 1]}, ValueError, ["weights[0]", "-1"]),
    Case(fuse.fuse, {"blocks": [A, B], "weights": [0, 0]}, ValueError, ["sum to > 0"]),
    Case(fuse.fuse, {"blocks": [A, B], "weights": None}, TypeError, ["weights", "None"]),
    Case(fuse.fuse, {"blocks": [A[0], B], "weights": [1, 1]}, ValueError, ["blocks[0]", "2-D", "(4,)"]),
    Case(fuse.fuse, {"blocks": [RAGGED, B], "weights": [1, 1]}, TypeError, ["blocks[0]", "ragged"]),
    Case(fuse.fuse, {"blocks": {"text": A}, "weights": {"image": 1.0}}, ValueError, ["same blocks", "text"]),
    Case(fuse.fuse, {"blocks": {"text": A}, "weights": {"text": "heavy"}}, TypeError, ["weights['text']", "'heavy'"]),
    Case(fuse.fuse, {"blocks": [], "weights": []}, ValueError, ["at least one block"]),
    Case(fuse.fuse, {"blocks": A, "weights": [1]}, TypeError, ["blocks", "one array", "(6, 4)"]),
    Case(fuse.fuse, {"blocks": [A, B[:3]], "weights": [1, 1]}, ValueError, ["different numbers of rows"]),
    Case(fuse.fuse_text_image, {"text": A, "image": B, "alpha": "0.5"}, TypeError, ["alpha", "'0.5'"]),
    Case(fuse.fuse_text_image, {"text": A, "image": B, "alpha": float("nan")}, ValueError, ["alpha", "nan"]),
    Case(fuse.fuse_text_image, {"text": A, "image": B, "alpha": 0.5, "beta": float("inf")}, ValueError, ["beta", "inf"]),
    Case(fuse.fuse_text_image, {"text": A, "image": B, "alpha": -1}, ValueError, ["alpha", "-1"]),
    Case(fuse.fuse_text_image, {"text": A, "image": B, "alpha": 0, "beta": 0}, ValueError, ["alpha=0", "beta=0"]),
    Case(fuse.fuse_text_image, {"text": None, "image": B}, TypeError, ["text", "None"]),
    Case(fuse.fuse_text_image, {"text": NAN_A, "image": B}, ValueError, ["text", "NaN", "[2]"]),
    Case(fuse.fuse_text_image, {"text": ZERO_A, "image": B}, ValueError, ["text", "all-zero", "[4]"]),
    Case(fuse.fuse_text_image, {"text": A, "image": B, "alpha": 1.0, "beta": 0.0}, None,
         check=lambda f: np.allclose(f, A / np.linalg.norm(A, axis=1, keepdims=True), atol=1e-6),
         id="fuse_text_image beta=0: the normalised text block"),
    Case(fuse.l2_normalize, {"x": [[0.0, 0.0]]}, ValueError, ["all-zero", "[0]"]),
    Case(fuse.l2_normalize, {"x": np.zeros((0, 3))}, None, check=lambda v: v.shape == (0, 3),
         id="l2_normalize empty: empty"),
    Case(fuse.pca_project, {"x": A, "dim": 2.5}, TypeError, ["dim", "2.5"]),
    Case(fuse.pca_project, {"x": A, "dim": 0}, ValueError, ["dim", "0"]),
    Case(fuse.pca_project, {"x": A, "dim": 10**6}, ValueError, ["dim", "1000000"]),
    Case(fuse.pca_project, {"x": A, "dim": 2, "fit_rows": [0, 99]}, ValueError, ["fit_rows", "99"]),
    Case(fuse.pca_project, {"x": A, "dim": 3, "fit_rows": [0, 1]}, ValueError, ["fit_rows", "2 rows", "dim=3"]),
    Case(fuse.pca_project, {"x": A, "dim": 2, "fit_rows": [True, False]}, ValueError, ["fit_rows", "6 entries"]),
    Case(fuse.pca_project, {"x": A, "dim": 2, "seed": -1}, ValueError, ["seed", "-1"]),
    Case(fuse.fuse_by_projection, {"text": A, "image": B, "alpha": 2, "dim": 2}, ValueError, ["alpha", "2"]),
    Case(fuse.text_only_query, {"text_vecs": A, "image_dim": -1}, ValueError, ["image_dim", "-1"]),
    Case(fuse.text_only_query, {"text_vecs": A, "image_dim": 2.5}, TypeError, ["image_dim", "2.5"]),
    Case(fuse.article_fusion, {"text": A, "image": B, "alpha": "a", "beta": 0.5}, TypeError, ["alpha", "'a'"]),
]

DIAGNOSTICS_CASES = [
    Case(diagnostics.neighbour_precision, {"vectors": A[0], "labels": LABELS}, ValueError, ["vectors", "2-D"]),
    Case(diagnostics.neighbour_precision, {"vectors": A, "labels": None}, TypeError, ["labels", "None"]),
    Case(diagnostics.neighbour_precision, {"vectors": A, "labels": LABELS[:5]}, ValueError, ["6 vectors", "5 labels"]),
    Case(diagnostics.neighbour_precision, {"vectors": A, "labels": LABELS[:5] + [None]}, ValueError,
         ["labels", "missing", "[5]"]),
    Case(diagnostics.neighbour_precision, {"vectors": NAN_A, "labels": LABELS}, ValueError, ["vectors", "NaN", "[2]"]),
    Case(diagnostics.neighbour_precision, {"vectors": A, "labels": LABELS, "k": 2.5}, TypeError, ["k", "2.5"]),
    Case(diagnostics.neighbour_precision, {"vectors": A, "labels": LABELS, "k": 0}, ValueError, ["k", "0"]),
    Case(diagnostics.neighbour_precision, {"vectors": A, "labels": LABELS, "k": 6}, ValueError, ["k", "6", "[1, 5]"]),
    Case(diagnostics.neighbour_precision, {"vectors": A, "labels": LABELS, "k": 1, "per_item": "yes"}, TypeError,
         ["per_item", "'yes'"]),
    Case(diagnostics.neighbour_precision, {"vectors": np.repeat(np.eye(3), 2, axis=0) + 0.01, "labels": LABELS, "k": 1},
         None, check=lambda p: p == 1.0, id="neighbour_precision duplicates: each finds its twin"),
    Case(diagnostics.pair_cosines, {"vectors": A, "labels": LABELS, "n_pairs": 0}, ValueError, ["n_pairs", "0"]),
    Case(diagnostics.pair_cosines, {"vectors": A, "labels": LABELS, "n_pairs": 2.5}, TypeError, ["n_pairs", "2.5"]),
    Case(diagnostics.pair_cosines, {"vectors": A, "labels": LABELS, "seed": -1}, ValueError, ["seed", "-1"]),
    Case(diagnostics.pair_cosines, {"vectors": A[:1], "labels": LABELS[:1]}, ValueError, ["at least 2 rows"]),
    Case(diagnostics.pair_cosines, {"vectors": ZERO_A, "labels": LABELS, "n_pairs": 50}, None,
         check=lambda df: np.isfinite(df["cosine"]).all(), id="pair_cosines zero row: cosine 0, never NaN"),
    Case(diagnostics.keyword_vs_semantic, {"encoder": None, "texts": ["a b"], "labels": ["x"], "queries": {"x": "a"}},
         TypeError, ["encoder", "NoneType"]),
    Case(diagnostics.keyword_vs_semantic, {"encoder": FakeEncoder(), "texts": ["a b"], "labels": ["x"], "queries": ["a"]},
         TypeError, ["queries", "list"]),
    Case(diagnostics.keyword_vs_semantic, {"encoder": FakeEncoder(), "texts": ["a b"], "labels": ["x"], "queries": {}},
         ValueError, ["queries", "empty"]),
    Case(diagnostics.keyword_vs_semantic, {"encoder": FakeEncoder(), "texts": "a b", "labels": ["x"],
                                           "queries": {"x": "a"}}, TypeError, ["texts", "wrap it in a list"]),
    Case(diagnostics.keyword_vs_semantic, {"encoder": FakeEncoder(), "texts": ["a", None], "labels": ["x", "x"],
                                           "queries": {"x": "a"}}, TypeError, ["texts[1]", "None"]),
    Case(diagnostics.keyword_vs_semantic, {"encoder": FakeEncoder(), "texts": ["a b"], "labels": ["x"],
                                           "queries": {"y": "a"}}, ValueError, ["label 'y'", "no texts"]),
    Case(diagnostics.pooling_report, {"vectors": [A], "labels": LABELS, "groups": LABELS}, TypeError,
         ["vectors", "dict"]),
    Case(diagnostics.pooling_report, {"vectors": {}, "labels": LABELS, "groups": LABELS}, ValueError,
         ["vectors", "empty"]),
    Case(diagnostics.pooling_report, {"vectors": {"m": A}, "labels": LABELS, "groups": LABELS, "threshold": 2},
         ValueError, ["threshold", "2"]),
    Case(diagnostics.interest_precision, {"user_vecs": A[:2], "item_vecs": B, "user_interests": [{"x"}, {"y"}],
                                          "item_labels": LABELS}, ValueError, ["item_vecs", "4 columns", "3"]),
    Case(diagnostics.interest_precision, {"user_vecs": A[:2], "item_vecs": A, "user_interests": "xy",
                                          "item_labels": LABELS}, TypeError, ["user_interests", "wrap it in a list"]),
    Case(diagnostics.interest_precision, {"user_vecs": A[:2], "item_vecs": A, "user_interests": ["x", "y"],
                                          "item_labels": LABELS}, TypeError, ["user_interests[0]", "'x'"]),
    Case(diagnostics.interest_precision, {"user_vecs": A[:2], "item_vecs": A, "user_interests": [{"x"}, {"y"}],
                                          "item_labels": LABELS, "k": 7}, ValueError, ["k", "7"]),
]

RUNTIME_CASES = [
    Case(runtime.get_device, {"preference": 3}, TypeError, ["device", "3"]),
    Case(runtime.get_device, {"preference": "tpu"}, ValueError, ["device", "'tpu'", "cuda"]),
    Case(runtime.get_device, {"preference": "cpu"}, None, check=lambda d: d.type == "cpu", id="get_device cpu"),
    Case(runtime.set_seed, {"seed": -1}, ValueError, ["seed", "-1", "4294967295"]),
    Case(runtime.set_seed, {"seed": 2**32}, ValueError, ["seed", "4294967296"]),
    Case(runtime.set_seed, {"seed": 2.5}, TypeError, ["seed", "2.5"]),
    Case(runtime.set_seed, {"seed": None}, TypeError, ["seed", "None"]),
    Case(runtime.set_seed, {"seed": True}, TypeError, ["seed", "True"]),
    Case(runtime.set_seed, {"seed": "42"}, TypeError, ["seed", "'42'"]),
    Case(runtime.set_seed, {"seed": 2**32 - 1}, None, check=lambda r: r is None, id="set_seed largest seed"),
    Case(runtime.cache_dir, {"create": "yes"}, TypeError, ["create", "'yes'"]),
    Case(runtime.environment_check, {"dataset_root": 3}, TypeError, ["dataset_root", "3"]),
]

EXERCISE_CASES = [
    Case(exercises.check, {"name": None, "answer": 1, "expected": 1}, TypeError, ["name", "None"]),
    Case(exercises.check, {"name": "q", "answer": 1, "expected": 1, "tol": -1}, ValueError, ["tol", "-1"]),
    Case(exercises.check, {"name": "q", "answer": 1, "expected": 1, "tol": float("nan")}, ValueError, ["tol", "nan"]),
    Case(exercises.check, {"name": "q", "answer": 1, "expected": 1, "tol": "0.1"}, TypeError, ["tol", "'0.1'"]),
    Case(exercises.check, {"name": "q", "answer": 1, "expected": None}, ValueError, ["q", "expected", "None"]),
    Case(exercises.check, {"name": "q", "answer": 1, "expected": float("nan")}, ValueError, ["q", "expected", "nan"]),
    Case(exercises.check, {"name": "q", "answer": 1, "expected": 1, "hint": 3}, TypeError, ["hint", "3"]),
    Case(exercises.check, {"name": "q", "answer": None, "expected": 1}, None, check=lambda ok: ok is False,
         id="check unanswered: False, not an error"),
    Case(exercises.check, {"name": "q", "answer": float("inf"), "expected": 1.0}, None, check=lambda ok: ok is False,
         id="check infinite answer: wrong, not an error"),
    Case(exercises.welcome_expected, {"ds": None}, TypeError, ["ds", "NoneType"]),
    Case(exercises.welcome_expected, {"ds": L(lambda c: Dataset("empty", *toy()[:2], toy()[2].iloc[:0]))}, ValueError,
         ["'empty'", "no interactions"]),
]

PLOT_CASES = [
    Case(plots.plot_long_tail, {"ds": None}, TypeError, ["ds", "NoneType"]),
    Case(plots.plot_category_mix, {"ds": "shop"}, TypeError, ["ds", "str"]),
    Case(plots.show_items, {"ds": L(lambda c: c.shop), "item_ids": ["nope"]}, ValueError, ["item_ids", "'nope'"]),
    Case(plots.show_items, {"ds": L(lambda c: c.shop), "item_ids": "i0001"}, TypeError, ["item_ids", "wrap it"]),
    Case(plots.show_items, {"ds": L(lambda c: c.shop), "item_ids": None}, TypeError, ["item_ids", "None"]),
    Case(plots.show_items, {"ds": L(lambda c: c.shop), "item_ids": ["i0001"], "ncols": 0}, ValueError, ["ncols", "0"]),
    Case(plots.show_items, {"ds": L(lambda c: c.shop), "item_ids": ["i0001"], "ncols": 2.5}, TypeError,
         ["ncols", "2.5"]),
    Case(plots.show_items, {"ds": L(lambda c: c.shop), "item_ids": ["i0001"], "scores": [0.1, 0.2]}, ValueError,
         ["scores", "1 entries", "2"]),
    Case(plots.plot_user_timeline, {"ds": L(lambda c: c.shop), "user_id": "ghost"}, ValueError,
         ["user_id", "'ghost'"]),
    Case(plots.plot_user_timeline, {"ds": L(lambda c: c.shop), "user_id": "u0001", "color_by": "nope"}, ValueError,
         ["color_by", "'nope'"]),
    Case(plots.plot_user_timeline, {"ds": L(lambda c: c.shop), "user_id": L(lambda c: c.shop.cold_users()[0])},
         ValueError, ["no interactions", "warm user"]),
    Case(plots.plot_user_timeline, {"ds": L(lambda c: c.shop), "user_id": L(lambda c: c.shop.example_user()),
                                    "labels": ["a"]}, ValueError,
         ["labels", "one entry per interaction"]),
    Case(plots.plot_cosine_hist, {"pairs": None}, TypeError, ["pairs", "NoneType"]),
    Case(plots.plot_cosine_hist, {"pairs": pairs_table().drop(columns=["pair"])}, ValueError, ["pairs", "['pair']"]),
    Case(plots.plot_cosine_hist, {"pairs": pairs_table().iloc[:0]}, ValueError, ["pairs", "empty"]),
    Case(plots.plot_cosine_hist, {"pairs": pairs_table(), "threshold": float("inf")}, ValueError, ["threshold", "inf"]),
    Case(plots.plot_sweep, {"df": pd.DataFrame({"a": [1, 2], "r": [0.1, 0.2]}), "x": "a", "ys": "r"}, TypeError,
         ["ys", "['r']"]),
    Case(plots.plot_sweep, {"df": pd.DataFrame({"a": [1, 2], "r": [0.1, 0.2]}), "x": "a", "ys": ["q"]}, ValueError,
         ["df", "['q']"]),
    Case(plots.plot_metric_bars, {"table": pd.DataFrame({"ndcg": [0.1]}), "metric": "recall"}, ValueError,
         ["table", "['recall']"]),
    Case(plots.plot_lines, {"df": pd.DataFrame({"n": [1], "r": [0.1]}), "x": "n", "y": "r", "group": "method"},
         ValueError, ["df", "['method']"]),
    Case(plots.plot_count_hist, {"counts": {}, "xlabel": "n"}, ValueError, ["counts", "empty"]),
    Case(plots.plot_count_hist, {"counts": [1, 2], "xlabel": "n"}, TypeError, ["counts", "list"]),
    Case(plots.plot_count_hist, {"counts": {"a": []}, "xlabel": "n"}, ValueError, ["counts['a']", "empty"]),
    Case(plots.plot_count_hist, {"counts": {"a": [1, np.nan]}, "xlabel": "n"}, ValueError, ["counts['a']", "NaN"]),
    Case(plots.plot_interest_timeline, {"ds": L(lambda c: c.shop), "user_id": "u0001", "ui": None}, TypeError,
         ["ui", "NoneType"]),
    Case(plots.plot_interest_timeline, {"ds": L(lambda c: c.shop), "user_id": "ghost", "ui": NoInterests()}, ValueError,
         ["user_id", "'ghost'"]),
]

# ---- the lead's modules: metrics, rank, catalogue, profiles, baselines, evaluate, coldstart, files ----------------
from course_lib import baselines as BL  # noqa: E402
from course_lib import coldstart as CS  # noqa: E402
from course_lib import evaluate as EV  # noqa: E402
from course_lib import files as FILES  # noqa: E402
from course_lib import metrics as M  # noqa: E402
from course_lib import profiles as PR  # noqa: E402
from course_lib import rank as RK  # noqa: E402
from course_lib.catalogue import Catalogue  # noqa: E402
from course_lib.segments import user_segments  # noqa: E402

TOY_ITEMS = pd.DataFrame({C.ITEM: list("abcde")})
TOY_VECS = np.eye(5, dtype=np.float32)
TOY_CAT = Catalogue.from_items(TOY_ITEMS, TOY_VECS)
TOY_LOG = pd.DataFrame({C.USER: ["u1", "u1", "u2"], C.ITEM: ["a", "b", "a"],
                        C.TIMESTAMP: pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]), C.WEIGHT: 1.0})
TOY_TEST = pd.DataFrame({C.USER: ["u1", "u2"], C.ITEM: ["c", "d"],
                         C.TIMESTAMP: pd.to_datetime(["2026-01-10", "2026-01-11"]), C.WEIGHT: 1.0})
NAN_VECS = TOY_VECS.copy()
NAN_VECS[1, 1] = np.nan


def _fitted(model):
    return model.fit(TOY_LOG)


def _read_json(path):
    import json

    return json.loads(Path(path).read_text())


LEAD_CASES = [
    # metrics
    Case(M.recall_at_k, {"recommended": [[0, 1]], "relevant": [{0}], "k": None}, TypeError, ["k", "None"]),
    Case(M.ndcg_at_k, {"recommended": [[0, 1]], "relevant": [{0}], "k": 2.5}, TypeError, ["k", "2.5"]),
    Case(M.ndcg_at_k, {"recommended": [[0, 1]], "relevant": [{0}], "k": -3}, ValueError, ["k", "-3"]),
    Case(M.ndcg_at_k, {"recommended": [[7, 7, 7]], "relevant": [{7}], "k": 3}, ValueError, ["item 7", "more than once"]),
    Case(M.precision_at_k, {"recommended": [[0], [1]], "relevant": [{0}], "k": 1}, ValueError, ["2 lists", "1 relevant"]),
    Case(M.catalogue_coverage, {"recommended": [[0, 5]], "n_items": 3}, ValueError, ["[0, 3)", "n_items"]),
    Case(M.catalogue_coverage, {"recommended": [[0]], "n_items": 1.5}, TypeError, ["n_items", "1.5"]),
    Case(M.catalogue_coverage, {"recommended": [[0, -1]], "n_items": 3}, None,
         check=lambda v: v == pytest.approx(1 / 3), id="coverage ignores -1 padding"),
    Case(M.novelty, {"recommended": [[0]], "item_popularity": [-2.0, 1.0], "n_users": 3}, ValueError,
         ["item_popularity", "n_users=3"]),
    Case(M.novelty, {"recommended": [[0]], "item_popularity": [1.0, 1.0], "n_users": 0}, ValueError, ["n_users", "0"]),
    Case(M.novelty, {"recommended": [[0]], "item_popularity": [np.nan, 1.0], "n_users": 3}, ValueError,
         ["item_popularity", "NaN"]),
    Case(M.intra_list_diversity, {"recommended": [[0, 1]], "item_vecs": NAN_VECS}, ValueError, ["item_vecs", "NaN"]),
    Case(M.intra_list_diversity, {"recommended": [[0, 9]], "item_vecs": TOY_VECS}, ValueError, ["outside [0, 5)"]),
    Case(M.auc, {"scores": np.array([[0.1, np.nan, 0.3]]), "relevant": [{0}]}, ValueError, ["non-finite"]),
    Case(M.auc, {"scores": np.array([[0.1, 0.2, 0.3]]), "relevant": [{0}], "exclude": [[7]]}, ValueError,
         ["exclude", "7"]),
    Case(M.auc, {"scores": np.array([[0.3, 0.2, 0.1]]), "relevant": [{0}], "exclude": [[-1]]}, None,
         check=lambda r: r.value == 1.0, id="auc: -1 in exclude is padding, not the last item"),
    # rank
    Case(RK.top_k, {"query_vecs": A, "item_vecs": A, "k": None}, TypeError, ["k", "None"]),
    Case(RK.top_k, {"query_vecs": A[0], "item_vecs": A, "k": 2}, ValueError, ["query_vecs", "2-D"]),
    Case(RK.top_k, {"query_vecs": A, "item_vecs": A, "k": 2, "exclude": [[9]] * 6}, ValueError, ["exclude", "9"]),
    Case(RK.top_k, {"query_vecs": NAN_A, "item_vecs": A, "k": 2}, ValueError, ["query_vecs", "NaN"]),
    Case(RK.top_k, {"query_vecs": A, "item_vecs": A, "k": 6, "exclude": [[-1]] * 6}, None,
         check=lambda r: (r[1] >= 0).all(), id="top_k: -1 in exclude hides nothing"),
    Case(RK.top_k_scores, {"scores": np.array([[np.inf, 0.0]]), "k": 1}, ValueError, ["NaN or infinite", "exclude="]),
    Case(RK.top_k_scores, {"scores": np.zeros((1, 3)), "k": 2, "tiebreak": [0, 1]}, ValueError, ["tiebreak", "3"]),
    Case(RK.top_k_scores, {"scores": np.zeros(3), "k": 2}, ValueError, ["scores", "2-D"]),
    Case(RK.above_threshold, {"query_vecs": NAN_A, "item_vecs": A}, ValueError, ["query_vecs", "NaN"]),
    Case(RK.above_threshold, {"query_vecs": A, "item_vecs": A, "threshold": 2.0}, ValueError, ["threshold", "2.0"]),
    Case(RK.ann_index, {"item_vecs": NAN_A}, ValueError, ["item_vecs", "NaN"]),
    Case(RK.ann_index, {"item_vecs": A, "m": 0}, ValueError, ["m", "0"]),
    # catalogue
    Case(Catalogue.from_items, {"items": ["a", "b", "a"]}, ValueError, ["unique", "'a'"]),
    Case(Catalogue.from_items, {"items": TOY_ITEMS, "vectors": TOY_VECS[:3]}, ValueError, ["5 rows", "3"]),
    Case(Catalogue.from_items, {"items": TOY_ITEMS, "vectors": NAN_VECS}, ValueError, ["item vectors", "NaN", "[1]"]),
    Case(TOY_CAT.rows, {"ids": ["a", "zz"]}, ValueError, ["not in the catalogue", "'zz'"]),
    Case(Catalogue.from_items, {"items": pd.DataFrame({"id": [1]})}, ValueError, ["item_id"]),
    # profiles
    Case(PR.history_profiles, {"interactions": TOY_LOG, "catalogue": TOY_CAT, "users": ["u1", "u1"]}, ValueError,
         ["users", "repeated", "'u1'"]),
    Case(PR.history_profiles, {"interactions": TOY_LOG, "catalogue": TOY_CAT, "half_life_days": float("nan")},
         ValueError, ["half_life_days", "nan"]),
    Case(PR.history_profiles, {"interactions": TOY_LOG, "catalogue": TOY_CAT, "half_life_days": -1}, ValueError,
         ["half_life_days", "-1"]),
    Case(PR.history_profiles, {"interactions": TOY_LOG.assign(item_id=["a", "zz", "a"]), "catalogue": TOY_CAT},
         ValueError, ["not in the catalogue", "'zz'"]),
    Case(PR.history_profiles, {"interactions": TOY_LOG, "catalogue": Catalogue.from_items(TOY_ITEMS)}, ValueError,
         ["needs item vectors"]),
    Case(PR.history_profiles, {"interactions": TOY_LOG.assign(weight=[1.0, np.nan, 1.0]), "catalogue": TOY_CAT},
         ValueError, ["weight", "NaN"]),
    Case(PR.blend_profiles, {"history": A, "description": A, "n_interactions": [1, 2, np.nan, 1, 1, 1]}, ValueError,
         ["n_interactions", "NaN"]),
    Case(PR.blend_profiles, {"history": A, "description": A, "n_interactions": [1] * 6, "k": 0}, ValueError, ["k", "0"]),
    Case(PR.blend_profiles, {"history": A, "description": B, "n_interactions": [1] * 6}, ValueError,
         ["description", "4 columns"]),
    # baselines
    Case(BL.EASE, {"catalogue": TOY_CAT, "lam": -1}, ValueError, ["lam", "-1"]),
    Case(BL.EASE, {"catalogue": TOY_CAT, "lam": "big"}, TypeError, ["lam", "'big'"]),
    Case(BL.EASE, {"catalogue": TOY_CAT, "fallback": "description"}, ValueError, ["fallback", "'description'"]),
    Case(BL.ItemKNN, {"catalogue": TOY_CAT, "neighbours": 2.5}, TypeError, ["neighbours", "2.5"]),
    Case(BL.ItemKNN, {"catalogue": TOY_CAT, "shrink": -1}, ValueError, ["shrink", "-1"]),
    Case(BL.Hybrid, {"catalogue": TOY_CAT, "content": BL.Content(TOY_CAT), "collaborative": BL.EASE(TOY_CAT),
                     "weight": float("nan")}, ValueError, ["weight", "nan"]),
    Case(BL.Hybrid, {"catalogue": TOY_CAT, "content": "content", "collaborative": BL.EASE(TOY_CAT)}, TypeError,
         ["content", "str"]),
    Case(BL.Content, {"catalogue": TOY_ITEMS, "item_vecs": NAN_VECS}, ValueError, ["item vectors", "NaN"]),
    Case(BL.Content, {"catalogue": TOY_ITEMS}, ValueError, ["Content needs item vectors"]),
    Case(BL.RandomRec, {"catalogue": TOY_CAT, "seed": -1}, ValueError, ["seed", "-1"]),
    Case(lambda: BL.EASE(TOY_CAT).fit(TOY_LOG.iloc[:0]), {}, ValueError, ["train is empty"], id="EASE.fit(empty)"),
    Case(lambda: BL.EASE(TOY_CAT).fit("log.csv"), {}, TypeError, ["train", "str"], id="EASE.fit(str)"),
    Case(lambda: BL.EASE(TOY_CAT).fit(TOY_LOG.assign(item_id="zz")), {}, ValueError, ["train item_id", "'zz'"],
         id="EASE.fit(unknown item)"),
    Case(lambda: BL.EASE(TOY_CAT).score(["u1"]), {}, RuntimeError, ["not fitted", "fit(train)"], id="EASE.score unfitted"),
    Case(lambda: _fitted(BL.Popularity(TOY_CAT)).recommend(["u1"], k=0), {}, ValueError, ["k", "0"],
         id="recommend(k=0)"),
    Case(lambda: _fitted(BL.Popularity(TOY_CAT)).recommend(["u1"], exclude="all"), {}, ValueError,
         ["exclude", "'all'"], id="recommend(exclude='all')"),
    Case(lambda: _fitted(BL.Popularity(TOY_CAT)).recommend(["ghost"], k=2), {}, None,
         check=lambda r: r.tolist() == [[0, 1]], id="recommend(new user) = the popular list"),
    # evaluate
    Case(EV.evaluate, {"methods": {}, "train": TOY_LOG, "test": TOY_TEST, "catalogue": TOY_CAT}, ValueError,
         ["methods", "non-empty"]),
    Case(EV.evaluate, {"methods": {"x": object()}, "train": TOY_LOG, "test": TOY_TEST, "catalogue": TOY_CAT, "k": 2},
         TypeError, ["'x'", "fit(train)"]),
    Case(EV.evaluate, {"methods": {"p": BL.Popularity(TOY_CAT)}, "train": TOY_LOG, "test": TOY_TEST,
                       "catalogue": TOY_CAT, "k": 0}, ValueError, ["k", "0"]),
    Case(EV.evaluate, {"methods": {"p": BL.Popularity(TOY_CAT)}, "train": TOY_LOG, "test": TOY_TEST,
                       "catalogue": TOY_CAT, "k": 2, "task": "all"}, ValueError, ["task", "'all'", "discovery"]),
    Case(EV.evaluate, {"methods": {"p": BL.Popularity(TOY_CAT)}, "train": TOY_LOG, "test": TOY_TEST.iloc[:0],
                       "catalogue": TOY_CAT, "k": 2}, ValueError, ["test split is empty"]),
    Case(EV.evaluate, {"methods": {"p": BL.Popularity(TOY_CAT)}, "train": TOY_LOG,
                       "test": TOY_TEST.assign(item_id="zz"), "catalogue": TOY_CAT, "k": 2}, ValueError,
         ["test item_id", "'zz'"]),
    Case(EV.evaluate, {"methods": {"ease": BL.EASE(TOY_CAT, fallback=None)}, "train": TOY_LOG,
                       "test": TOY_TEST.assign(user_id=["u1", "newbie"]), "catalogue": TOY_CAT, "k": 2}, ValueError,
         ["'ease'", "constant score row", "declares no fallback"]),
    Case(EV.bootstrap_ci, {"values": []}, ValueError, ["no values"]),
    Case(EV.bootstrap_ci, {"values": [0.1, np.nan]}, ValueError, ["NaN"]),
    Case(EV.bootstrap_ci, {"values": [0.1, 0.2], "n_boot": 0}, ValueError, ["n_boot", "0"]),
    Case(EV.bootstrap_ci, {"values": [0.1, 0.2], "level": 1.5}, ValueError, ["level", "1.5"]),
    Case(EV.bootstrap_ci, {"values": [0.4]}, None, check=lambda r: all(np.isnan(r)), id="bootstrap of one value: nan"),
    Case(EV.paired_ci, {"a": [0.1, 0.2], "b": [0.1]}, ValueError, ["same users"]),
    Case(EV.tune, {"make": lambda v: BL.EASE(TOY_CAT, v), "grid": [], "train": TOY_LOG, "valid": TOY_TEST,
                   "catalogue": TOY_CAT}, ValueError, ["grid is empty"]),
    Case(user_segments, {"train": TOY_LOG, "users": ["u1"], "thresholds": (5, 2)}, ValueError, ["thresholds"]),
    # coldstart
    Case(CS.new_user_curve, {"interactions": TOY_LOG, "catalogue": TOY_CAT, "description_vecs": {}, "ns": [-1]},
         ValueError, ["ns entry", "-1"]),
    Case(CS.new_user_curve, {"interactions": TOY_LOG, "catalogue": TOY_CAT, "description_vecs": {}, "k": 0},
         ValueError, ["k", "0"]),
    Case(CS.threshold_counts, {"user_vecs": NAN_A, "item_vecs": A}, ValueError, ["query_vecs", "NaN"]),
    # files
    Case(lambda path: _read_json(FILES.write_json(path, {"x": float("nan"), "y": [np.float32(1.5), float("inf")]})),
         {"path": L(lambda c: c.tmp / "m.json")}, None, check=lambda d: d == {"x": None, "y": [1.5, None]},
         id="write_json: NaN and inf become null"),
]

# ---- issue 25: the last weak answers of a ~300-probe re-run, one row each -------------------------------------
from scipy import sparse  # noqa: E402

from course_lib import tiers as TI  # noqa: E402
from course_lib.serving import MultiInterest  # noqa: E402

FAR = pd.Timestamp("9999-12-31")
FAR_LOG = TOY_LOG.assign(timestamp=[pd.Timestamp("2026-01-01"), FAR, pd.Timestamp("2026-01-03")])
STR_LOG = TOY_LOG.assign(timestamp=["2026-01-01", "2026-01-02", "2026-01-03"])
LONE_SURROGATE = "smart watch \ud83d"


def png_header(path: Path, w: int, h: int) -> Path:
    """A PNG file that declares ``w`` x ``h`` pixels and holds almost none: what a reader sees before decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b""))
    return path


def with_env(name: str, value: str, fn):
    """``fn()`` with ``$name`` set to ``value`` for the call only."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        return fn()
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def toy_with_images(paths):
    items, users, inter = toy()
    return Dataset("toy", items.assign(image=paths), users, inter, root=Path("/tmp/course-toy"))


def shop_copy_with(c, file: str, line: int, column: int, value: str) -> Path:
    """A copy of the shop (no images) with one field of one line of ``file`` replaced."""
    root = copy_shop(c.shop, c.tmp / "shop")
    lines = (root / file).read_text().splitlines()
    parts = lines[line].split(",")
    parts[column] = value
    lines[line] = ",".join(parts)
    (root / file).write_text("\n".join(lines) + "\n")
    return root


def comma_udata(c) -> Path:
    shutil.copytree(ML_FIXTURE, c.tmp, dirs_exist_ok=True)
    (c.tmp / "u.data").write_text((c.tmp / "u.data").read_text().replace("\t", ","))
    return c.tmp


ISSUE25_CASES = [
    # silently wrong before: one event dated 9999-12-31 emptied every history
    Case(TI.discover, {"history": FAR_LOG, "catalogue": TOY_CAT}, DataError,
         ["history row 1", "9999-12-31", "plausible range", "Fix or drop that row"]),
    Case(TI.discover_all, {"interactions": FAR_LOG, "catalogue": TOY_CAT}, DataError,
         ["interactions row 1", "9999-12-31", "plausible range"]),
    Case(PR.history_profiles, {"interactions": FAR_LOG, "catalogue": TOY_CAT, "half_life_days": 30}, DataError,
         ["interactions row 1", "9999-12-31", "plausible range"]),
    Case(PR.history_profiles, {"interactions": FAR_LOG, "catalogue": TOY_CAT}, DataError,
         ["interactions row 1", "9999-12-31"], id="history_profiles far future, no recency weighting"),
    # timestamps
    Case(TI.discover, {"history": STR_LOG, "catalogue": TOY_CAT}, TypeError,
         ["history['timestamp']", "datetimes", "str", "parse_timestamps"]),
    Case(PR.history_profiles, {"interactions": STR_LOG, "catalogue": TOY_CAT, "half_life_days": 30}, TypeError,
         ["interactions['timestamp']", "'2026-01-01'", "parse_timestamps"]),
    Case(TI.discover, {"history": TOY_LOG, "catalogue": TOY_CAT, "now": "garbage"}, ValueError, ["now", "'garbage'"]),
    Case(PR.event_weights, {"interactions": TOY_LOG, "half_life_days": 30, "now": "garbage"}, ValueError,
         ["now", "'garbage'", "2026-08-01"]),
    Case(PR.event_weights, {"interactions": TOY_LOG, "half_life_days": 30, "now": "9999-12-31"}, ValueError,
         ["now='9999-12-31'", "plausible range"]),
    Case(TI.discover_all, {"interactions": TOY_LOG, "catalogue": TOY_CAT, "now": 3.5}, TypeError, ["now", "3.5"]),
    # text
    Case(lambda enc, **kw: enc.encode(**kw), {"enc": L(lambda c: c.text_encoder()), "texts": ["\U0001F600\U0001F355",
                                                                                            "\U0001F697", "red"]},
         None, warns=RuntimeWarning, check=lambda v: np.allclose(v[0], v[1]) and not np.allclose(v[0], v[2]),
         id="TextEncoder.encode emoji-only texts: warned, they share one vector"),
    Case(lambda enc, **kw: enc.encode(**kw), {"enc": L(lambda c: c.text_encoder()), "texts": ["ok", LONE_SURROGATE]},
         ValueError, ["text at index 1", "'\\ud83d'", "character 12", "lone surrogate", "encode("],
         id="TextEncoder.encode lone surrogate, no cache"),
    Case(lambda enc, **kw: enc.encode(**kw), {"enc": L(lambda c: c.text_encoder(cache=c.tmp / "c")),
                                              "texts": [LONE_SURROGATE]},
         ValueError, ["text at index 0", "lone surrogate"], id="TextEncoder.encode lone surrogate, cache on"),
    # ranking and metrics
    Case(RK.top_k, {"query_vecs": A, "item_vecs": A, "k": 2, "candidates": [0.5, 2.7]}, TypeError,
         ["candidates", "0.5", "integers"]),
    Case(RK.top_k_scores, {"scores": A, "k": 2, "candidates": [1.0, 2.7]}, TypeError, ["candidates", "2.7"]),
    Case(RK.top_k, {"query_vecs": A, "item_vecs": A, "k": 2, "exclude": sparse.csr_matrix(([1], ([0], [9])), (6, 10))},
         ValueError, ["exclude", "(6, 6)", "(6, 10)"], id="top_k oversized sparse exclude"),
    Case(RK.top_k_scores, {"scores": A, "k": 2, "exclude": sparse.csr_matrix((6, 10))}, ValueError,
         ["exclude", "(6, 4)", "(6, 10)"], id="top_k_scores oversized sparse exclude"),
    Case(RK.top_k, {"query_vecs": RAGGED, "item_vecs": A, "k": 2}, TypeError, ["query_vecs", "ragged"]),
    Case(M.novelty, {"recommended": [[0, 9]], "item_popularity": [1.0, 2.0], "n_users": 3}, ValueError,
         ["[0, 2)", "9"]),
    Case(M.novelty, {"recommended": [[-2]], "item_popularity": [1.0, 2.0], "n_users": 3}, ValueError, ["[0, 2)", "-2"],
         id="novelty: -2 is not read as the second-last item"),
    Case(M.auc, {"scores": np.array([[0.1, 0.2, 0.3]]), "relevant": [{7}]}, ValueError, ["relevant[0]", "7", "[0, 3)"]),
    Case(M.recall_at_k, {"recommended": [["a", "b"]], "relevant": [{0}], "k": 2}, ValueError,
         ["str", "'a'", "int", "never match", "catalogue.rows"]),
    Case(M.ndcg_at_k, {"recommended": [[0, 1]], "relevant": [{"a"}], "k": 2}, ValueError, ["int", "str", "'a'"]),
    # sizes
    Case(MultiInterest, {"catalogue": TOY_CAT, "k": 10**10}, ValueError, ["k must be <= 5", "10000000000"]),
    # pictures: the pixels are bounded before anything is decoded
    Case(lambda **kw: ImageEncoder("histogram", cache=False).encode(**kw),
         {"images": L(lambda c: [png_header(c.tmp / "big.png", 12000, 12000)])}, DataError,
         ["image 0", "big.png", "144 megapixels", "limit of 25", "thumbnail"], id="ImageEncoder 144-MP picture"),
    Case(lambda **kw: ImageEncoder("histogram", cache=False).encode(**kw),
         {"images": L(lambda c: [png_header(c.tmp / "bomb.png", 14000, 14000)]), "names": ["item 'i9'"]}, DataError,
         ["item 'i9'", "bomb.png", "too large"], id="ImageEncoder 196-MP picture (a decompression bomb)"),
    Case(lambda ds: ds.image("a"), {"ds": L(lambda c: toy_with_images(["../secret.png", ""]))}, DataError,
         ["item 'a'", "'../secret.png'", "outside the dataset folder"], id="image path with ../"),
    Case(lambda ds: ds.image("a"), {"ds": L(lambda c: toy_with_images(["/etc/passwd", ""]))}, DataError,
         ["'/etc/passwd'", "outside the dataset folder"], id="absolute image path outside the folder"),
    # datasets
    Case(lambda: Dataset("toy", *toy()[:2], toy()[2].assign(weight=["1", "heavy", "1"])), {}, DataError,
         ["interactions row 1", "'weight'", "'heavy'"], id="Dataset event weight 'heavy'"),
    Case(load_shop, {"root": L(lambda c: shop_copy_with(c, "interactions.csv", 5, 4, "heavy"))}, DataError,
         ["interactions.csv line 6", "'heavy'", "positive number"], id="load_shop event weight 'heavy'"),
    Case(lambda: Dataset("toy", toy()[0].assign(title=[1984, 7]), *toy()[1:]), {}, None,
         check=lambda d: d.items[C.TEXT].tolist() == ["1984. aa", "7. bb"], id="Dataset integer titles"),
    Case(load_movielens_100k, {"root": L(comma_udata)}, DataError, ["u.data line 1", "4 '\\t'-separated", "','"],
         id="load_movielens_100k comma-separated u.data"),
    # runtime
    Case(lambda: with_env("COURSE_DEVICE", "garbage", runtime.get_device), {}, ValueError,
         ["$COURSE_DEVICE", "'garbage'", "cpu"], id="get_device with COURSE_DEVICE=garbage"),
    # the old (item_vecs, index) arguments
    Case(PR.history_profiles, {"interactions": TOY_LOG, "catalogue": TOY_VECS, "users": {"a": 0}}, TypeError,
         ["history_profiles", "catalogue must be a Catalogue", "ndarray", "Catalogue.from_items"],
         id="history_profiles(log, vecs, index)"),
    Case(TI.discover, {"history": TOY_LOG, "catalogue": TOY_VECS}, TypeError, ["discover", "Catalogue.from_items"],
         id="discover(log, vecs)"),
    Case(Catalogue.from_items, {"items": TOY_VECS}, TypeError, ["(5, 5)", "item vectors", "from_items(ds.items"]),
]

CASES = DATA_CASES + ENCODE_CASES + CACHE_CASES + FUSE_CASES + DIAGNOSTICS_CASES + RUNTIME_CASES + EXERCISE_CASES \
    + PLOT_CASES + LEAD_CASES + ISSUE25_CASES


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input_case(case, request, tmp_path, close_figures):
    run_case(case, Ctx(request, tmp_path))


def test_case_ids_are_unique():
    ids = [_case_id(c) for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


# ---------------------------------------------------------------------------------------------------------
# data at the boundary: one bad row never silently changes everyone else's result
# ---------------------------------------------------------------------------------------------------------
def copy_shop(shop, dest: Path) -> Path:
    shutil.copytree(shop.root, dest, ignore=shutil.ignore_patterns("images"))
    return dest


def test_one_far_future_row_is_refused_with_its_file_line(shop, tmp_path):
    root = copy_shop(shop, tmp_path / "shop")
    lines = (root / "interactions.csv").read_text().splitlines()
    parts = lines[100].split(",")
    parts[2] = "9999-12-31T00:00:00"
    lines[100] = ",".join(parts)
    (root / "interactions.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"interactions\.csv line 101: timestamp '9999-12-31T00:00:00' is outside "
                                        r"the plausible range 1970-01-01 to"):
        load_shop(root)


def test_movielens_blames_the_bad_line_not_the_good_ones(tmp_path):
    shutil.copytree(ML_FIXTURE, tmp_path, dirs_exist_ok=True)
    lines = (tmp_path / "u.data").read_text().splitlines()
    parts = lines[3].split("\t")
    parts[3] = "yesterday"
    lines[3] = "\t".join(parts)
    (tmp_path / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_movielens_100k(tmp_path)
    assert "u.data line 4: timestamp 'yesterday' is not a number of Unix seconds" in str(info.value)
    assert "line 1" not in str(info.value)


def test_movielens_far_future_unix_time_is_refused(tmp_path):
    shutil.copytree(ML_FIXTURE, tmp_path, dirs_exist_ok=True)
    with open(tmp_path / "u.data", "a") as f:
        f.write("1\t2\t4\t253402214400\n")  # 9999-12-31
    with pytest.raises(DataError, match=r"u\.data line 6: timestamp 253402214400 is outside the plausible range"):
        load_movielens_100k(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# the clock: the bundled shop loads whatever it says; data a user brings is still held to it
# ---------------------------------------------------------------------------------------------------------
def test_the_bundled_shop_loads_with_the_clock_a_year_back(monkeypatch):
    from course_lib.data import dataset as D
    from course_lib.tiers import discover_all

    year_back = pd.Timestamp.now(tz="UTC").tz_localize(None) - pd.Timedelta(days=365)
    monkeypatch.setattr(D, "clock_now", lambda: year_back)
    assert D.latest_timestamp() == D.BUNDLED_DATA_END + D.FUTURE_SLACK  # the clock is behind the shop's log
    ds = load_shop()
    assert ds.interactions[C.TIMESTAMP].max() > year_back  # the case the issue describes: the log ends after "now"
    sample = ds.interactions[ds.interactions[C.USER].isin(ds.interactions[C.USER].unique()[:5])]
    cat = Catalogue.from_items(ds.items, np.eye(len(ds.items), 8, dtype=np.float32) + 0.01)
    assert len(discover_all(sample, cat)) == 5  # the public functions read its times with the same validator
    with pytest.raises(DataError, match="2027-06-01.*outside the plausible range"):  # later than both: refused
        Dataset("toy", *toy(times=("2026-01-01", "2027-06-01")))


def test_bundled_data_end_is_the_generators_last_day(shop):
    from course_lib.data import ShopConfig
    from course_lib.data import dataset as D

    cfg = ShopConfig()
    assert D.BUNDLED_DATA_END == pd.Timestamp(cfg.start) + pd.Timedelta(days=cfg.days)
    assert shop.interactions[C.TIMESTAMP].max() <= D.BUNDLED_DATA_END


def test_data_a_user_brings_is_held_to_the_clock(monkeypatch):
    from course_lib.data import dataset as D

    monkeypatch.setattr(D, "clock_now", lambda: pd.Timestamp("2031-03-01"))
    Dataset("toy", *toy(times=("2026-01-01 00:00", "2031-03-01 12:00")))  # within a day of the clock: plausible
    with pytest.raises(DataError, match=r"interactions row 1: timestamp '2031-03-05 00:00:00' is outside .* 2031-03-02"):
        Dataset("toy", *toy(times=("2026-01-01", "2031-03-05")))


# ---------------------------------------------------------------------------------------------------------
# pictures: bounded before they are decoded
# ---------------------------------------------------------------------------------------------------------
def test_a_144_megapixel_picture_is_refused_in_well_under_a_second(tmp_path):
    path = png_header(tmp_path / "huge.png", 12000, 12000)
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"photo 3: image file .*huge\.png has 12000 x 12000 = 144 megapixels"):
        ImageEncoder("histogram", cache=False).encode([path], names=["photo 3"])
    assert time.perf_counter() - t0 < 1.0


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path, monkeypatch):
    from PIL import Image

    from course_lib.data import io

    path = tmp_path / "big.jpg"
    Image.new("RGB", (800, 600), (200, 30, 30)).save(path, quality=90)
    monkeypatch.setattr(io, "MAX_IMAGE_PIXELS", 100_000)  # the file has 480,000 pixels
    im = io.read_image(path, "item 'i1'")
    assert im.size == (100, 75) and im.getpixel((50, 37))[0] > 150  # draft read it at 1/8 scale, colour intact
    v = ImageEncoder("histogram", cache=False).encode([path])
    assert v.shape == (1, 71) and np.isfinite(v).all()
    png = tmp_path / "big.png"
    Image.new("RGB", (800, 600)).save(png)
    with pytest.raises(DataError, match=r"item 'i2': image file .*big\.png has 800 x 600 = 0\.48 megapixels, more than "
                                        r"the limit of 0\.1"):
        io.read_image(png, "item 'i2'")  # no reduced decoding for PNG: refused, named


def test_image_paths_inside_the_folder_still_load(shop):
    assert shop.image_path(shop.items[C.ITEM].iloc[0]).is_file()
    assert shop.image(shop.items[C.ITEM].iloc[0]).size == (64, 64)


# ---------------------------------------------------------------------------------------------------------
# encoders and the cache: no zero vectors cached, no work lost, no entry lost
# ---------------------------------------------------------------------------------------------------------
def test_negative_batch_size_fails_before_any_work_and_caches_nothing(tiny_bert, tmp_path):
    enc = TextEncoder(tiny_bert, cache=tmp_path)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got -1"):
        enc.encode(["red smartwatch"], batch_size=-1)
    assert not list(tmp_path.rglob("shard-*.npz"))
    v = TextEncoder(tiny_bert, cache=tmp_path).encode(["red smartwatch"])
    assert np.linalg.norm(v) == pytest.approx(1, abs=1e-5)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got -1"):
        ImageEncoder("histogram", batch_size=-1, cache=tmp_path)


def test_a_broken_encoder_result_is_never_cached(tiny_bert, tmp_path, monkeypatch):
    enc = TextEncoder(tiny_bert, cache=tmp_path)
    monkeypatch.setattr(enc, "_encode_batched", lambda texts, *a: np.full((len(texts), enc.dim), np.nan, np.float32))
    with pytest.raises(FloatingPointError, match=r"NaN or infinite vectors for input\(s\) \[0, 1\]; nothing was cached"):
        enc.encode(["red", "blue"])
    monkeypatch.setattr(enc, "_encode_batched", lambda texts, *a: np.zeros((len(texts) + 1, enc.dim), np.float32))
    with pytest.raises(RuntimeError, match=r"returned shape \(3, 32\) for 2 inputs"):
        enc.encode(["red", "blue"])
    assert not list(tmp_path.rglob("shard-*.npz"))


def test_zero_vectors_are_never_cached_and_old_ones_are_recomputed(tmp_path):
    c = EmbeddingCache(tmp_path, 3)
    with pytest.warns(RuntimeWarning, match=r"not storing 1 zero or non-finite vector"):
        c.put(["zero", "good"], np.array([[0, 0, 0], [1, 2, 3]], np.float32))
    found, _ = EmbeddingCache(tmp_path, 3).get(["zero", "good"])
    assert found.tolist() == [False, True]
    # a shard written by an older version, with a zero row in it: that row is ignored, the others are used
    old = EmbeddingCache(tmp_path / "old", 3)
    old._write(np.array(["z", "g"]), np.array([[0, 0, 0], [1, 1, 1]], np.float32))
    with pytest.warns(RuntimeWarning, match="ignoring 1 all-zero vector"):
        found, vecs = EmbeddingCache(tmp_path / "old", 3).get(["z", "g"])
    assert found.tolist() == [False, True] and vecs[1].tolist() == [1, 1, 1]


def test_keys_are_stored_whole_not_truncated(tmp_path):
    a, b = "k" * 32 + "-first", "k" * 32 + "-second"  # the same first 32 characters
    EmbeddingCache(tmp_path, 2).put([a, b], np.array([[1, 0], [0, 1]], np.float32))
    found, vecs = EmbeddingCache(tmp_path, 2).get([a, b, "k" * 32])
    assert found.tolist() == [True, True, False]
    assert vecs[:2].tolist() == [[1, 0], [0, 1]]


def test_unwritable_cache_warns_once_and_loses_no_work(tiny_bert, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("in the way")
    enc = TextEncoder(tiny_bert, cache=tmp_path / "a-file" / "cache")
    want = TextEncoder(tiny_bert, cache=False).encode(["red shoes", "a tent"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = enc.encode(["red shoes", "a tent"])
        calls = []
        monkeypatch.setattr(enc, "_encode_batched", lambda t, *a: calls.append(t) or want[:len(t)])
        again = enc.encode(["red shoes", "a tent"])
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(msgs) == 1 and "cannot write to" in msgs[0] and "kept in memory" in msgs[0], msgs
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert calls == [] and np.allclose(again, got)  # the work done is kept for the session


def test_cache_dir_that_cannot_be_created_still_returns_a_path(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "a-file" / "sub"))
    assert runtime.cache_dir() == tmp_path / "a-file" / "sub"


def test_shards_get_umask_permissions(tmp_path):
    c = EmbeddingCache(tmp_path, 2, max_shards=1)
    c.put(["a"], np.ones((1, 2)))
    c.put(["b"], np.ones((1, 2)))  # the second put compacts: the merged shard too
    umask = os.umask(0)
    os.umask(umask)
    shards = list(tmp_path.glob("shard-*.npz"))
    assert len(shards) == 1
    assert stat.S_IMODE(shards[0].stat().st_mode) == 0o666 & ~umask


def test_an_unreadable_shard_is_not_corrupt_and_never_deleted(tmp_path, monkeypatch):
    EmbeddingCache(tmp_path, 2).put(["a"], np.ones((1, 2)))
    EmbeddingCache(tmp_path, 2).put(["b"], np.full((1, 2), 2.0))
    locked = sorted(tmp_path.glob("shard-*.npz"))[0]
    real_load = np.load

    def load(path, *a, **kw):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_load(path, *a, **kw)

    monkeypatch.setattr(cache_mod.np, "load", load)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        c = EmbeddingCache(tmp_path, 2, max_shards=1)
        found, _ = c.get(["a", "b"])
        c.put(["c"], np.ones((1, 2)))  # triggers a compaction, which must leave the unreadable shard alone
    msgs = [str(w.message) for w in caught]
    assert found.sum() == 1 and locked.exists()
    assert any("cannot read shard" in m and "Permission denied" in m for m in msgs), msgs
    assert not any("corrupt" in m for m in msgs), msgs


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not hasattr(os, "fork"),
                    reason="needs root (on Unix) to act as a second user")
def test_a_second_user_reads_the_shards_of_the_first():
    """Written by root, read by 'nobody' in a forked child: readable, nothing called corrupt, nothing deleted."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="shared-cache-"))
    try:
        os.chmod(folder, 0o755)
        EmbeddingCache(folder, 2).put(["a", "b"], np.array([[1, 2], [3, 4]], np.float32))
        import encodings.cp437  # noqa: F401  zip reading needs it, and the other user cannot import from root's Python

        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: become another user, then read the cache
            code = 1
            try:
                os.close(read)
                os.setgid(65534)
                os.setuid(65534)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    found, vecs = EmbeddingCache(folder, 2).get(["a", "b"])
                os.write(write, f"{int(found.sum())} {vecs.sum()} {len(caught)}".encode())
                code = 0
            except BaseException as e:  # said through the pipe: the child has no test report of its own
                os.write(write, f"{type(e).__name__}: {e}".encode()[:200])
            finally:
                os._exit(code)
        os.close(write)
        answer = os.read(read, 200).decode()
        os.close(read)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0 and answer.split() == ["2", "10.0", "0"], answer
        assert len(list(folder.glob("shard-*.npz"))) == 1  # nothing deleted
    finally:
        shutil.rmtree(folder, ignore_errors=True)


WRITER = """
import json, sys, warnings
import numpy as np
from course_lib.cache import EmbeddingCache
folder, p, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    c = EmbeddingCache(folder, 4, max_shards=3)
    for i in range(n):
        if i % 10 == 0:
            c = EmbeddingCache(folder, 4, max_shards=3)  # a fresh reader while the others compact
            c.get([f"p{p}-0"])
        c.put([f"p{p}-{i}"], np.full((1, 4), p * 1000 + i + 1, np.float32))
print(json.dumps([str(w.message) for w in caught]))
"""


def test_concurrent_writers_lose_no_entry_and_see_no_corruption(tmp_path):
    """3 processes x 80 entries into one cache, compacting all the time: every entry readable, no warning."""
    import json

    n_proc, n = 3, 80
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(p), str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for p in range(n_proc)]
    outs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err[-500:] for _, err in outs]
    msgs = [json.loads(out) for out, _ in outs]
    assert msgs == [[]] * n_proc, msgs
    keys = [f"p{p}-{i}" for p in range(n_proc) for i in range(n)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found, vecs = EmbeddingCache(tmp_path, 4).get(keys)
    assert found.all(), f"lost {int((~found).sum())} of {len(keys)} entries"
    np.testing.assert_array_equal(vecs[:, 0], [p * 1000 + i + 1 for p in range(n_proc) for i in range(n)])
    assert len(list(tmp_path.glob("shard-*.npz"))) <= 3 + n_proc  # compaction kept the folder small


# ---------------------------------------------------------------------------------------------------------
# models: a clear line, fast, and true
# ---------------------------------------------------------------------------------------------------------
def test_max_length_above_the_model_limit_is_refused(tiny_bert):
    with pytest.raises(ValueError, match=r"max_length must be <= 64 .*max_position_embeddings.*got 65"):
        TextEncoder(tiny_bert, max_length=65, cache=False)
    assert TextEncoder(tiny_bert, cache=False).config.max_length == 64  # the default fits the model


@pytest.mark.slow
def test_max_length_above_minilm_limit_names_512():
    with pytest.raises(ValueError, match=r"max_length must be <= 512 .*got 1000"):
        TextEncoder(max_length=1000, cache=False)


@pytest.mark.slow
@pytest.mark.network
def test_unknown_model_online_mode_fails_fast_and_truly(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as info:
        TextEncoder("someone/not-a-real-model-xyz", cache=False)
    assert time.perf_counter() - t0 < 15
    msg = str(info.value)
    assert "HF_HUB_OFFLINE=1" not in msg and "\n" not in msg
    assert "cannot be reached" in msg or "could not be loaded" in msg, msg


@pytest.mark.slow
@pytest.mark.network
def test_unknown_model_in_a_fresh_process_without_offline_env():
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    code = ("from course_lib.encode import TextEncoder\n"
            "try:\n    TextEncoder('someone/not-a-real-model-xyz', cache=False)\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    assert r.stdout.startswith("ModelNotFoundError") and "HF_HUB_OFFLINE=1" not in r.stdout, r.stdout + r.stderr
    assert elapsed < 25, f"took {elapsed:.0f} s (the hub's retries used to take 46 s)"


# ---------------------------------------------------------------------------------------------------------
# the report CLI: everything checkable is checked before the run, in one line, exit 2
# ---------------------------------------------------------------------------------------------------------
def cli(capsys, *args) -> tuple[int, list[str]]:
    from course_lib.__main__ import main

    rc = main(list(args))
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "WARNING" not in line]
    return rc, err


CLI_CASES = [
    (["report", "--dataset", "movielens-100k", "--out", "{tmp}/o"], ["movielens-100k", "not found in", "{tmp}"]),
    (["report", "--dataset", "movielens-100k", "--data-dir", "{tmp}", "--out", "{tmp}/o"], ["has no u.data"]),
    (["report", "--data-dir", "{tmp}", "--out", "{tmp}/o"], ["'shop' cannot be loaded", "items.csv", "not found"]),
    (["report", "--param", "TEXT_MODEL=someone/not-a-model-xyz", "--out", "{tmp}/o"],
     ["TEXT_MODEL", "someone/not-a-model-xyz", "Hugging Face cache"]),
    (["report", "--param", "TEXT_MODEL={tmp}/no-model", "--out", "{tmp}/o"], ["TEXT_MODEL", "does not exist"]),
    (["report", "--param", "SEED=-1", "--out", "{tmp}/o"], ["SEED", "-1", "4294967295"]),
    (["report", "--param", "SEED=4294967296", "--out", "{tmp}/o"], ["SEED", "4294967296"]),
    (["report", "--param", "SEED=1.5", "--out", "{tmp}/o"], ["SEED must be an integer", "1.5"]),
    (["report", "--param", "K=10000000000", "--out", "{tmp}/o"], ["K must be <= 1800", "10000000000"]),
    (["report", "--param", "K=0", "--out", "{tmp}/o"], ["K must be > 0, got 0"]),
    (["report", "--param", "TEST_FRAC=0.0001", "--out", "{tmp}/o"], ["TEST_FRAC=0.0001", "at least 20"]),
    (["report", "--param", "TEST_FRAC=1e999", "--out", "{tmp}/o"], ["TEST_FRAC must be a finite number", "inf"]),
    (["report", "--param", "TEST_FRAC=nan", "--out", "{tmp}/o"], ["TEST_FRAC must be a number", "'nan'"]),
    (["report", "--param", "HALF_LIFE_DAYS=1e999", "--out", "{tmp}/o"], ["HALF_LIFE_DAYS", "finite", "inf"]),
    (["report", "--param", "HALF_LIFE_DAYS=-1e999", "--out", "{tmp}/o"], ["HALF_LIFE_DAYS", "finite", "-inf"]),
    (["report", "--param", "ALPHA=-0.1", "--out", "{tmp}/o"], ["ALPHA must be between 0 and 1", "-0.1"]),
    (["report", "--param", "POOLING=None", "--out", "{tmp}/o"], ["POOLING must be a string", "None"]),
    (["report", "--param", "FAST=1", "--out", "{tmp}/o"], ["FAST must be True or False", "1"]),
    (["report", "--param", "OUTPUT_DIR=/tmp", "--out", "{tmp}/o"], ["OUTPUT_DIR", "--out"]),
    (["report", "--param", "INTERACTIVE=True", "--out", "{tmp}/o"], ["INTERACTIVE", "headless"]),
    (["report", "--param", "N_EXPLAIN=1", "--out", "{tmp}/o"], ["N_EXPLAIN must be >= 2", "got 1"]),
    (["report", "--param", "FINETUNE_PAIRS=1", "--out", "{tmp}/o"], ["FINETUNE_PAIRS must be >= 2", "got 1"]),
    (["report", "--param", "K=3", "--param", "K=4", "--out", "{tmp}/o"], ["K", "twice"]),
    (["report", "--param", "=3", "--out", "{tmp}/o"], ["NAME", "empty"]),
    (["report", "--out", "{tmp}/a-file"], ["--out", "a-file", "is a file"]),
    (["report", "--out", "{tmp}/a-file/sub"], ["--out", "a-file", "is a file"]),
    (["report", "--out", "/proc/no-such/report"], ["/proc/no-such/report", "cannot be"]),
    (["report", "--param", "ALPHA=0,abc", "--out", "{tmp}/o"], ["sweep value 2 of 2", "ALPHA must be a number", "abc"]),
    (["report", "--param", "K=5,0", "--out", "{tmp}/o"], ["sweep value 2 of 2 (K=0)", "K must be > 0"]),
    (["report", "--param", "K=5,10000", "--out", "{tmp}/o"], ["sweep value 2 of 2 (K=10000)", "K must be <= 1800"]),
    (["report", "--param", "ALPHA=[]", "--out", "{tmp}/o"], ["ALPHA=[]", "the sweep is empty"]),
    (["report", "--param", "ALPHA=,", "--out", "{tmp}/o"], ["ALPHA=,", "the sweep is empty"]),
    (["report", "--param", "ALPHA=0,1", "--param", "K=5,10", "--out", "{tmp}/o"], ["one parameter at a time"]),
    (["report", "--param", "DATASET=shop,movielens-100k", "--out", "{tmp}/o"], ["DATASET cannot be swept"]),
    (["compare", "{tmp}/shop", "{tmp}/a-file"], ["{tmp}/shop is not a report run", "no metrics.json"]),
    (["compare", "{tmp}/shop", "{tmp}/no-such-run"], ["is not a report run"]),
    (["compare", "{tmp}/shop"], ["two or more run folders, got 1"]),
    (["compare", "{tmp}/shop", "{tmp}/shop"], ["given twice"]),
    (["compare", "{tmp}/shop", "{tmp}/x", "--out", "{tmp}/a-file"], ["--out", "is a file"]),
    (["notebooks", "--only", "99_typo"], ["unknown notebook '99_typo'", "00_welcome"]),
    (["notebooks", "--only"], ["--only", "at least one"]),
    (["notebooks", "--out", "{tmp}/a-file"], ["--out", "is a file"]),
    (["notebooks", "--in-place", "--only", "7_report"], ["unknown notebook '7_report'"]),
]


@pytest.mark.parametrize("args,words", CLI_CASES, ids=[" ".join(a[:3]) for a, _ in CLI_CASES])
def test_cli_bad_arguments_get_one_line_and_exit_2(args, words, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))  # the default folders: the shop, and no MovieLens files
    (tmp_path / "shop").symlink_to(ROOT / "data" / "shop")
    (tmp_path / "a-file").write_text("x")
    fill = lambda s: s.replace("{tmp}", str(tmp_path))  # noqa: E731
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, err = cli(capsys, *map(fill, args))
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), err
    for word in map(fill, words):
        assert word in err[0], f"{word!r} not in {err[0]!r}"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing was created


def test_report_precheck_is_cheap_and_counts_test_users():
    from course_lib import report

    t0 = time.perf_counter()
    facts = report.precheck_report({"DATASET": "shop", "K": 10, "TEST_FRAC": 0.2, "FAST": True, "SEED": 42,
                                    "TEXT_MODEL": "all-MiniLM-L6-v2"})
    assert time.perf_counter() - t0 < 10
    assert facts["items"] == 1800 and facts["users"] == 300 and facts["test users"] >= report.MIN_TEST_USERS


def test_validation_is_driven_by_the_parameters_cell():
    from course_lib import report

    spec = {"N_USERS": {"type": "int", "default": "5", "help": ""}, "RATES": {"type": "list", "default": "[0.1]", "help": ""},
            "NAME": {"type": "str", "default": '"a"', "help": ""}}
    assert report.validate_params({"N_USERS": 7.0, "RATES": [0.2], "NAME": 3}, spec) == {"N_USERS": 7, "RATES": [0.2],
                                                                                          "NAME": "3"}
    with pytest.raises(report.ReportParameterError, match=r"RATES\[1\] must be a finite number, got inf"):
        report.validate_params({"RATES": [0.2, math.inf]}, spec)
    with pytest.raises(report.ReportParameterError, match="RATES must be a list"):
        report.validate_params({"RATES": 0.2}, spec)
    with pytest.raises(report.ReportParameterError, match=r"unknown parameter\(s\) \['K'\]"):
        report.validate_params({"K": 3}, spec)


def _tiny_report(folder: Path, fail: bool) -> Path:
    """A stand-in for 09_report with its parameters cell: writes per_user.csv and metrics.json into OUTPUT_DIR, or
    fails."""
    import nbformat

    from course_lib import report

    real = nbformat.read(str(report.REPORT_NOTEBOOK), as_version=4)
    params = next(c for c in real.cells if "parameters" in c.metadata.get("tags", []))
    body = ("import json, pathlib\n"
            + ("raise ValueError('boom in the run')\n" if fail else "")
            + "pathlib.Path(OUTPUT_DIR).mkdir(parents=True, exist_ok=True)\n"
              "(pathlib.Path(OUTPUT_DIR) / 'per_user.csv').write_text('method,user\\nnew,u1\\n')\n"
              "(pathlib.Path(OUTPUT_DIR) / 'metrics.json').write_text(json.dumps({'k': K, 'new': True}))\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(params.source, metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "09_report.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
def test_report_outputs_are_atomic_and_a_failure_leaves_no_stale_metrics(fail, tmp_path, monkeypatch, capsys):
    import json

    from course_lib import report

    (tmp_path / "nb").mkdir()
    monkeypatch.setattr(report, "REPORT_NOTEBOOK", _tiny_report(tmp_path / "nb", fail))
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text('{"old": true}')
    (out / "per_user.csv").write_text("method,user\nold,u1\n")
    (out / "report.html").write_text("old")
    rc, err = cli(capsys, "report", "--param", "K=7", "--out", str(out))
    names = sorted(p.name for p in out.iterdir())
    if fail:
        assert rc == 1 and len(err) == 1 and "failed in cell" in err[0] and "boom in the run" in err[0], err
        assert "metrics.json" not in names and "report.ipynb" in names  # the failed notebook, never old numbers
        assert "per_user.csv" not in names
        assert "boom in the run" in (out / "report.ipynb").read_text()
        assert (out / "report.html").read_text() != "old"
    else:
        assert rc == 0, err
        assert json.loads((out / "metrics.json").read_text()) == {"k": 7, "new": True}
        assert (out / "per_user.csv").read_text() == "method,user\nnew,u1\n"
        assert names == ["metrics.json", "per_user.csv", "report.html", "report.ipynb"]  # no staging folder left
    assert not [n for n in names if n.startswith(".run-")]
