"""F1@k, classification accuracy and relevant ranks against sklearn; the article-mistake sentences on both outcomes."""
import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from course_lib import metrics as M
from course_lib import mistakes


def _binary(rows, n):
    v = np.zeros(n, dtype=int)
    v[list(rows)] = 1
    return v


def test_f1_and_accuracy_match_sklearn_on_the_binary_top_k_vs_relevant_sets():
    rng = np.random.default_rng(0)
    n, k = 30, 5
    recs = [list(rng.choice(n, k, replace=False)) for _ in range(20)]
    rel = [set(rng.choice(n, rng.integers(1, 8), replace=False).tolist()) for _ in range(20)]
    f1 = M.f1_at_k(recs, rel, k).per_user
    acc = M.classification_accuracy_at_k(recs, rel, k, n).per_user
    for u, (r, s) in enumerate(zip(recs, rel)):
        assert f1[u] == pytest.approx(f1_score(_binary(s, n), _binary(r, n), zero_division=0.0))
        assert acc[u] == pytest.approx(accuracy_score(_binary(s, n), _binary(r, n)))
    # on paper: list [0, 1] against {1, 2, 3}: P = 1/2, R = 1/3, F1 = 2PR/(P+R) = 0.4
    assert M.f1_at_k([[0, 1]], [{1, 2, 3}], 2).value == pytest.approx(0.4)
    assert M.f1_at_k([[0, 4]], [{1}], 2).value == 0.0


def test_relevant_ranks_agree_with_sklearn_auc_and_a_brute_sort():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, size=(12, 25)).astype(float)  # many ties
    rel = [set(rng.choice(25, 3, replace=False).tolist()) for _ in range(12)]
    hide = [[int(i) for i in rng.choice(25, 2, replace=False) if i not in r] for r in rel]
    ranks = M.relevant_ranks(scores, rel, hide)
    for row, r, h, rk in zip(scores, rel, hide, ranks):
        vis = np.setdiff1d(np.arange(25), h)
        y = np.isin(vis, list(r)).astype(int)
        n_pos, n_neg = y.sum(), len(y) - y.sum()
        neg_above = (rk - 1).sum() - n_pos * (n_pos - 1) / 2  # items above each relevant one, minus relevant pairs
        assert 1 - neg_above / (n_pos * n_neg) == pytest.approx(roc_auc_score(y, row[vis]))
    distinct = np.arange(10.0)[None, ::-1]  # item 0 scores highest
    assert list(M.relevant_ranks(distinct, [{0, 9}])[0]) == [1.0, 10.0]
    assert list(M.relevant_ranks(distinct, [{9}], [[0]])[0]) == [9.0]  # item 0 hidden: one fewer above


def test_auc_vs_ndcg_sentence_tells_the_truth_either_way():
    t = pd.DataFrame({"AUC": [0.9, 0.8], "NDCG@10": [0.10, 0.14], "relevant in top 10": [0.1, 0.2],
                      "relevant in worst quarter": [0.02, 0.1], "relevant scored 0": [0.2, 0.0],
                      "relevant scored < 0": [0.0, 0.13], "median rank": [50, 90]}, index=["kNN", "EASE"])
    s = mistakes.auc_vs_ndcg_sentence(t, "kNN", "EASE", 10)
    assert "So EASE lifts more relevant items to the top" in s and "10.0% in the worst quarter of the catalogue against 2.0%" in s
    t.loc["EASE", "relevant in worst quarter"] = 0.01
    assert "not because EASE buries more" in mistakes.auc_vs_ndcg_sentence(t, "kNN", "EASE", 10)
    t.loc["kNN", "AUC"] = 0.7
    s = mistakes.auc_vs_ndcg_sentence(t, "kNN", "EASE", 10)
    assert "does not show kNN winning on AUC" in s and "not higher on AUC" in s
    with pytest.raises(ValueError, match="'pop' is not in the placement table"):
        mistakes.auc_vs_ndcg_sentence(t, "pop", "EASE", 10)


