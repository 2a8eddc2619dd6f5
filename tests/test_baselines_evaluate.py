"""The recommender protocol and its fallbacks, EASE against its formula, the evaluation harness (tasks, groups, paired
intervals, verdicts) and cold start, on hand-made logs whose answers can be worked out on paper."""
import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.baselines import EASE, Content, Hybrid, ItemKNN, Popularity, RandomRec, interaction_matrix
from course_lib.catalogue import Catalogue
from course_lib.coldstart import cold_item_table, new_user_curve, threshold_counts
from course_lib.evaluate import (Evaluation, article_verdicts, bootstrap_ci, choose_fallback, evaluate, headlines,
                                 item_buckets, paired_ci, strategy_table, tune)
from course_lib.fuse import fuse_text_image, text_only_query
from course_lib.profiles import blend_profiles
from course_lib.rank import above_threshold, ann_index, recall_vs_exact, top_k, top_k_scores
from course_lib.segments import user_segments

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
    assert p.score(["u1", "new"]).shape == (2, 5)
    assert p.recommend(["u1", "new"], 2).tolist() == [[2, 3], [0, 1]]  # u1 saw a, b; ties d/e by id


def test_protocol_fitted_state_and_errors():
    e = EASE(ITEMS)
    with pytest.raises(RuntimeError, match="not fitted yet"):
        e.score(["u1"])
    assert e.fit(TRAIN) is e and hasattr(e, "B_") and hasattr(e, "popularity_")
    assert e.seen(["u2", "ghost"]) == [[0, 1, 2], []]
    with pytest.raises(ValueError, match=r"fallback must be one of \('popularity', None\)"):
        EASE(ITEMS, fallback="description")
    with pytest.raises(ValueError, match=r"train item_id: 1 id\(s\) not in the catalogue, e.g. \['zz'\]"):
        EASE(ITEMS).fit(log([("u", "zz")]))
    with pytest.raises(ValueError, match="lam must be > 0"):
        EASE(ITEMS, lam=0)
    with pytest.raises(TypeError, match="neighbours must be an integer, got 2.5"):
        ItemKNN(ITEMS, neighbours=2.5)


def test_item_knn_recommends_the_co_occurring_item_and_new_users_get_popularity():
    knn = ItemKNN(ITEMS, neighbours=2, shrink=0).fit(TRAIN)
    s = knn.score(["u1"])[0]
    assert np.argmax(np.where([1, 1, 0, 0, 0], -np.inf, s)) == 2  # u1 saw a, b; c co-occurs with both in u2
    np.testing.assert_array_equal(knn.score(["stranger"])[0], knn.popularity_)  # declared fallback
    silent = ItemKNN(ITEMS, fallback=None).fit(TRAIN)
    assert silent.score(["stranger"]).sum() == 0


def test_ease_matches_its_closed_form():
    lam = 0.5
    e = EASE(ITEMS, lam=lam).fit(TRAIN)
    X = interaction_matrix(TRAIN, ITEMS, sorted(TRAIN[C.USER].unique())).toarray()
    P = np.linalg.inv(X.T @ X + lam * np.eye(5))
    B = np.eye(5) - P / np.diag(P)
    np.testing.assert_allclose(np.diag(e.B_), 0, atol=1e-6)
    np.testing.assert_allclose(e.B_, B - np.diag(np.diag(B)), atol=1e-5)
    np.testing.assert_allclose(e.score(["u1"])[0], X[0] @ e.B_, atol=1e-5)


