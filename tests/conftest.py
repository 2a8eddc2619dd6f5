import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# the cache the whole run shares (make test points it at .cache/test): notebook tests encode the shop once
SHARED_CACHE = os.environ.get("COURSE_CACHE_DIR")


@pytest.fixture(scope="session")
def shop():
    from course_lib.data import load_shop

    return load_shop(ROOT / "data" / "shop")


@pytest.fixture(autouse=True)
def _isolated_cache(request, tmp_path, tmp_path_factory, monkeypatch):
    """Unit tests get a private cache; notebook tests share one per run (never the learner's own folder)."""
    if request.node.get_closest_marker("notebook"):
        shared = SHARED_CACHE or str(tmp_path_factory.getbasetemp() / "shared-cache")
        monkeypatch.setenv("COURSE_CACHE_DIR", shared)
    else:
        monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture()
def close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A randomly initialised 2-layer BERT with a 60-word vocabulary, saved like a hub model (milliseconds to load)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = ("i like smart watches and fitness tracking devices this has a long battery life is water resistant "
             "the red blue shoes for running camera book tent coffee").split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(words))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    import inspect

    if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters:  # transformers >= 5 ignores vocab_file
        tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    else:
        tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    assert tok("smart watches")["input_ids"][1:-1] == [vocab.index("smart"), vocab.index("watches")]
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=37, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)
