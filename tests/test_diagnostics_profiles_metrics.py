import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.diagnostics import keyword_vs_semantic, neighbour_precision, pair_cosines
from course_lib.metrics import precision_at_k, recall_at_k
from course_lib.catalogue import Catalogue
from course_lib.profiles import history_profiles, seen_items


def test_neighbour_precision_by_hand():
    # two tight clusters on the axes, labels match clusters except the last point
    v = np.array([[1, 0.01], [1, 0.02], [1, 0.1], [0.01, 1], [0.02, 1], [0.1, 1]])
    labels = ["a", "a", "a", "b", "b", "a"]
    # k=1: nearest neighbours 1,0,1,4,3,4; only item 5 (label a) has a neighbour of another label: 5/6
    assert neighbour_precision(v, labels, k=1) == pytest.approx(5 / 6)
    # k=2: item 2 -> {1,0} ok; item 5 -> {4,3} both b: 0; item 3 -> {4,5}: 1/2; item 4 -> {3,5}: 1/2
    assert neighbour_precision(v, labels, k=2) == pytest.approx((1 + 1 + 1 + 0.5 + 0.5 + 0) / 6)
    with pytest.raises(ValueError, match=r"k must be in \[1, 5\]"):
        neighbour_precision(v, labels, k=6)


def test_pair_cosines_tags_pairs():
    v = np.array([[1.0, 0], [1.0, 0], [0, 1.0]])
    df = pair_cosines(v, ["x", "x", "y"], n_pairs=200, seed=1)
    assert np.allclose(df.loc[df["pair"] == "same", "cosine"], 1)
    assert np.allclose(df.loc[df["pair"] == "different", "cosine"], 0)


def test_keyword_vs_semantic_counts(tiny_bert):
    from course_lib.encode import TextEncoder

    texts = ["red shoes", "blue shoes", "the camera", "a book"]
    t = keyword_vs_semantic(TextEncoder(tiny_bert, cache=False), texts, ["shoe", "shoe", "cam", "book"],
                            {"shoe": "shoes", "cam": "camera", "book": "tent"})
    assert t.loc["shoe", "keyword recall"] == 1 and t.loc["book", "keyword recall"] == 0
    assert t.loc["shoe", "items"] == 2
    assert t["semantic R-precision"].between(0, 1).all()
    # keyword precision counts the matched texts: "shoes" matches both shoe texts, "camera" the one camera text
    assert t.loc["shoe", "keyword precision"] == 1 and t.loc["shoe", "keyword matches"] == 2
    assert np.isnan(t.loc["book", "keyword precision"]) and t.loc["book", "keyword matches"] == 0


def log(rows):
    return pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.TIMESTAMP, C.WEIGHT]).assign(
        **{C.TIMESTAMP: lambda d: pd.to_datetime(d[C.TIMESTAMP])})


def test_history_profiles_by_hand():
    items = pd.DataFrame({C.ITEM: ["a", "b", "c"]})
    vecs = np.array([[1.0, 0], [0, 1.0], [1.0, 1.0]])
    inter = log([("u", "a", "2026-01-01", 1.0), ("u", "b", "2026-01-11", 3.0), ("v", "c", "2026-01-05", 1.0)])
    cat = Catalogue.from_items(items, vecs)
    p, has = history_profiles(inter, cat, users=["u", "v", "w"])
    np.testing.assert_allclose(p[0], [0.25, 0.75])  # weights 1 and 3
    np.testing.assert_allclose(p[1], [1, 1])
    assert has.tolist() == [True, True, False] and np.all(p[2] == 0)
    # half-life 10 days, now = last event: a is 10 days old and counts half
    p, _ = history_profiles(inter, cat, users=["u"], half_life_days=10, use_weights=False)
    np.testing.assert_allclose(p[0], [0.5 / 1.5, 1 / 1.5], rtol=1e-6)
    assert seen_items(inter, cat, ["u", "w"]) == [[0, 1], []]
    with pytest.raises(ValueError, match="half_life_days must be > 0"):
        history_profiles(inter, cat, half_life_days=0)
    with pytest.raises(ValueError, match="users has a repeated entry 'u'"):
        history_profiles(inter, cat, users=["u", "u"])


def test_precision_recall_by_hand_and_against_sklearn():
    recs = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 1, 2, 3]]
    rel = [{1, 3, 10}, {42}, set()]
    p = precision_at_k(recs, rel, 4)
    r = recall_at_k(recs, rel, 4)
    assert p.value == pytest.approx((2 / 4 + 0) / 2) and p.n_excluded == 1 and p.n_users == 2
    assert r.value == pytest.approx((2 / 3 + 0) / 2)
    # the article's recall divides by the catalogue: for a 1,000-item shop user 1 would get 2/1000, not 2/3
    from sklearn.metrics import recall_score

    y_true = [1 if i in rel[0] else 0 for i in range(11)]
    y_pred = [1 if i in recs[0][:4] else 0 for i in range(11)]
    assert recall_at_k(recs[:1], rel[:1], 4).value == pytest.approx(recall_score(y_true, y_pred))


def test_metrics_refuse_to_average_nothing():
    with pytest.raises(ValueError, match="none of the 2 users has a relevant item"):
        recall_at_k([[1], [2]], [set(), set()], 1)
    with pytest.raises(ValueError, match="one per user"):
        recall_at_k([[1]], [{1}, {2}], 1)
