"""Interest tiering on hand-built users whose right answer is obvious, plus edge cases and retrieval."""
import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.tiers import (MultiInterest, TierConfig, allocate_slots, discover, discover_all, interest_coverage,
                              multi_interest_lists, name_interests, recovery, tfidf_terms, with_settings)
from course_lib.catalogue import Catalogue
from course_lib.segments import user_segments

# three well-separated "topics" of 6 items each: rows 0-5 near e0, 6-11 near e1, 12-17 near e2
rng = np.random.default_rng(0)
VECS = np.repeat(np.eye(3), 6, axis=0) * 3 + 0.05 * rng.normal(size=(18, 3))
ITEMS = pd.DataFrame({C.ITEM: [f"i{k}" for k in range(18)], C.SUBCATEGORY: ["A"] * 6 + ["B"] * 6 + ["C"] * 6})
INDEX = {f"i{k}": k for k in range(18)}
CAT = Catalogue.from_items(ITEMS, VECS)
START = pd.Timestamp("2026-01-01")


def events(spec):
    """spec: list of (item row, day)."""
    return pd.DataFrame({C.USER: "u", C.ITEM: [f"i{i}" for i, _ in spec],
                         C.TIMESTAMP: [START + pd.Timedelta(days=d) for _, d in spec], C.WEIGHT: 1.0})


def story():
    """Topic A all along (core), topic C only in the first month (fading), topic B only in the last month (emerging)."""
    a = [(k % 3, d) for k, d in enumerate(range(0, 180, 9))]  # the user sees items 0-2, 6-8, 12-14 only
    c = [(12 + k % 3, d) for k, d in enumerate(range(0, 30, 5))]
    b = [(6 + k % 3, d) for k, d in enumerate(range(150, 180, 4))]
    return events(a + b + c)


def test_the_obvious_story():
    ui = discover(story(), CAT, TierConfig())
    by_topic = {ITEMS[C.SUBCATEGORY].iloc[it.medoid]: it.tier for it in ui.interests}
    assert by_topic == {"A": "core", "B": "emerging", "C": "fading"}
    assert ui.interests[0].tier == "core"  # ordered core, secondary, emerging, fading, peripheral
    assert np.isclose(sum(it.share for it in ui.interests), 1)
    assert len(ui.labels) == len(story())
    a = [it for it in ui.interests if it.tier == "core"][0]
    assert a.trend == pytest.approx((a.members.size and 1.0), rel=0.6)  # steady interest: trend near 1


def test_importance_is_time_decayed():
    h = events([(0, 0), (6, 90)])  # two singletons, one old, one at the reference time
    ui = discover(h, CAT, TierConfig(half_life_days=90, min_events=1))
    imp = {ITEMS[C.SUBCATEGORY].iloc[it.medoid]: it.importance for it in ui.interests}
    assert imp["B"] == pytest.approx(1.0) and imp["A"] == pytest.approx(0.5)


@pytest.mark.parametrize("spec,expected", [
    ([], []),
    ([(0, 5)], ["peripheral"]),
    ([(0, 5), (1, 9)], ["core"]),
    ([(0, 5), (0, 5), (0, 5)], ["core"]),  # the same item, same time, repeated
])
def test_tiny_users(spec, expected):
    ui = discover(events(spec), CAT, TierConfig())
    assert [it.tier for it in ui.interests] == expected
    assert all(np.isfinite(it.share) and np.isfinite(it.importance) for it in ui.interests)


def test_all_events_at_one_time_have_no_trend():
    h = events([(0, 3), (1, 3), (6, 3), (7, 3), (12, 3)])
    ui = discover(h, CAT, TierConfig())
    assert all(np.isnan(it.trend) for it in ui.interests)
    assert {it.tier for it in ui.interests} <= {"core", "secondary", "peripheral"}
    assert sum(it.tier == "core" for it in ui.interests) == 1


def test_unknown_item_is_reported():
    h = events([(0, 1)])
    h.loc[0, C.ITEM] = "nope"
    with pytest.raises(ValueError, match="not in the catalogue.*'nope'"):
        discover(h, CAT)


def test_kmeans_option_and_bad_options():
    ui = discover(story(), CAT, TierConfig(clustering="kmeans"))
    assert 2 <= len(ui.interests) <= 8
    with pytest.raises(ValueError, match=r"clustering must be one of \('ward', 'kmeans'\)"):
        TierConfig(clustering="dbscan")
    with pytest.raises(ValueError, match="half_life_days must be > 0"):
        with_settings(TierConfig(), half_life_days=0)


