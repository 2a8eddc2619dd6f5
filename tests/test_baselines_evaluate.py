"""Baselines on hand-made logs, EASE against its formula, the evaluation harness and cold start."""
import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.baselines import EASE, Content, Hybrid, ItemKNN, Popularity, RandomRec, interaction_matrix
from course_lib.coldstart import cold_item_table, new_user_curve, threshold_counts
from course_lib.evaluate import bootstrap_ci, evaluate, item_buckets, tune, user_segments
from course_lib.fuse import fuse_text_image, text_only_query
from course_lib.profiles import blend_profiles
from course_lib.rank import above_threshold, ann_index, recall_vs_exact, top_k, top_k_scores

ITEMS = pd.DataFrame({C.ITEM: list("abcde")})


def log(pairs, day0=1):
    return pd.DataFrame({C.USER: [p[0] for p in pairs], C.ITEM: [p[1] for p in pairs],
                         C.TIMESTAMP: pd.to_datetime([f"2026-01-{day0 + i:02d}" for i in range(len(pairs))]),
                         C.WEIGHT: 1.0})


TRAIN = log([("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u2", "c"), ("u3", "a"), ("u3", "a")])


def test_interaction_matrix_is_binary_unless_weighted():
    m = interaction_matrix(TRAIN, ITEMS, ["u1", "u2", "u3"])
    assert m.toarray().tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]
    assert interaction_matrix(TRAIN, ITEMS, ["u3"], weighted=True).toarray()[0, 0] == 2


def test_popularity_counts_users_not_events():
    p = Popularity(ITEMS).fit(TRAIN)
    assert p.counts.tolist() == [3, 2, 1, 0, 0]
    assert p.scores(["u1", "new"]).shape == (2, 5)


def test_item_knn_recommends_the_co_occurring_item():
    knn = ItemKNN(ITEMS, neighbours=2, shrink=0).fit(TRAIN)
    s = knn.scores(["u1"])[0]
    assert np.argmax(np.where([1, 1, 0, 0, 0], -np.inf, s)) == 2  # u1 saw a, b; c co-occurs with both in u2
    assert knn.scores(["stranger"]).sum() == 0  # unknown user: no history, zero scores


def test_ease_matches_its_closed_form():
    lam = 0.5
    e = EASE(ITEMS, lam=lam).fit(TRAIN)
    X = interaction_matrix(TRAIN, ITEMS, sorted(TRAIN[C.USER].unique())).toarray()
    P = np.linalg.inv(X.T @ X + lam * np.eye(5))
    B = np.eye(5) - P / np.diag(P)
    np.testing.assert_allclose(np.diag(e.B), 0, atol=1e-6)
    np.testing.assert_allclose(e.B, B - np.diag(np.diag(B)), atol=1e-5)
    np.testing.assert_allclose(e.scores(["u1"])[0], X[0] @ e.B, atol=1e-5)
    with pytest.raises(ValueError, match="lam must be > 0"):
        EASE(ITEMS, lam=0)


def test_content_falls_back_to_description_then_popularity():
    vecs = np.eye(5, dtype=np.float32)
    desc = {"newbie": np.array([0, 0, 0, 1, 0], dtype=np.float32)}
    c = Content(ITEMS, vecs, user_vecs=desc).fit(TRAIN)
    _, source = c.profiles(["u1", "newbie", "ghost"])
    assert list(source) == ["history", "description", "none"]
    s = c.scores(["u1", "newbie", "ghost"])
    assert s[0].argmax() in (0, 1) and s[1].argmax() == 3 and s[2].argmax() == 0  # ghost: most popular
    with pytest.raises(ValueError, match="text_only_query"):
        Content(ITEMS, np.eye(5), user_vecs={"x": np.ones(3)})


def test_hybrid_weight_extremes_equal_its_parts():
    vecs = np.random.default_rng(0).normal(size=(5, 4))
    ease = EASE(ITEMS, 1.0)
    h0 = Hybrid(ITEMS, Content(ITEMS, vecs), ease, weight=0.0).fit(TRAIN)
    h1 = Hybrid(ITEMS, Content(ITEMS, vecs), EASE(ITEMS, 1.0), weight=1.0).fit(TRAIN)
    users = ["u1", "u2"]
    z = lambda s: (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(h0.scores(users), z(ease.scores(users)), atol=1e-5)
    np.testing.assert_allclose(h1.scores(users), z(h1.content.scores(users)), atol=1e-5)
    with pytest.raises(ValueError, match=r"weight must be in \[0, 1\]"):
        Hybrid(ITEMS, Content(ITEMS, vecs), ease, weight=2)


def test_random_is_seeded():
    r = RandomRec(ITEMS, seed=3)
    assert np.array_equal(r.scores(["a", "b"]), RandomRec(ITEMS, seed=3).scores(["a", "b"]))


def test_segments_buckets_and_ci():
    train = log([("h", "a")] * 20 + [("t", "b")] * 2 + [("m", "c")] * 6)
    seg = user_segments(train, ["h", "t", "m", "new"], thresholds=(5, 20))
    assert seg.to_dict() == {"h": "head", "t": "tail", "m": "torso", "new": "cold"}
    b = item_buckets(train, ITEMS, head_share=0.2)
    assert list(b) == ["head", "tail", "tail", "unseen", "unseen"]
    lo, hi = bootstrap_ci(np.r_[np.zeros(50), np.ones(50)], n_boot=500, seed=0)
    assert lo < 0.5 < hi and hi - lo < 0.3
    with pytest.raises(ValueError, match="thresholds must satisfy"):
        user_segments(train, ["h"], thresholds=(5, 5))


def test_evaluate_tables_on_a_toy_split():
    train = TRAIN
    test = log([("u1", "c"), ("u3", "b"), ("u9", "a")], day0=20)
    ev = evaluate({"pop": Popularity(ITEMS), "rand": RandomRec(ITEMS)}, train, test, ITEMS, k=2,
                  item_vecs=np.eye(5))
    pu = ev.per_user
    assert set(pu["method"]) == {"pop", "rand"} and len(pu) == 6
    pop = pu[pu["method"] == "pop"].set_index("user")
    # pop ranks a, b, c, d, e; u1 saw a, b -> [c, d]: hit; u3 saw a -> [b, c]: hit; u9 new -> [a, b]: hit
    assert pop["hit_rate"].tolist() == [1.0, 1.0, 1.0]
    assert pop.loc["u9", "segment"] == "cold"
    t = ev.table(["recall", "ndcg"])
    assert t.loc["pop", "recall"] == 1.0 and t.loc["pop", "recall lo"] <= 1.0
    assert "cold (n=1)" in ev.by_segment("recall").columns
    assert ev.beyond.loc["pop", "coverage"] == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="methods is empty"):
        evaluate({}, train, test, ITEMS)


