"""The linear adapter: the loss is a full-catalogue softmax (checked against numpy), training moves W only as far as
it helps validation, it never sees the validation period, and the saved folder is applied by TextEncoder (under its
own cache key) and by sentence-transformers alike."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import finetune as ft
from course_lib.adapter import adapter_loss, mean_anchors, read_dense, train_adapter, write_dense
from course_lib.encode import TextEncoder
from course_lib.finetune import FinetuneConfig, finetune

from test_finetune import WORDS, toy, tiny_config  # noqa: F401  (the fixtures of the fine-tuning tests)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _problem(n_items=40, dim=8, n_pairs=120, seed=0):
    """Items in 4 clusters; each anchor sits near its positive's cluster, but the positive is a fixed item per
    cluster that the frozen geometry does not single out: a linear map can learn it, identity cannot."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, dim))
    V = _unit(centres[np.arange(n_items) % 4] + 0.6 * rng.normal(size=(n_items, dim))).astype(np.float32)
    cluster = rng.integers(0, 4, n_pairs)
    A = _unit(centres[cluster] + 0.6 * rng.normal(size=(n_pairs, dim))).astype(np.float32)
    P = cluster.astype(np.int64)  # item c (in cluster c) is the positive of every anchor of cluster c
    return A, P, V


def test_the_loss_is_a_softmax_over_the_whole_catalogue():
    A, P, V = _problem()
    rng = np.random.default_rng(1)
    W = np.eye(8, dtype=np.float32) + 0.1 * rng.normal(size=(8, 8)).astype(np.float32)
    a, v = _unit(A @ W), _unit(V @ W)
    logits = 20.0 * a @ v.T
    logits -= logits.max(1, keepdims=True)
    expected = -np.mean(logits[np.arange(len(P)), P] - np.log(np.exp(logits).sum(1)))  # numpy, by hand
    got = float(adapter_loss(torch.from_numpy(A), torch.from_numpy(V), torch.from_numpy(W), torch.from_numpy(P), 20.0))
    assert got == pytest.approx(expected, rel=1e-5)


def test_mean_anchors_average_distinct_context_items():
    V = np.arange(12, dtype=np.float32).reshape(4, 3)
    row_of = {"a": 0, "b": 1, "c": 2, "d": 3}
    got = mean_anchors(V, [("a", "b"), ("c", "c", "d"), ("d",)], row_of)
    np.testing.assert_allclose(got, [V[[0, 1]].mean(0), V[[2, 3]].mean(0), V[3]])