def test_names_come_from_the_nearest_label():
    class Enc:  # encodes a label word to the topic axis it names
        def encode(self, words):
            return np.array([[1.0 if w == t else 0.0 for t in ("alpha", "beta", "gamma")] for w in words])

    tiered = {"u": discover(story(), CAT)}
    name_interests(tiered, {"Topic A": "alpha", "Topic B": "beta", "Topic C": "gamma"}, Enc())
    names = {ITEMS[C.SUBCATEGORY].iloc[it.medoid]: it.name for it in tiered["u"].interests}
    assert names == {"A": "Topic A", "B": "Topic B", "C": "Topic C"}
    with pytest.raises(ValueError, match="label_words is empty"):
        name_interests(tiered, {}, Enc())


def test_tfidf_terms():
    assert tfidf_terms(["red running shoes", "running shoes for trails", "fast running"], top=1) == ["running"]


def test_slots_follow_importance_with_an_emerging_floor():
    assert allocate_slots([0.7, 0.3], ["core", "secondary"], 10).tolist() == [7, 3]
    assert allocate_slots([0.9, 0.1], ["core", "emerging"], 10, emerging_floor=2).tolist() == [8, 2]
    assert allocate_slots([0.5, 0.5], ["core", "peripheral"], 4).tolist() == [4, 0]
    assert allocate_slots([1.0], ["peripheral"], 3).tolist() == [3]
    assert allocate_slots([0.6, 0.3, 0.1], ["core", "secondary", "fading"], 7).sum() == 7


def test_multi_interest_lists_follow_the_slots_without_duplicates():
    tiered = {"u": discover(story(), CAT)}
    seen = [list(story()[C.ITEM].map(INDEX).unique())]
    lists = multi_interest_lists(tiered, ["u"], CAT, 4, seen=seen)
    row = lists[0]
    assert len(set(row)) == 4 and -1 not in row and not set(row) & set(seen[0])
    topics = [ITEMS[C.SUBCATEGORY].iloc[i] for i in row]
    # the core takes most slots; the emerging interest gets its floor of 2 even with a smaller importance share
    assert topics.count("B") == 2 and topics.count("A") >= 1
    tiny = multi_interest_lists(tiered, ["u", "nobody"], CAT, 3, seen=[list(range(17)), []])
    assert tiny[0].tolist() == [17, -1, -1] and tiny[1].tolist() == [-1, -1, -1]


def test_multi_interest_recommender_ranks_its_list_first():
    log = story()
    m = MultiInterest(ITEMS, VECS, k=4).fit(log)
    s = m.score(["u"])[0]
    expected = multi_interest_lists(m.tiered_, ["u"], m.catalogue, 4, [list(log[C.ITEM].map(INDEX).unique())])[0]
    assert np.argsort(-s)[:4].tolist() == expected.tolist()
    assert np.isfinite(s).all()


def test_segments():
    train = pd.DataFrame({C.USER: ["h"] * 20 + ["t"] * 2 + ["m"] * 6})
    assert user_segments(train, ["h", "t", "m", "x"]).to_dict() == {"h": "head", "t": "tail", "m": "torso", "x": "cold"}


def test_recovery_and_coverage_on_the_story():
    tiered = discover_all(story(), CAT)
    truth = pd.DataFrame({C.USER: ["u"] * 3, C.INTEREST: ["A", "B", "C"], C.TIER: ["core", "emerging", "fading"]})
    r = recovery(tiered, truth, ITEMS[C.SUBCATEGORY].to_numpy())
    s = r["summary"].loc["all"]
    assert s["core found as core"] == 1 and s["emerging recall"] == 1 and s["fading precision"] == 1
    assert r["confusion"].loc["emerging", "emerging"] == 1
    lists = np.array([[0, 6, -1]])
    assert interest_coverage(lists, ["u"], truth, ITEMS[C.SUBCATEGORY].to_numpy()) == pytest.approx(2 / 3)


def test_shop_recovery_beats_chance(shop):
    """On real-sized data: the discovered core matches the true core far more often than a random interest would."""
    sub = shop.items[C.SUBCATEGORY].astype("category").cat.codes.to_numpy()
    vecs = np.eye(sub.max() + 1)[sub] + 0.2 * np.random.default_rng(0).normal(size=(len(sub), sub.max() + 1))
    heavy = shop.interactions.groupby(C.USER).size()
    users = heavy[heavy >= 40].index[:60]
    tiered = discover_all(shop.interactions, Catalogue.from_items(shop.items, vecs), users=users)
    r = recovery(tiered, shop.truth, shop.items[C.SUBCATEGORY].to_numpy())
    assert r["summary"].loc["all", "core found as core"] > 0.5  # a random pick among ~4 true interests: ~0.25