def test_stop_words_and_description_signal_on_hand_cases(tiny_bert):
    assert mistakes.strip_stop_words("I do not like running shoes.", ENGLISH_STOP_WORDS) == "like running shoes."
    from course_lib.encode import TextEncoder

    eff = mistakes.stop_word_effect(TextEncoder(tiny_bert, cache=False), ["I do not like red shoes"], ENGLISH_STOP_WORDS)
    assert eff["tokens stripped"].iloc[0] < eff["tokens"].iloc[0] and -1 <= eff["cosine(full, stripped)"].iloc[0] <= 1
    s = mistakes.stop_word_sentence(eff, {"full": 0.5, "stripped": 0.4})
    assert "On retrieval: 0.400 stripped against 0.500" in s and "helps" not in s  # two numbers: no verdict
    rng = np.random.default_rng(0)
    full = rng.uniform(0, 1, 200)
    assert "it hurts" in mistakes.stop_word_sentence(eff, {"full": full, "stripped": full - 0.1}, n_boot=200)
    assert "it helps" in mistakes.stop_word_sentence(eff, {"full": full, "stripped": full + 0.1}, n_boot=200)
    tied = mistakes.stop_word_sentence(eff, {"full": full, "stripped": full + rng.normal(0, 0.1, 200)}, n_boot=200)
    assert "no measurable difference" in tied and "paired over 200 users" in tied
    with pytest.raises(ValueError, match="per-user arrays of one length"):
        mistakes.stop_word_sentence(eff, {"full": full, "stripped": full[:5]})

    items = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    sig = mistakes.description_signal(np.array([[1.0, 0.0], [1.0, 1.0]]), items, ["a", "a", "b", "b"], k=2)
    assert list(sig["kinds in top 2"]) == [1, 2]  # the first names kind a; the second points between both
    assert sig["spread"].iloc[0] > sig["spread"].iloc[1]
    verdict = mistakes.cold_sentence_verdict(sig.iloc[[1]], pd.concat([sig.iloc[[0]]] * 20), "I am new here.")
    assert "should get popularity" in verdict
    with pytest.raises(ValueError, match="item_labels has 3 entries but item_vecs 4 rows"):
        mistakes.description_signal(items[:1], items, ["a", "a", "b"])


def test_model_size_counts_parameters(tiny_bert):
    from course_lib.encode import TextEncoder

    model = TextEncoder(tiny_bert, cache=False).model
    size = mistakes.model_size(model)
    assert size["parameters (M)"] * 1e6 == pytest.approx(sum(p.numel() for p in model.parameters()))
    assert size["vector size"] == model.config.hidden_size
    with pytest.raises(TypeError, match="Hugging Face model"):
        mistakes.model_size("MiniLM")


@pytest.mark.slow
def test_evaluation_sentences_on_the_shop(shop):
    from course_lib.baselines import EASE, ItemKNN, RandomRec
    from course_lib.data import make_split
    from course_lib.evaluate import evaluate

    split = make_split(shop.interactions, "global", 0.2)
    ev = evaluate({"random": RandomRec(shop.items, seed=0), "item-kNN": ItemKNN(shop.items), "EASE": EASE(shop.items)},
                  split.train, split.test, shop.items, 10, with_auc=True)
    t, s = mistakes.accuracy_vs_precision(ev, split.train, split.test, ["random", "EASE"])
    assert np.allclose(t["article's accuracy"], t["precision@10"]) and "equals precision@10" in s
    assert (t["classification accuracy@10"] > 0.95).all()
    f, s = mistakes.f1_table(ev, split.train, split.test, ["random", "item-kNN", "EASE"])
    assert np.allclose(f["precision"], ev.per_user.groupby("method")["precision"].mean()[f.index])
    assert (f["F1"] >= np.minimum(f["precision"], f["recall"]) - 1e-12).all()
    p = mistakes.placement(ev, split.train, split.test, ["item-kNN", "EASE"])
    ret = ev.per_user.query("group == 'returning'").groupby("method")["auc"].mean()
    assert p.loc["EASE", "relevant in top 10"] == pytest.approx(
        ev.per_user.query("group == 'returning' and method == 'EASE'")["recall"].mean())  # top-10 share = recall@10
    assert p.loc["EASE", "AUC"] == pytest.approx(ret["EASE"], abs=1e-4)
    assert p.loc["EASE", "NDCG@10"] == pytest.approx(ev.per_user.query("group == 'returning' and method == 'EASE'")["ndcg"].mean())


def test_cold_sentence_rule_catches_a_scattered_list_even_with_a_normal_spread():
    ref = pd.DataFrame({"best cosine": 0.5, "spread": np.linspace(0.1, 0.5, 100),
                        "kinds in top 10": np.r_[np.full(90, 3), np.full(10, 6)]})
    scattered = pd.DataFrame({"best cosine": [0.4], "spread": [0.3], "kinds in top 10": [8]})
    v = mistakes.cold_sentence_verdict(scattered, ref, "I am new to this platform.")
    assert "not below" in v and "90th percentile 3: more" in v and "should get popularity" in v
    focused = scattered.assign(**{"kinds in top 10": [2]})
    assert "should get its own list" in mistakes.cold_sentence_verdict(focused, ref, "I like tents.")