def test_tune_picks_the_best_value():
    test = log([("u1", "c"), ("u3", "b")], day0=20)
    table, best = tune(lambda lam: EASE(ITEMS, lam), [0.1, 10.0], TRAIN, test, ITEMS, k=1, metric="recall")
    assert len(table) == 2 and best in (0.1, 10.0)
    assert table.loc[table["value"] == best, "recall"].iloc[0] == table["recall"].max()


def test_top_k_scores_and_threshold_and_ann():
    s = np.array([[0.1, 0.9, 0.5, 0.3], [0.4, 0.2, 0.8, 0.6]], dtype=np.float32)
    v, i = top_k_scores(s, 2, exclude=[[1], []])
    assert i.tolist() == [[2, 3], [2, 3]]
    v, i = top_k_scores(s, 3, candidates=[0, 1])
    assert i.shape == (2, 2) and i[0].tolist() == [1, 0]
    with pytest.raises(ValueError, match="NaN"):
        top_k_scores(np.array([[np.nan, 1.0]]), 1)
    q = np.array([[1.0, 0.0]])
    items = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert above_threshold(q, items, 0.5)[0].tolist() == [0, 1]
    rng = np.random.default_rng(0)
    iv, qv = rng.normal(size=(500, 16)), rng.normal(size=(20, 16))
    _, exact = top_k(qv, iv, 10)
    _, approx = ann_index(iv, ef_search=128).search(qv, 10)
    assert recall_vs_exact(approx, exact) > 0.9


def test_blend_profiles_moves_from_description_to_history():
    h, d = np.array([[1.0, 0.0]] * 3), np.array([[0.0, 2.0]] * 3)
    b = blend_profiles(h, d, [0, 5, 1000], k=5)
    np.testing.assert_allclose(b[0], [0, 1])
    np.testing.assert_allclose(b[1], [0.5, 0.5])
    assert b[2, 0] > 0.99


def test_text_only_query_ranks_like_text(shop):
    rng = np.random.default_rng(0)
    t, i = rng.normal(size=(50, 8)), rng.normal(size=(50, 12))
    fused = fuse_text_image(t, i, 0.6)
    q = rng.normal(size=(3, 8))
    assert np.array_equal(top_k(text_only_query(q, 12), fused, 5)[1], top_k(q, t, 5)[1])


def test_threshold_counts_and_cold_start_on_the_shop(shop):
    items = shop.items
    rng = np.random.default_rng(0)
    sub = items[C.SUBCATEGORY].astype("category").cat.codes.to_numpy()
    vecs = np.eye(sub.max() + 1)[sub] + 0.05 * rng.normal(size=(len(items), sub.max() + 1))  # "perfect" text
    counts = threshold_counts(vecs[:5], vecs, 0.5)
    assert (counts == pd.Series(items[C.SUBCATEGORY].map(items[C.SUBCATEGORY].value_counts()).iloc[:5].to_numpy())).all()
    desc = {u: vecs[0] for u in shop.users[C.USER]}
    curve = new_user_curve(shop.interactions, items, vecs, desc, ns=(0, 3), k=10, min_history=40)
    assert set(curve["method"]) == {"popularity", "description only", "history only", "blend"}
    assert curve[(curve["n"] == 0) & (curve["method"] == "history only")].empty
    warm = sorted(shop.interactions[C.USER].unique())[:100]
    from course_lib.profiles import history_profiles, item_index

    prof, _ = history_profiles(shop.interactions, vecs, item_index(items), users=warm)
    t = cold_item_table(warm, {"oracle": (prof, vecs)}, items, shop.cold_items(), shop.truth, shop.user_truth, k=5)
    assert t.loc["oracle", "precision@5 (true interest)"] > 0.8  # the profile's subcategory mix points to true interests


def test_headlines_state_the_table():
    from course_lib.evaluate import Evaluation, headlines

    table = pd.DataFrame({"ndcg": [0.02, 0.10, 0.09], "ndcg lo": [0.01, 0.08, 0.085], "ndcg hi": [0.03, 0.12, 0.095]},
                         index=["popularity", "EASE", "content"])
    beyond = pd.DataFrame({"coverage": [0.02, 0.4, 0.9]}, index=table.index)
    bucket = pd.DataFrame({"recall@10 on unseen items": [0.0, 0.0, 0.1]}, index=table.index)
    lines = headlines(table, Evaluation(pd.DataFrame(), beyond, bucket, 10))
    assert lines[0].startswith("Best ndcg@10: **EASE**") and "tied with content" in lines[0]
    assert lines[1] == "Clearly above popularity (intervals apart): EASE, content."
    assert "**content** (90% of items)" in lines[2] and lines[3].endswith("content.")