def test_training_lowers_the_loss_keeps_the_best_and_is_deterministic():
    A, P, V = _problem()

    def loss_of(W):
        return float(adapter_loss(torch.from_numpy(A), torch.from_numpy(V), torch.from_numpy(W.astype(np.float32)),
                                  torch.from_numpy(P), 20.0))

    def val(W):  # higher is better: the negative training loss, so the best W is the last one here
        return -loss_of(W)

    r = train_adapter(A, P, V, epochs=5, batch_size=20, lr=1e-2, eval_fn=val, patience=5, seed=3)
    assert loss_of(r["W"]) < loss_of(np.eye(8)) - 0.1
    assert r["evals"][0]["epoch"] == 0 and r["best_epoch"] == 5 and r["steps"] == 5 * (120 // 20)
    again = train_adapter(A, P, V, epochs=5, batch_size=20, lr=1e-2, eval_fn=val, patience=5, seed=3)
    np.testing.assert_array_equal(r["W"], again["W"])
    # a validation score that only gets worse: the identity (epoch 0) is kept and training stops after `patience`
    r = train_adapter(A, P, V, epochs=5, batch_size=20, lr=1e-2, eval_fn=loss_of, patience=2, seed=3)
    assert r["best_epoch"] == 0 and len(r["evals"]) == 3
    np.testing.assert_array_equal(r["W"], np.eye(8, dtype=np.float32))


def test_weight_decay_pulls_toward_the_identity():
    A, P, V = _problem()
    free = train_adapter(A, P, V, epochs=3, batch_size=20, lr=1e-2, seed=0)["W"]
    held = train_adapter(A, P, V, epochs=3, batch_size=20, lr=1e-2, weight_decay=20.0, seed=0)["W"]
    eye = np.eye(8)
    assert np.linalg.norm(held - eye) < 0.8 * np.linalg.norm(free - eye)


def test_bad_arguments_are_named():
    A, P, V = _problem()
    with pytest.raises(ValueError, match="positives must be rows of item_vecs"):
        train_adapter(A, P + 100, V)
    with pytest.raises(ValueError, match="anchors .* and item_vecs .* same number of columns"):
        train_adapter(A[:, :4], P, V)
    assert train_adapter(A, P, V, batch_size=500, epochs=2)["steps"] == 2  # fewer pairs than a batch: one step
    with pytest.raises(ValueError, match="anchors is empty"):
        train_adapter(A[:0], P[:0], V)
    with pytest.raises(ValueError, match="positives must hold one integer row"):
        train_adapter(A, P.astype(float), V)


def test_dense_round_trip_and_what_textencoder_refuses(tmp_path):
    W = np.random.default_rng(0).normal(size=(6, 6)).astype(np.float32)
    write_dense(tmp_path, W)
    np.testing.assert_array_equal(read_dense(tmp_path), W)
    assert read_dense(tmp_path / "nowhere") is None
    import json

    cfg = json.loads((tmp_path / "2_Dense" / "config.json").read_text())
    (tmp_path / "2_Dense" / "config.json").write_text(json.dumps({**cfg, "activation_function": "torch.nn.Tanh"}))
    with pytest.raises(ValueError, match="activation 'torch.nn.Tanh'.*only a linear adapter"):
        read_dense(tmp_path)


def test_finetune_adapter_saves_a_folder_applied_by_textencoder_and_sentence_transformers(toy, tiny_bert, tmp_path):
    items, users, train = toy
    cfg = tiny_config(tiny_bert, method="adapter", pair_types="user", context="history", anchor="mean",
                      history_n=2, batch_size=4, epochs=3, lr=5e-2)
    res = finetune(train, items, users, cfg, out=tmp_path / "adapted")
    assert res.adapter is not None and not np.allclose(res.adapter, np.eye(32))  # it moved
    assert res.train_seconds > 0 and len(res.history) == 3 * (res.n_pairs // 4)
    frozen = TextEncoder(tiny_bert, device="cpu")
    adapted = TextEncoder(str(tmp_path / "adapted"), device="cpu")
    assert adapted.adapter is not None and "adapter=True" in repr(adapted)
    # the folder = the frozen vectors times W, normalised: what training optimised
    np.testing.assert_allclose(adapted.encode(WORDS), _unit(frozen.encode(WORDS) @ res.adapter), atol=1e-5)
    np.testing.assert_allclose(res.encode(WORDS), adapted.encode(WORDS), atol=1e-5)  # in memory = from the folder
    # one cache key each: the frozen vectors are not served for the adapted model, nor the reverse
    assert adapted._cache.folder != frozen._cache.folder
    assert not np.allclose(TextEncoder(str(tmp_path / "adapted"), device="cpu").encode(WORDS), frozen.encode(WORDS))
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(tmp_path / "adapted"), device="cpu")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Dense", "Normalize"]
    np.testing.assert_allclose(model.encode(WORDS), adapted.encode(WORDS), atol=1e-4)
    with pytest.raises(ValueError, match="adapter trained after mean pooling; pass pooling='mean'"):
        TextEncoder(str(tmp_path / "adapted"), pooling="cls", device="cpu")


def test_the_adapter_trains_on_the_fitting_period_only(toy, tiny_bert, monkeypatch):
    """Validation by time: pairs come from the part of the log before the validation slice."""
    items, users, train = toy
    seen = {}
    real = ft.training_pairs

    def spy(log, *a, **kw):
        seen["max"] = log["timestamp"].max()
        return real(log, *a, **kw)

    monkeypatch.setattr(ft, "training_pairs", spy)
    cfg = tiny_config(tiny_bert, method="adapter", pair_types="user", context="history", anchor="mean",
                      history_n=2, batch_size=4, epochs=2, lr=5e-2, val_frac=0.3)
    res = finetune(train, items, users, cfg)
    cut = ft.validation_split(train, 0.3).test["timestamp"].min()
    assert seen["max"] < cut and res.best_val is not None and len(res.evals) >= 2


def test_the_adapter_refuses_pairs_it_cannot_use(toy, tiny_bert):
    items, users, train = toy
    with pytest.raises(ValueError, match="method='adapter' .* anchor='mean'"):
        finetune(train, items, users, tiny_config(tiny_bert, method="adapter"))  # anchor='text'
    pairs = pd.DataFrame({"anchor": WORDS[:4], "positive": WORDS[4:8]})
    cfg = tiny_config(tiny_bert, method="adapter", pair_types="user", context="history", anchor="mean")
    with pytest.raises(ValueError, match="needs user pairs with 'context_items'"):
        finetune(train, items, users, cfg, pairs=pairs)


def test_finetune_cached_keys_the_method(toy, tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    items, users, train = toy
    cfg = tiny_config(tiny_bert, method="adapter", pair_types="user", context="history", anchor="mean",
                      history_n=2, batch_size=4, epochs=1, lr=5e-2)
    a = ft.finetune_cached(train, items, users, cfg)
    b = ft.finetune_cached(train, items, users, cfg)
    c = ft.finetune_cached(train, items, users, replace(cfg, method="top-layers", anchor="mean"))
    assert a.path == b.path != c.path
    assert read_dense(a.path) is not None and read_dense(c.path) is None
