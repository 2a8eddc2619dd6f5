"""TextEncoder and ImageEncoder: loading, pooling, batching order, bad input, cache (tiny BERT); a few real-model checks."""
import hashlib

import numpy as np
import pytest
import torch

from course_lib.encode import (POOLINGS, ImageEncoder, ModelNotFoundError, TextEncoder, colour_texture_descriptor,
                               resolve_text_model)

TEXTS = ["i like smart watches", "this has a long battery life and is water resistant", "red shoes",
         "the camera", "a tent for running and coffee and a book and blue shoes and fitness tracking devices", ""]


def reference_pooling(path, texts, pooling):
    """Independent, one text at a time, straight from transformers."""
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out = []
    with torch.no_grad():
        for t in texts:
            b = tok(t, return_tensors="pt")
            o = model(**b)
            v = {"mean": o.last_hidden_state[0].mean(0), "cls": o.last_hidden_state[0, 0], "pooler": o.pooler_output[0]}[pooling]
            out.append((v / v.norm()).numpy())
    return np.stack(out)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_batched_matches_one_at_a_time_reference(tiny_bert, pooling):
    enc = TextEncoder(tiny_bert, pooling=pooling, batch_size=2, cache=False, device="cpu")
    got = enc.encode(TEXTS)
    want = reference_pooling(tiny_bert, TEXTS, pooling)
    assert got.shape == (len(TEXTS), 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)  # padding and masking change nothing
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(enc.encode_one_by_one(TEXTS), want, atol=1e-5)


def test_order_is_input_order_despite_length_sorting(tiny_bert):
    enc = TextEncoder(tiny_bert, batch_size=2, cache=False)
    a = enc.encode(TEXTS)
    perm = [4, 0, 5, 2, 1, 3]
    b = enc.encode([TEXTS[i] for i in perm])
    np.testing.assert_allclose(b, a[perm], atol=1e-6)


def test_unnormalised_output_and_truncation(tiny_bert):
    raw = TextEncoder(tiny_bert, normalize=False, cache=False).encode(TEXTS[:2])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1)
    short = TextEncoder(tiny_bert, max_length=4, cache=False)
    long_text = " ".join(["coffee"] * 200)
    # beyond max_length tokens, the rest is ignored: a long text equals its first words
    np.testing.assert_allclose(short.encode([long_text]), short.encode(["coffee coffee"]), atol=1e-6)


def test_empty_list_and_empty_string(tiny_bert):
    enc = TextEncoder(tiny_bert, cache=False)
    assert enc.encode([]).shape == (0, 32)
    e = enc.encode(["", ""])
    assert np.isfinite(e).all() and np.allclose(e[0], e[1])


@pytest.mark.parametrize("bad,msg", [
    ([None], r"text at index 0 is None"),
    (["ok", float("nan")], r"text at index 1 is NaN"),
    (["ok", "ok", 3], r"text at index 2 is 3 \(int\)"),
])
def test_non_strings_name_the_index(tiny_bert, bad, msg):
    with pytest.raises(TypeError, match=msg):
        TextEncoder(tiny_bert, cache=False).encode(bad)


def test_single_string_is_refused(tiny_bert):
    with pytest.raises(TypeError, match=r"wrap a single text in a list"):
        TextEncoder(tiny_bert, cache=False).encode("just one")


def test_bad_options_list_choices(tiny_bert):
    with pytest.raises(ValueError, match=r"pooling must be one of \('mean', 'cls', 'pooler'\), got 'max'"):
        TextEncoder(tiny_bert, pooling="max")
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        TextEncoder(tiny_bert, batch_size=0)


def test_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"folder .*no-such-model does not exist.*local folder"):
        TextEncoder(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelNotFoundError, match=r"neither a local folder nor in the Hugging Face cache.*HF_HUB_OFFLINE=1"):
        TextEncoder("someone/not-a-real-model-xyz")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError, match=r"could not be loaded.*config.json"):
        TextEncoder(str(tmp_path / "broken"))


def test_cache_encodes_only_missing_texts(tiny_bert, tmp_path, monkeypatch):
    enc = TextEncoder(tiny_bert, cache=tmp_path)
    first = enc.encode(TEXTS[:3])
    calls = []
    original = enc._encode_batched
    monkeypatch.setattr(enc, "_encode_batched", lambda t, *a: calls.append(list(t)) or original(t, *a))
    both = enc.encode(TEXTS[:3] + TEXTS[3:5] + [TEXTS[3]])
    assert calls == [[TEXTS[3], TEXTS[4]]]  # only the two new texts, each once
    np.testing.assert_array_equal(both[:3], first)
    np.testing.assert_array_equal(both[5], both[3])
    # a new encoder with the same weights reads the same cache from disk
    again = TextEncoder(tiny_bert, cache=tmp_path)
    monkeypatch.setattr(again, "_encode_batched", lambda *a: pytest.fail("should be cached"))
    np.testing.assert_array_equal(again.encode(TEXTS[:5]), both[:5])