def test_content_fallbacks_description_then_popularity():
    vecs = np.eye(5, dtype=np.float32)
    desc = {"newbie": np.array([0, 0, 0, 1, 0], dtype=np.float32)}
    c = Content(ITEMS, vecs, user_vecs=desc).fit(TRAIN)
    _, source = c.profiles(["u1", "newbie", "ghost"])
    assert list(source) == ["history", "description", "none"]
    s = c.score(["u1", "newbie", "ghost"])
    assert s[0].argmax() in (0, 1) and s[1].argmax() == 3 and s[2].argmax() == 0  # ghost: most popular
    p = Content(ITEMS, vecs, user_vecs=desc, fallback="popularity").fit(TRAIN)
    assert p.score(["newbie"])[0].argmax() == 0  # the description is ignored when popularity is declared
    with pytest.raises(ValueError, match="text_only_query"):
        Content(ITEMS, np.eye(5), user_vecs={"x": np.ones(3)})
    with pytest.raises(ValueError, match="item vectors has NaN"):
        Content(ITEMS, np.full((5, 2), np.nan))


def test_hybrid_weight_extremes_equal_its_parts():
    vecs = np.random.default_rng(0).normal(size=(5, 4))
    ease = EASE(ITEMS, 1.0)
    h0 = Hybrid(ITEMS, Content(ITEMS, vecs), ease, weight=0.0).fit(TRAIN)
    h1 = Hybrid(ITEMS, Content(ITEMS, vecs), EASE(ITEMS, 1.0), weight=1.0).fit(TRAIN)
    users = ["u1", "u2"]
    z = lambda s: (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(h0.score(users), z(ease.score(users)), atol=1e-5)
    np.testing.assert_allclose(h1.score(users), z(h1.content.score(users)), atol=1e-5)
    assert "popularity" in h0.fallback_label
    with pytest.raises(ValueError, match=r"weight must be <= 1, got 2"):
        Hybrid(ITEMS, Content(ITEMS, vecs), ease, weight=2)


def test_random_is_seeded():
    r = RandomRec(ITEMS, seed=3).fit(TRAIN)
    assert np.array_equal(r.score(["a", "b"]), RandomRec(ITEMS, seed=3).fit(TRAIN).score(["a", "b"]))


def test_segments_buckets_and_ci():
    train = log([("h", "a")] * 20 + [("t", "b")] * 2 + [("m", "c")] * 6)
    seg = user_segments(train, ["h", "t", "m", "new"], thresholds=(5, 20))
    assert seg.to_dict() == {"h": "head", "t": "tail", "m": "torso", "new": "cold"}
    b = item_buckets(train, ITEMS, popular_share=0.2)
    assert list(b) == ["popular", "long-tail", "long-tail", "unseen", "unseen"]
    lo, hi = bootstrap_ci(np.r_[np.zeros(50), np.ones(50)], n_boot=500, seed=0)
    assert lo < 0.5 < hi and hi - lo < 0.3
    with pytest.raises(ValueError, match="thresholds must satisfy"):
        user_segments(train, ["h"], thresholds=(5, 5))
    assert np.isnan(bootstrap_ci([0.3])).all()  # one user: no interval, never a fake one
    with pytest.raises(ValueError, match="NaN or inf"):
        bootstrap_ci([0.1, np.nan])


def test_bootstrap_ci_agrees_with_a_numpy_bootstrap():
    rng = np.random.default_rng(1)
    v = rng.exponential(size=300)
    lo, hi = bootstrap_ci(v, n_boot=4000, seed=0)
    means = v[np.random.default_rng(5).integers(0, len(v), (20000, len(v)))].mean(1)
    ref = np.quantile(means, [0.025, 0.975])
    assert abs(lo - ref[0]) < 0.01 and abs(hi - ref[1]) < 0.01


def test_paired_interval_sees_what_overlapping_intervals_hide():
    """Users differ a lot from each other; method a beats b on almost every user by a little."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 200)
    a, b = base + 0.02 + rng.normal(0, 0.01, 200), base
    lo_a, hi_a = bootstrap_ci(a, seed=0)
    lo_b, hi_b = bootstrap_ci(b, seed=0)
    assert lo_a < hi_b  # the unpaired intervals overlap: "tied" by the overlap rule
    d, lo, hi = paired_ci(a, b, seed=0)
    assert d == pytest.approx(np.mean(a - b)) and lo > 0  # paired: a is clearly better
    d, lo, hi = paired_ci(b + 0.1, b)
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    with pytest.raises(ValueError, match="same users"):
        paired_ci([1, 2], [1, 2, 3])


TEST = log([("u1", "c"), ("u1", "a"), ("u3", "b"), ("u3", "a"), ("u9", "a"), ("u2", "a")], day0=20)


def test_evaluate_discovery_is_the_default_and_counts_excluded_users():
    ev = evaluate({"pop": Popularity(ITEMS), "rand": RandomRec(ITEMS)}, TRAIN, TEST, ITEMS, k=2,
                  diversity_vecs=np.eye(5))
    pu = ev.per_user
    # u2's only test item (a) is a repeat: excluded under discovery; u1 keeps c, u3 keeps b, u9 (new) keeps a
    assert ev.users == {"test users": 4, "evaluated": 3, "excluded": 1, "returning": 2, "new": 1}
    pop = pu[pu["method"] == "pop"].set_index("user")
    # pop ranks a, b, c, d, e; u1 saw a, b -> [c, d]: hit; u3 saw a -> [b, c]: hit; u9 new -> [a, b]: hit
    assert pop["hit_rate"].tolist() == [1.0, 1.0, 1.0]
    assert pop.loc["u9", "group"] == "new" and pop.loc["u9", "segment"] == "cold"
    t = ev.table(["recall", "ndcg"])
    assert t.loc["pop", "recall"] == 1.0 and t.loc["pop", "users"] == 3
    assert ev.table(["recall"], group="new").loc["pop", "users"] == 1
    assert list(ev.by_group("recall").columns) == ["all (n=3)", "returning (n=2)", "new (n=1)"]
    assert "cold (n=1)" in ev.by_segment("recall").columns
    assert ev.beyond.loc["pop", "coverage"] == pytest.approx(4 / 5)  # {c, d} ∪ {b, c} ∪ {a, b}
    with pytest.raises(ValueError, match="non-empty dict"):
        evaluate({}, TRAIN, TEST, ITEMS)
    with pytest.raises(ValueError, match=r"task must be one of"):
        evaluate({"pop": Popularity(ITEMS)}, TRAIN, TEST, ITEMS, k=2, task="recall")
    with pytest.raises(ValueError, match="larger than the catalogue"):
        evaluate({"pop": Popularity(ITEMS)}, TRAIN, TEST, ITEMS, k=6)


def test_three_tasks_side_by_side():
    tasks = {t: evaluate({"pop": Popularity(ITEMS)}, TRAIN, TEST, ITEMS, k=2, task=t, with_auc=False)
             for t in ("discovery", "repeat-aware", "masked-but-counted")}
    # masked-but-counted: u2's test item a is hidden from u2's list but still counts: an unreachable zero
    m = tasks["masked-but-counted"]
    assert m.users["evaluated"] == 4 and m.unreachable_share == pytest.approx(3 / 6)
    assert m.per_user.set_index("user").loc["u2", "recall"] == 0
    # repeat-aware: nothing hidden, so popularity's [a, b] hits u2's repeat
    r = tasks["repeat-aware"].per_user.set_index("user")
    assert r.loc["u2", "recall"] == 1
    assert tasks["discovery"].per_user["recall"].min() > 0


def test_identical_lists_are_named_as_such():
    ev = evaluate({"popularity": Popularity(ITEMS), "EASE": EASE(ITEMS), "kNN": ItemKNN(ITEMS)}, TRAIN, TEST, ITEMS,
                  k=2, with_auc=False)
    assert ev.identical("popularity", group="new") == ["EASE", "kNN"]  # all three fall back to popularity
    line = [x for x in headlines(ev, n_boot=200) if "for new users" in x][0]
    assert "EASE, kNN score exactly the same" in line and "too few" not in line  # nothing left to be tied with


def test_a_method_without_fallback_is_refused_not_ranked_by_tie_order():
    with pytest.raises(ValueError, match=r"'EASE' gives 1 of 3 users a constant score row .*1 of them new users.*"
                                         "declares no fallback"):
        evaluate({"EASE": EASE(ITEMS, fallback=None)}, TRAIN, TEST, ITEMS, k=2)
    ev = evaluate({"EASE": EASE(ITEMS)}, TRAIN, TEST, ITEMS, k=2)
    assert ev.fallbacks["EASE"] == "popularity"
    assert ev.lists["EASE"][1][ev.lists["EASE"][0].index("u9")].tolist() == [0, 1]  # the popular list


def test_tune_and_choose_fallback():
    test = log([("u1", "c"), ("u3", "b")], day0=20)
    table, best = tune(lambda lam: EASE(ITEMS, lam), [0.1, 10.0], TRAIN, test, ITEMS, k=1, metric="recall")
    assert len(table) == 2 and best in (0.1, 10.0)
    assert table.loc[table["value"] == best, "recall"].iloc[0] == table["recall"].max()
    vecs = np.eye(5, dtype=np.float32)
    desc = {"u9": vecs[4]}  # the new user describes item e, but actually wants a (the popular item)
    make = lambda f: Content(ITEMS, vecs, user_vecs=desc, fallback=f)  # noqa: E731
    table, best = choose_fallback(make, ["description", "popularity"], TRAIN, TEST, ITEMS, k=1)
    assert best == "popularity" and table["users"].tolist() == [1, 1]
    assert choose_fallback(make, ["description", "popularity"], TRAIN, test, ITEMS, k=1) == (None, "popularity")


def _toy_evaluation():
    rng = np.random.default_rng(0)
    n = 120
    users = [f"u{i}" for i in range(n)]
    seg = np.array(["tail"] * 40 + ["head"] * 60 + ["cold"] * 20)
    base = rng.uniform(0, 0.3, n)
    vals = {"popularity": base, "EASE": base + np.where(seg == "head", 0.2, 0.0),
            "content": base + np.where(seg == "tail", 0.1, -0.05) + np.where(seg == "cold", 0.15, 0)}
    rows = []
    for m, v in vals.items():
        rows.append(pd.DataFrame({"method": m, "user": users, "group": np.where(seg == "cold", "new", "returning"),
                                  "segment": seg, "ndcg": np.clip(v, 0, 1), "recall": np.clip(v, 0, 1),
                                  "new-item recall": np.where(np.arange(n) % 3 == 0, np.where(m == "content", 0.2, 0.0),
                                                              np.nan)}))
    beyond = pd.DataFrame({"coverage": [0.02, 0.4, 0.9]}, index=list(vals))
    bucket = pd.DataFrame({"recall@10 on unseen items": [0.0, 0.0, 0.1]}, index=list(vals))
    return Evaluation(pd.concat(rows, ignore_index=True), beyond, bucket, 10,
                      users={"test users": n, "evaluated": n, "excluded": 0, "returning": 100, "new": 20})


def test_headlines_state_paired_verdicts():
    ev = _toy_evaluation()
    lines = headlines(ev, n_boot=300)
    assert lines[0].startswith("Task: **discovery**, 120 test users (100 returning, 20 new).")
    best_all = ev.best("ndcg")
    assert lines[1].startswith(f"Best ndcg@10 for all users (120): **{best_all}**")
    assert any(line.startswith("Best ndcg@10 for new users (20): **content**") for line in lines)
    assert any(line.startswith("Above popularity on ndcg@10 (paired interval above 0): EASE") for line in lines)
    assert any(line.startswith("Above popularity on recall@10") for line in lines)
    assert lines[-1].endswith("content.") and any("**content** (90% of items)" in line for line in lines)


def test_article_verdicts_and_strategy_are_computed():
    ev = _toy_evaluation()
    v = article_verdicts(ev, content="content", collaborative="EASE", n_boot=300).set_index("claim (中文)")
    assert v.loc["覆盖长尾用户", "verdict"] == "supported"  # content +0.1 on tail users
    assert v.loc["新物品推荐", "verdict"] == "supported"
    assert v.loc["多模态融合", "verdict"] == "not run"  # no fused method in this run: not a data reason
    assert v.loc["冷启动用户", "verdict"] == "too few users to judge (20)" or v.loc["冷启动用户", "verdict"] == "supported"
    assert v.loc["大模型辅助推荐", "verdict"] == "refuted"  # content loses to EASE overall in this toy
    assert "40 users" in v.loc["覆盖长尾用户", "evidence"] and "difference +0.1000" in v.loc["覆盖长尾用户", "evidence"]
    s = strategy_table(ev, n_boot=300)
    assert s.loc["head", "best method"] == "EASE" and s.loc["head", "reading"] == "clear winner"
    assert s.loc["tail", "best method"] == "content" and s.loc["cold", "best method"] == "content"
    assert "same lists" not in s.loc["head", "best method"]
    p = ev.compare("EASE", "popularity", segment="tail")
    assert p.verdict == "tied" and p.diff == 0 and p.n == 40


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
    with pytest.raises(ValueError, match="n_interactions has NaN"):
        blend_profiles(h, d, [0, np.nan, 1], k=5)


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
    cat = Catalogue.from_items(items, vecs)
    desc = {u: vecs[0] for u in shop.users[C.USER]}
    curve = new_user_curve(shop.interactions, cat, desc, ns=(0, 3), k=10, min_history=40)
    assert set(curve["method"]) == {"popularity", "description only", "history only", "blend"}
    assert curve[(curve["n"] == 0) & (curve["method"] == "history only")].empty
    # the same relevant items at every n: popularity cannot dip because of hidden repeats
    assert curve["users"].nunique() == 1
    warm = sorted(shop.interactions[C.USER].unique())[:100]
    from course_lib.profiles import history_profiles

    prof, _ = history_profiles(shop.interactions, cat, users=warm)
    t = cold_item_table(warm, {"oracle": (prof, vecs)}, items, shop.cold_items(), shop.truth, shop.user_truth, k=5)
    assert t.loc["oracle", "precision@5 (true interest)"] > 0.8  # the profile's subcategory mix points to true interests


class _Oracle:
    """Scores each user's test items 1 and everything else 0: the best any method could do."""

    fallback = "oracle"

    def __init__(self, test, catalogue):
        self.test, self.cat = test, catalogue

    def fit(self, train):
        return self

    def score(self, users):
        s = np.zeros((len(users), len(self.cat)), dtype=np.float32)
        rows = {u: r for r, u in enumerate(users)}
        for u, i in zip(self.test[C.USER], self.test[C.ITEM]):
            if u in rows:
                s[rows[u], self.cat.row[i]] = 1.0 + (hash(i) % 7) / 100  # distinct, so no tie decides
        return s


def test_on_the_shop_no_relevant_item_is_unreachable_under_discovery(shop):
    from course_lib.data import make_split

    cat = Catalogue.from_items(shop.items)
    split = make_split(shop.interactions, "global", 0.2)
    oracle = {"oracle": _Oracle(split.test, cat)}
    k = int(split.test.groupby(C.USER)[C.ITEM].nunique().max())  # long enough for every user's relevant items
    disc = evaluate(oracle, split.train, split.test, cat, k, with_auc=False)
    assert disc.per_user["recall"].min() == 1.0  # every relevant item can be reached by some list
    masked = evaluate(oracle, split.train, split.test, cat, k, task="masked-but-counted", with_auc=False)
    assert masked.per_user["recall"].min() == 0.0 and masked.unreachable_share > 0.1  # the mistake: repeats unreachable
    assert disc.users["excluded"] == masked.users["evaluated"] - disc.users["evaluated"] > 0
