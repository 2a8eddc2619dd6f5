"""Fine-tuning: pairs never look past their target, the loss is sentence-transformers' MNRL, the trainer regularises,
stops early, saves atomically a folder TextEncoder loads (with its own cache key), and refuses bad input by name."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import finetune as ft
from course_lib.encode import TextEncoder
from course_lib.finetune import FinetuneConfig, finetune, info_nce, item_pairs, training_pairs, user_pairs

WORDS = ["smart watches for running", "fitness tracking devices", "long battery life camera",
         "water resistant tent", "red shoes for running", "blue coffee book", "the camera is red",
         "this tent has a long life", "i like coffee and book", "blue smart fitness watches"]


@pytest.fixture()
def toy():
    """10 items, 6 users with hand-made timelines (user u5 has one event only), self-descriptions for some."""
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(10)], "text": WORDS})
    users = pd.DataFrame({"user_id": [f"u{k}" for k in range(6)],
                          "description": ["i like running", "", "coffee and book", "red shoes", "", "tent"]})
    t0 = pd.Timestamp("2026-01-01")
    rows = []
    timelines = {"u0": [0, 1, 4, 9, 0, 4], "u1": [2, 6, 2, 7], "u2": [5, 8, 5, 3, 8], "u3": [4, 0, 1, 6, 2],
                 "u4": [3, 7, 8, 2], "u5": [1]}
    for u, seq in timelines.items():
        for d, i in enumerate(seq):
            rows.append({"user_id": u, "item_id": f"i{i}", "timestamp": t0 + pd.Timedelta(days=3 * d + int(u[1]))})
    train = pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)  # order must not matter
    return items, users, train


def tiny_config(tiny_bert, **kw):
    base = dict(model=tiny_bert, max_length=16, batch_size=4, epochs=2, evals_per_epoch=1, patience=5,
                max_pairs=None, val_frac=0.0, freeze_layers=0, lr=1e-3, seed=0, device="cpu",
                min_cooccurrence=1, pair_types="item", context="description+history", history_n=3, anchor="text",
                random_negatives=0)  # the plain design; tests of the profile-shaped anchor ask for it
    base.update(kw)
    return FinetuneConfig(**base)


# ---- pairs ------------------------------------------------------------------------------------------------
def test_item_pairs_follow_time_within_window_and_user(toy):
    items, _, train = toy
    pairs = item_pairs(train, items, window=2, max_gap_days=None)
    assert len(pairs) > 0
    assert (pairs["anchor_time"] <= pairs["positive_time"]).all()
    assert (pairs["anchor_item"] != pairs["positive_item"]).all()
    # the pairs of u1 by hand: i2 i6 i2 i7 -> (i2,i6) (i2,i2 skipped) (i6,i2) (i6,i7) (i2,i7)
    u1 = sorted(zip(pairs.loc[pairs.user_id == "u1", "anchor_item"], pairs.loc[pairs.user_id == "u1", "positive_item"]))
    assert u1 == sorted([("i2", "i6"), ("i6", "i2"), ("i6", "i7"), ("i2", "i7")])
    text = dict(zip(items.item_id, items.text))
    assert (pairs["anchor"] == pairs["anchor_item"].map(text)).all()
    # a gap limit of 4 days keeps only neighbours 3 days apart (each user's events are 3 days apart)
    near = item_pairs(train, items, window=2, max_gap_days=4)
    assert ((near["positive_time"] - near["anchor_time"]) <= pd.Timedelta(days=4)).all() and len(near) < len(pairs)


def test_user_pairs_use_only_earlier_events(toy):
    items, users, train = toy
    pairs = user_pairs(train, items, users, history_n=2, context="description+history")
    events = set(zip(train.user_id, train.item_id, train.timestamp))
    for _, p in pairs.iterrows():
        assert all(t <= p.positive_time for t in p.context_times)  # nothing after the target
        assert all((p.user_id, i, t) in events for i, t in zip(p.context_items, p.context_times))
        assert list(p.context_times) == sorted(p.context_times, reverse=True)  # most recent first
    # new_only: u0 takes i0 again later; that repeat is no target
    u0 = pairs[pairs.user_id == "u0"]
    assert list(u0.positive_item) == ["i0", "i1", "i4", "i9"]  # i0 first: its context is the description alone
    assert u0.iloc[0].anchor == "i like running"
    assert u0.iloc[2].anchor == "i like running | " + WORDS[1] + " | " + WORDS[0]  # most recent first
    # history alone: u5's single event has no earlier event, so no pair; no description -> no first pair
    hist = user_pairs(train, items, users, context="history")
    assert "u5" not in set(hist.user_id)
    assert list(hist[hist.user_id == "u0"].positive_item) == ["i1", "i4", "i9"]  # i0 had no context yet


def test_pairs_refuse_unknown_items(toy, tiny_bert):
    items, users, train = toy
    bad = pd.concat([train, pd.DataFrame({"user_id": ["u0"], "item_id": ["nope"],
                                          "timestamp": [pd.Timestamp("2026-03-01")]})])
    with pytest.raises(ValueError, match="train.*missing from items.*nope"):
        item_pairs(bad, items)
    with pytest.raises(ValueError, match="train.*missing from items"):
        user_pairs(bad, items, users)
    pairs = item_pairs(train, items)
    pairs.loc[0, "positive_item"] = "ghost"
    with pytest.raises(ValueError, match=r"pairs\['positive_item'\].*ghost"):
        finetune(train, items, users, tiny_config(tiny_bert), pairs=pairs)


# ---- bad input, each by name ----------------------------------------------------------------------------
def test_bad_arguments_are_named(toy, tiny_bert, tmp_path):
    items, users, train = toy
    with pytest.raises(ValueError, match="batch_size must be >= 2.*in-batch negatives"):
        finetune(train, items, users, tiny_config(tiny_bert, batch_size=1))
    with pytest.raises(ValueError, match="lr must be > 0"):
        finetune(train, items, users, tiny_config(tiny_bert, lr=0.0))
    with pytest.raises(ValueError, match="lr must be > 0"):
        finetune(train, items, users, tiny_config(tiny_bert, lr=-1e-4))
    lonely = train[train.user_id == "u5"]  # one event: no pair at all
    with pytest.raises(ValueError, match="pairs has 0 training pair"):
        finetune(lonely, items, users, tiny_config(tiny_bert))
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="out=.*taken.*overwrite=True"):
        finetune(train, items, users, tiny_config(tiny_bert), out=tmp_path / "taken")
    with pytest.raises(ValueError, match="freeze_layers=2 with method='lora' leaves no layer to adapt"):
        finetune(train, items, users, tiny_config(tiny_bert, method="lora", lora_r=4, freeze_layers=2))
    with pytest.raises(ValueError, match="lora_r=4 is set but method='top-layers'.*method='lora'"):
        finetune(train, items, users, tiny_config(tiny_bert, lora_r=4))
    with pytest.raises(ValueError, match="method must be one of.*'adapter'"):
        finetune(train, items, users, tiny_config(tiny_bert, method="dense"))
    with pytest.raises(ValueError, match="freeze_layers=3 but the model has 2 layers"):
        finetune(train, items, users, tiny_config(tiny_bert, freeze_layers=3))


def test_a_causal_lm_is_refused(toy, tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50).save_pretrained(tmp_path / "gpt")
    items, users, train = toy
    with pytest.raises(ValueError, match="model .*'gpt2' model, not a bidirectional encoder"):
        finetune(train, items, users, FinetuneConfig(model=str(tmp_path / "gpt"), device="cpu", val_frac=0.0))


# ---- the loss ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("symmetric", [False, True])
def test_loss_matches_sentence_transformers_mnrl(tiny_bert, symmetric):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    anchors, positives = WORDS[:5], WORDS[5:]
    st = SentenceTransformer(tiny_bert, device="cpu")
    st.max_seq_length = 16
    st.eval()
    kw = {"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction"} if symmetric else {}
    ref_loss = MultipleNegativesRankingLoss(st, scale=20.0, **kw)
    with torch.no_grad():
        ref = ref_loss([st.tokenize(anchors), st.tokenize(positives)], None)
    tok, model = ft.load_encoder(tiny_bert)
    model.eval()
    run = ft._Runner(tok, model, torch.device("cpu"), 16, ft._nullcontext)
    with torch.no_grad():
        mine = info_nce(run.embed(anchors), run.embed(positives), 20.0, symmetric=symmetric)
    assert abs(float(mine) - float(ref)) < 1e-5


def test_loss_by_hand_and_duplicate_mask():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    c = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # both positives are the same text
    # row 0: logits [20, 20] -> -log(1/2); row 1: logits [0, 0] -> -log(1/2)
    assert float(info_nce(a, c, 20.0)) == pytest.approx(np.log(2), abs=1e-6)
    mask = torch.tensor([[False, True], [True, False]])  # each positive is the other's false negative
    assert float(info_nce(a, c, 20.0, mask)) == pytest.approx(0.0, abs=1e-6)


# ---- the trainer ------------------------------------------------------------------------------------------
def test_finetune_saves_a_folder_textencoder_loads_with_its_own_cache(toy, tiny_bert, tmp_path, monkeypatch):
    items, users, train = toy
    cache = tmp_path / "cache"
    frozen = TextEncoder(tiny_bert, cache=str(cache), max_length=16, device="cpu").encode(WORDS)
    res = finetune(train, items, users, tiny_config(tiny_bert), out=tmp_path / "m")
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "finetune.json"} <= files
    assert not any(p.name.startswith(".m.") for p in tmp_path.iterdir())  # no temp folder left behind
    enc = TextEncoder(str(tmp_path / "m"), cache=str(cache), max_length=16, device="cpu")
    tuned = enc.encode(WORDS)
    np.testing.assert_allclose(tuned, res.encode(WORDS), atol=1e-5)  # in-memory model == saved model
    assert np.abs(tuned - frozen).max() > 1e-3  # not the frozen model's cache entries
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2  # two weight fingerprints, two cache folders
    assert len(res.history) == res.history["step"].max() > 0 and np.isfinite(res.history["loss"]).all()


def _full_loss(tiny_bert, model, pairs):
    tok, _ = ft.load_encoder(tiny_bert)
    model.eval()
    run = ft._Runner(tok, model, torch.device("cpu"), 16, ft._nullcontext)
    with torch.no_grad():
        return float(info_nce(run.embed(pairs.anchor.tolist()), run.embed(pairs.positive.tolist()), 20.0))


def test_training_lowers_the_loss_and_is_deterministic(toy, tiny_bert):
    items, users, train = toy
    pairs = pd.DataFrame({"anchor": WORDS[:5], "positive": WORDS[5:]})  # five couples to pull together
    cfg = tiny_config(tiny_bert, epochs=30, batch_size=5)
    r1 = finetune(train, items, users, cfg, pairs=pairs)
    r2 = finetune(train, items, users, cfg, pairs=pairs)
    _, base = ft.load_encoder(tiny_bert)
    assert _full_loss(tiny_bert, r1.model, pairs) < 0.5 * _full_loss(tiny_bert, base, pairs)
    pd.testing.assert_frame_equal(r1.history, r2.history)
    for (n, p), (_, q) in zip(r1.model.state_dict().items(), r2.model.state_dict().items()):
        assert torch.equal(p, q), n


def test_freezing_keeps_the_bottom_and_the_cached_path_matches_the_model(toy, tiny_bert):
    items, users, train = toy
    _, base = ft.load_encoder(tiny_bert)
    res = finetune(train, items, users, tiny_config(tiny_bert, freeze_layers=1))
    after = res.model.state_dict()
    for n, p in base.state_dict().items():
        if n.startswith("embeddings.") or n.startswith("encoder.layer.0."):
            assert torch.equal(p, after[n]), n
    assert any(not torch.equal(p, after[n]) for n, p in base.state_dict().items() if "layer.1." in n)
    assert res._runner.split  # the frozen states were cached and reused
    tok, model = ft.load_encoder(tiny_bert)
    ft.freeze_bottom(model, 1)
    plain = ft._Runner(tok, model, torch.device("cpu"), 16, ft._nullcontext)
    split = ft._Runner(tok, model, torch.device("cpu"), 16, ft._nullcontext, n_frozen=1, cache=True)
    assert split.split and not plain.split
    np.testing.assert_allclose(split.encode(WORDS), plain.encode(WORDS), atol=1e-5)


def test_lora_is_merged_into_a_plain_model(toy, tiny_bert, tmp_path):
    pytest.importorskip("peft")
    items, users, train = toy
    res = finetune(train, items, users, tiny_config(tiny_bert, method="lora", lora_r=4, lr=1e-2), out=tmp_path / "lora")
    files = {p.name for p in (tmp_path / "lora").iterdir()}
    assert "adapter_config.json" not in files and "model.safetensors" in files
    _, base = ft.load_encoder(tiny_bert)
    _, loaded = ft.load_encoder(str(tmp_path / "lora"))
    assert set(loaded.state_dict()) == set(base.state_dict())  # no lora_A/lora_B left: a plain BERT
    changed = [n for n, p in base.state_dict().items() if not torch.equal(p, loaded.state_dict()[n])]
    assert changed and all(n.endswith(".weight") for n in changed)  # LoRA moved the linear weights only
    assert not any("embeddings" in n or "LayerNorm" in n for n in changed)
    TextEncoder(str(tmp_path / "lora"), cache=False, device="cpu").encode(WORDS[:2])


def test_lora_on_the_top_layers_only_moves_them(toy, tiny_bert, tmp_path):
    """method='lora' with freeze_layers=1: adapters on layer 1 only, layer 0 and the embeddings untouched (and the
    bottom computed once and cached, as for freeze_layers)."""
    pytest.importorskip("peft")
    items, users, train = toy
    finetune(train, items, users, tiny_config(tiny_bert, method="lora", lora_r=4, lr=1e-2, freeze_layers=1),
             out=tmp_path / "top")
    _, base = ft.load_encoder(tiny_bert)
    _, loaded = ft.load_encoder(str(tmp_path / "top"))
    changed = [n for n, p in base.state_dict().items() if not torch.equal(p, loaded.state_dict()[n])]
    assert changed and all(n.startswith("encoder.layer.1.") for n in changed)
    cfg = tiny_config(tiny_bert, method="lora", lora_r=4, freeze_layers=1)
    every = tiny_config(tiny_bert, method="lora", lora_r=4, freeze_layers=0)
    assert 0 < ft.trainable_parameters(cfg) < ft.trainable_parameters(every)


def test_early_stopping_keeps_the_best_weights(toy, tiny_bert):
    items, users, train = toy
    calls = []

    def falling(encoder):  # the best score is the starting model's; every later one is worse
        calls.append(encoder.encode(WORDS[:1]).copy())
        return 1.0 - len(calls)

    res = finetune(train, items, users, tiny_config(tiny_bert, epochs=6, patience=2), eval_fn=falling)
    assert res.best_step == 0 and res.best_val == 0.0
    assert list(res.evals["val"]) == [0.0, -1.0, -2.0]  # stopped after two evaluations without improvement
    assert res.history["epoch"].max() == pytest.approx(2.0)  # of the 6 epochs asked for
    _, base = ft.load_encoder(tiny_bert)
    for n, p in base.state_dict().items():
        assert torch.equal(p, res.model.state_dict()[n]), n  # back to the start


def test_builtin_validation_scores_the_time_slice(toy, tiny_bert):
    items, users, train = toy
    res = finetune(train, items, users, tiny_config(tiny_bert, val_frac=0.3, epochs=2, batch_size=2))
    assert res.evals["step"].iloc[0] == 0 and len(res.evals) == 3
    assert res.evals["val"].between(0, 1).all()
    assert res.best_val == res.evals["val"].max()
    # the pairs came only from the part before the validation slice
    fit = ft.validation_split(train, 0.3).train
    assert res.n_pairs == len(training_pairs(fit, items, users, tiny_config(tiny_bert)))


def test_hard_negatives_come_from_items_the_user_never_took(toy, tiny_bert):
    items, users, train = toy
    pairs = item_pairs(train, items)
    tok, model = ft.load_encoder(tiny_bert)
    run = ft._Runner(tok, model, torch.device("cpu"), 16, ft._nullcontext)
    cfg = tiny_config(tiny_bert, hard_negatives=True, hard_negative_ranks=(1, 6))
    out = ft._add_hard_negatives(pairs, items, train, run, cfg, np.random.default_rng(0))
    taken = train.groupby("user_id")["item_id"].agg(set)
    assert all(n not in taken[u] for u, n in zip(out.user_id, out.negative_item) if len(taken[u]) < 9)
    res = finetune(train, items, users, cfg)
    assert len(res.history) > 0


def test_an_interrupted_save_leaves_nothing_and_keeps_the_old_model(toy, tiny_bert, tmp_path, monkeypatch):
    items, users, train = toy
    res = finetune(train, items, users, tiny_config(tiny_bert, epochs=1))
    tok, _ = ft.load_encoder(tiny_bert)
    ft.save_model(res.model, tok, tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(tok), "save_pretrained", boom)
    with pytest.raises(KeyboardInterrupt):
        ft.save_model(res.model, tok, tmp_path / "new")
    with pytest.raises(KeyboardInterrupt):
        ft.save_model(res.model, tok, tmp_path / "m", overwrite=True)
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp folders
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before


def test_overwrite_replaces_a_model(toy, tiny_bert, tmp_path):
    items, users, train = toy
    finetune(train, items, users, tiny_config(tiny_bert, epochs=1), out=tmp_path / "m")
    res = finetune(train, items, users, tiny_config(tiny_bert, epochs=1, seed=1), out=tmp_path / "m", overwrite=True)
    assert res.path == tmp_path / "m" and sorted(p.name for p in tmp_path.iterdir()) == ["m"]


# ---- the real model ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_minilm_loss_matches_sentence_transformers_and_falls(shop, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from course_lib.encode import resolve_text_model

    torch.set_num_threads(2)
    train = shop.interactions[shop.interactions.user_id.isin(shop.interactions.user_id.unique()[:40])]
    pairs = item_pairs(train, shop.items, window=1).head(64)
    st = SentenceTransformer(resolve_text_model("all-MiniLM-L6-v2"), device="cpu")
    st.max_seq_length = 48
    st.eval()
    a, p = pairs["anchor"].tolist()[:16], pairs["positive"].tolist()[:16]
    with torch.no_grad():
        ref = MultipleNegativesRankingLoss(st)([st.tokenize(a), st.tokenize(p)], None)
    tok, model = ft.load_encoder("all-MiniLM-L6-v2")
    model.eval()
    run = ft._Runner(tok, model, torch.device("cpu"), 48, ft._nullcontext)
    with torch.no_grad():
        assert abs(float(info_nce(run.embed(a), run.embed(p), 20.0, )) - float(ref)) < 1e-5
    cfg = replace(FinetuneConfig(), max_length=48, batch_size=16, epochs=3, val_frac=0.0, device="cpu",
                  mask_duplicates=False, anchor="text", random_negatives=0, freeze_layers=5, lr=5e-4)
    res = finetune(train, shop.items, shop.users, cfg, pairs=pairs, out=tmp_path / "minilm")
    loss = res.history["loss"].to_numpy()
    assert loss[-4:].mean() < loss[:4].mean()
    vecs = TextEncoder(str(tmp_path / "minilm"), cache=False, max_length=48, device="cpu").encode(a[:4])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_a_learnable_scale_moves_and_stays_clamped(toy, tiny_bert):
    items, users, train = toy
    res = finetune(train, items, users, tiny_config(tiny_bert, learn_scale=True, lr=5e-2, epochs=3))
    scale = res.history["scale"]
    assert scale.iloc[0] == pytest.approx(20.0) and scale.nunique() > 1
    assert scale.between(1.0, 100.0).all()
    fixed = finetune(train, items, users, tiny_config(tiny_bert, epochs=1))
    assert (fixed.history["scale"] == 20.0).all()


def test_presets_are_valid():
    ft._check_config(FinetuneConfig())
    ft._check_config(ft.FAST)
    ft._check_config(ft.ADAPTER)
    assert ft.FAST.max_pairs < FinetuneConfig().max_pairs
    assert ft.ADAPTER.method == "adapter" and ft.ADAPTER.max_pairs == FinetuneConfig().max_pairs  # the same pairs


# ---- the profile-shaped anchor and uniform negatives ------------------------------------------------------
@pytest.fixture()
def still_bert(tiny_bert, tmp_path):
    """tiny_bert without dropout, so a training step's loss equals the loss computed by hand in eval mode."""
    from transformers import AutoTokenizer, BertModel

    model = BertModel.from_pretrained(tiny_bert, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model.save_pretrained(tmp_path / "still")
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(tmp_path / "still")
    return str(tmp_path / "still")


def test_mean_anchor_and_random_negatives_give_the_loss_computed_by_hand(toy, still_bert):
    items, users, train = toy
    cfg = tiny_config(still_bert, pair_types="user", context="history", history_n=2, anchor="mean",
                      random_negatives=len(items), epochs=1, lr=1e-6)
    pairs = user_pairs(train, items, users, history_n=2, context="history")
    res = finetune(train, items, users, replace(cfg, batch_size=len(pairs)))  # one step over every pair
    assert res.n_pairs == len(pairs) and len(res.history) == 1
    tok, model = ft.load_encoder(still_bert)
    model.eval()
    run = ft._Runner(tok, model, torch.device("cpu"), 16, ft._nullcontext)
    text = dict(zip(items.item_id, items.text))
    with torch.no_grad():  # the anchor is the profile: the mean of the context items' embeddings
        anchors = torch.stack([run.embed([text[i] for i in ctx]).mean(0) for ctx in pairs.context_items])
        positives = pairs.positive.tolist()
        cands = run.embed(positives + items.text.tolist())  # in-batch positives, then every catalogue item
        names = positives + items.text.tolist()
        mask = torch.tensor([[j != i and names[j] == positives[i] for j in range(len(names))]
                             for i in range(len(positives))])
        by_hand = float(info_nce(anchors, cands, 20.0, mask))
    assert res.history["loss"].iloc[0] == pytest.approx(by_hand, abs=1e-5)
    # without the mean anchor the loss is a different number (the joined text is the anchor)
    joined = finetune(train, items, users, replace(cfg, anchor="text", batch_size=len(pairs)))
    assert abs(joined.history["loss"].iloc[0] - by_hand) > 1e-3


def test_bank_negatives_give_the_full_catalogue_softmax_computed_by_hand(toy, still_bert):
    """negatives='bank': every catalogue item is a candidate (one row each, the label is the positive's row); with
    one step over every pair, the bank (computed before the step) equals the live vectors, so the loss is a plain
    softmax over the whole catalogue."""
    items, users, train = toy
    cfg = tiny_config(still_bert, pair_types="user", context="history", history_n=2, anchor="mean",
                      negatives="bank", epochs=1, lr=1e-6)
    pairs = user_pairs(train, items, users, history_n=2, context="history")
    res = finetune(train, items, users, replace(cfg, batch_size=len(pairs)))
    assert len(res.history) == 1
    tok, model = ft.load_encoder(still_bert)
    model.eval()
    run = ft._Runner(tok, model, torch.device("cpu"), 16, ft._nullcontext)
    text = dict(zip(items.item_id, items.text))
    row = {i: r for r, i in enumerate(items.item_id)}
    with torch.no_grad():
        anchors = torch.stack([run.embed([text[i] for i in ctx]).mean(0) for ctx in pairs.context_items])
        every = torch.nn.functional.normalize(run.embed(items.text.tolist()), dim=1)
        logits = 20.0 * torch.nn.functional.normalize(anchors, dim=1) @ every.T
        by_hand = float(torch.nn.functional.cross_entropy(logits, torch.tensor(pairs.positive_item.map(row).tolist())))
    assert res.history["loss"].iloc[0] == pytest.approx(by_hand, abs=1e-5)
    with pytest.raises(ValueError, match="negatives must be one of"):
        finetune(train, items, users, replace(cfg, negatives="hard"))
    text_pairs = pd.DataFrame({"anchor": WORDS[:4], "positive": WORDS[4:8]})
    with pytest.raises(ValueError, match="negatives='bank' needs pairs with a 'positive_item' column"):
        finetune(train, items, users, replace(cfg, anchor="text"), pairs=text_pairs)


def test_mean_anchor_and_random_negatives_refuse_what_they_cannot_do(toy, tiny_bert):
    items, users, train = toy
    with pytest.raises(ValueError, match="anchor='mean' averages the history items of user pairs; got pair_types='item'"):
        finetune(train, items, users, tiny_config(tiny_bert, anchor="mean"))
    with pytest.raises(ValueError, match="anchor must be one of"):
        finetune(train, items, users, tiny_config(tiny_bert, anchor="median"))
    with pytest.raises(ValueError, match=r"random_negatives must be <= the number of items \(10\), got 11"):
        finetune(train, items, users, tiny_config(tiny_bert, pair_types="user", random_negatives=11))


def test_finetune_cached_trains_once_and_retrains_when_the_log_changes(toy, tiny_bert, tmp_path, monkeypatch):
    items, users, train = toy
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real = ft.finetune
    monkeypatch.setattr(ft, "finetune", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = tiny_config(tiny_bert, epochs=1)
    first = ft.finetune_cached(train, items, users, cfg)
    again = ft.finetune_cached(train.sample(frac=1.0, random_state=1), items, users, cfg)  # same log, other order
    assert len(calls) == 1 and again.path == first.path and again.model is None
    pd.testing.assert_frame_equal(again.history, first.history, check_dtype=False)
    pd.testing.assert_frame_equal(again.evals, first.evals, check_dtype=False)
    np.testing.assert_allclose(again.encode(WORDS), first.encode(WORDS), atol=1e-5)  # loaded from the folder
    ft.finetune_cached(train.iloc[1:], items, users, cfg)  # one event fewer: a different model
    ft.finetune_cached(train, items, users, replace(cfg, lr=2e-3))  # another setting: a different model
    assert len(calls) == 3 and len(list((tmp_path / "cache" / "finetuned").iterdir())) == 3 + 3  # + lock files
    with pytest.raises(TypeError, match="config must be a FinetuneConfig, got dict"):
        ft.finetune_cached(train, items, users, {"lr": 1e-3})


def test_a_saved_model_folder_has_the_usual_permissions(toy, tiny_bert, tmp_path):
    import os

    items, users, train = toy
    old = os.umask(0o022)
    try:
        res = finetune(train, items, users, tiny_config(tiny_bert, epochs=1), out=tmp_path / "m")
    finally:
        os.umask(old)
    assert (res.path.stat().st_mode & 0o777) == 0o755  # not mkdtemp's 0o700: others can read a shared model