def test_cache_key_separates_pooling_and_length(tiny_bert, tmp_path):
    a = TextEncoder(tiny_bert, pooling="mean", cache=tmp_path).encode(TEXTS[:2])
    b = TextEncoder(tiny_bert, pooling="cls", cache=tmp_path).encode(TEXTS[:2])
    c = TextEncoder(tiny_bert, pooling="mean", max_length=3, cache=tmp_path).encode(TEXTS[1:2])
    assert not np.allclose(a, b) and not np.allclose(a[1], c[0])
    assert len(list(tmp_path.iterdir())) == 3


def test_cache_survives_a_truncated_shard(tiny_bert, tmp_path):
    want = TextEncoder(tiny_bert, cache=tmp_path).encode(TEXTS)
    (shard,) = list(tmp_path.rglob("shard-*.npz"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.warns(RuntimeWarning, match="dropping corrupt shard"):
        got = TextEncoder(tiny_bert, cache=tmp_path).encode(TEXTS)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert len(list(tmp_path.rglob("shard-*.npz"))) == 1  # re-encoded and written again


def test_bundled_default_resolves_offline():
    path = resolve_text_model("all-MiniLM-L6-v2")
    assert path.endswith("model") and resolve_text_model("bert-base-uncased") == "bert-base-uncased"


@pytest.mark.slow
def test_bundled_weights_are_the_official_file():
    from pathlib import Path

    digest = hashlib.sha256((Path(resolve_text_model("all-MiniLM-L6-v2")) / "model.safetensors").read_bytes()).hexdigest()
    assert digest == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@pytest.mark.slow
def test_mean_pooling_matches_sentence_transformers(shop):
    from sentence_transformers import SentenceTransformer

    texts = shop.items["text"].iloc[:96].tolist() + shop.users["description"].iloc[:32].tolist()
    ours = TextEncoder(cache=False, device="cpu").encode(texts)
    st = SentenceTransformer(resolve_text_model("all-MiniLM-L6-v2"), device="cpu").encode(
        texts, normalize_embeddings=True, convert_to_numpy=True)
    cos = (ours * st).sum(axis=1)
    assert cos.min() >= 0.9999


@pytest.mark.slow
def test_pooler_output_is_anisotropic_on_the_real_model(shop):
    """The article's pooler_output puts unrelated items far above 0.5 cosine; mean pooling does not."""
    from course_lib.diagnostics import pair_cosines

    texts = shop.items["text"].iloc[::6].tolist()
    cats = shop.items["category"].iloc[::6]
    stats = {}
    for pooling in ("pooler", "mean"):
        v = TextEncoder(pooling=pooling, cache=False).encode(texts)
        pc = pair_cosines(v, cats, n_pairs=1500)
        stats[pooling] = pc.loc[pc["pair"] == "different", "cosine"].mean()
    assert stats["pooler"] > 0.5 > stats["mean"] + 0.2


# ---- images -------------------------------------------------------------------------------------------------
def test_histogram_descriptor_by_hand():
    img = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    img[0, :, :2] = (255, 0, 0)  # left half red, right half black
    v = colour_texture_descriptor(img, bins=2)
    hist = v[0, :8] / np.linalg.norm(v[0])  # sqrt of shares, then the whole vector normalised
    assert np.count_nonzero(v[0, :8]) == 2
    red, black = (1 * 2 + 0) * 2 + 0, 0
    assert v[0, red] == pytest.approx(v[0, black]) and hist.sum() > 0


def test_histogram_encoder_on_shop(shop, tmp_path):
    enc = ImageEncoder("histogram", cache=tmp_path)
    ids = shop.items["item_id"].iloc[:200]
    v = enc.encode_items(shop, ids)
    assert v.shape == (200, enc.dim) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    same = shop.items["colour"].iloc[:200].to_numpy()
    sims = v @ v.T
    np.fill_diagonal(sims, -1)
    assert (same[sims.argmax(1)] == same).mean() > 0.95  # the nearest picture has the same colour


def test_image_errors_name_the_image(tmp_path):
    enc = ImageEncoder("histogram", cache=False)
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(ValueError, match=r"item 'i7': image file .*bad\.png is corrupt"):
        enc.encode([tmp_path / "bad.png"], names=["item 'i7'"])
    with pytest.raises(ValueError, match=r"image 0: image file .* not found"):
        enc.encode([tmp_path / "missing.png"])
    with pytest.raises(ValueError, match=r"expected an RGB uint8 image"):
        enc.encode([np.zeros((8, 8), dtype=np.uint8)])
    with pytest.raises(ValueError, match=r"kind must be one of \('efficientnet', 'histogram'\)"):
        ImageEncoder("vit")


@pytest.mark.slow
def test_efficientnet_features_and_cache(shop, tmp_path):
    ids = shop.items["item_id"].iloc[:6]
    enc = ImageEncoder(image_size=96, cache=tmp_path, batch_size=4)
    v = enc.encode_items(shop, ids)
    assert v.shape == (6, 1280) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    again = ImageEncoder(image_size=96, cache=tmp_path)
    again.model = None  # a cache hit must not touch the network at all
    np.testing.assert_allclose(again.encode_items(shop, ids), v)
    # batching does not change the features
    np.testing.assert_allclose(ImageEncoder(image_size=96, cache=False, batch_size=1).encode_items(shop, ids[:3]), v[:3], atol=1e-5)
