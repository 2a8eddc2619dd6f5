"""Interest discovery and tier rules on hand-built users whose right answer is obvious, against independent
references (scikit-learn's clustering, a table-based version of the rule), plus edge cases and bad settings."""
import math

import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.catalogue import Catalogue
from course_lib.segments import user_segments
from course_lib.tiers import (TierConfig, cluster_history, discover, discover_all, merge_near_duplicates,
                              name_interests, retier, tfidf_terms, tier_rule, with_settings)

# three well-separated "topics" of 6 items each: rows 0-5 near e0, 6-11 near e1, 12-17 near e2
rng = np.random.default_rng(0)
VECS = np.repeat(np.eye(3), 6, axis=0) * 3 + 0.05 * rng.normal(size=(18, 3))
ITEMS = pd.DataFrame({C.ITEM: [f"i{k}" for k in range(18)], C.SUBCATEGORY: ["A"] * 6 + ["B"] * 6 + ["C"] * 6})
CAT = Catalogue.from_items(ITEMS, VECS)
START = pd.Timestamp("2026-01-01")


def events(spec, user="u"):
    """spec: list of (item row, day)."""
    return pd.DataFrame({C.USER: user, C.ITEM: [f"i{i}" for i, _ in spec],
                         C.TIMESTAMP: [START + pd.Timedelta(days=d) for _, d in spec], C.WEIGHT: 1.0})


def story():
    """Topic A all along (core), topic C only in the first month (fading), topic B only in the last month (emerging)."""
    a = [(k % 3, d) for k, d in enumerate(range(0, 180, 9))]  # the user sees items 0-2, 6-8, 12-14 only
    c = [(12 + k % 3, d) for k, d in enumerate(range(0, 30, 5))]
    b = [(6 + k % 3, d) for k, d in enumerate(range(150, 180, 4))]
    return events(a + b + c)


def topic(it):
    return ITEMS[C.SUBCATEGORY].iloc[it.medoid]


def test_the_obvious_story():
    ui = discover(story(), CAT, TierConfig())
    assert {topic(it): it.tier for it in ui.interests} == {"A": "core", "B": "emerging", "C": "fading"}
    assert ui.interests[0].tier == "core"  # ordered core, secondary, emerging, fading, peripheral
    assert np.isclose(sum(it.share for it in ui.interests), 1)
    assert np.isclose(sum(it.event_share for it in ui.interests), 1)
    assert (ui.labels >= 0).all() and len(ui.labels) == len(story())
    trend = {topic(it): it.trend for it in ui.interests}
    assert trend["B"] > 1.2 > 0.8 > trend["C"] and 0.8 < trend["A"] < 1.2


def test_trend_is_decayed_share_over_event_share():
    """trend = (Σ 2^(−age/h) of the interest / Σ over all events) / (its events / all events), by hand."""
    h = events([(0, 0), (1, 10), (6, 20), (7, 30), (8, 40)])  # A: two old events, B: three recent ones
    ui = discover(h, CAT, TierConfig(half_life_days=30))
    age = np.array([40, 30, 20, 10, 0], dtype=float)
    w = 2 ** (-age / 30)
    expected_b = (w[2:].sum() / w.sum()) / (3 / 5)
    b = [it for it in ui.interests if topic(it) == "B"][0]
    assert b.trend == pytest.approx(expected_b) and b.importance == pytest.approx(w[2:].sum())


def test_the_half_life_is_read_by_the_trend_rules():
    """A very long memory makes every interest steady: no emerging, no fading. A short one sees both."""
    tiers = lambda cfg: {topic(it): it.tier for it in discover(story(), CAT, cfg).interests}  # noqa: E731
    assert tiers(TierConfig(half_life_days=30)) == {"A": "core", "B": "emerging", "C": "fading"}
    assert tiers(TierConfig(half_life_days=100_000)) == {"A": "core", "B": "secondary", "C": "secondary"}


def test_importance_is_time_decayed():
    h = events([(0, 0), (6, 90)])  # two one-offs, one old, one at the reference time
    ui = discover(h, CAT, TierConfig(half_life_days=90, min_events=1))
    imp = {topic(it): it.importance for it in ui.interests}
    assert imp["B"] == pytest.approx(1.0) and imp["A"] == pytest.approx(0.5)


@pytest.mark.parametrize("spec,expected", [
    ([], []),
    ([(0, 5)], ["core"]),  # one event is all we know: it is the core for now
    ([(0, 5), (1, 9)], ["core"]),
    ([(0, 5), (0, 5), (0, 5)], ["core"]),  # the same item, same time, repeated
    ([(0, 5), (6, 9)], ["core", "peripheral"]),  # one-offs only: still a core (the latest, without a description)
])
def test_tiny_users(spec, expected):
    ui = discover(events(spec), CAT, TierConfig())
    assert ui.tiers() == expected
    assert all(np.isfinite(it.share) and np.isfinite(it.importance) for it in ui.interests)
    if len(spec) == 2 and spec[1][0] == 6:
        assert topic(ui.interests[0]) == "B"


def test_the_self_description_breaks_a_tie_between_one_offs():
    h = events([(0, 5), (6, 9)])
    ui = discover(h, CAT, TierConfig(), description=[1.0, 0.0, 0.0])  # "I like topic A"
    assert topic(ui.interests[0]) == "A" and ui.tiers() == ["core", "peripheral"]
    with pytest.raises(ValueError, match="description has 2 dimensions, the catalogue's vectors 3"):
        discover(h, CAT, TierConfig(), description=[1.0, 0.0])


def test_all_events_at_one_time_have_no_trend():
    h = events([(0, 3), (1, 3), (6, 3), (7, 3), (12, 3)])
    ui = discover(h, CAT, TierConfig())
    assert all(np.isnan(it.trend) for it in ui.interests) and not ui.trends_read
    assert set(ui.tiers()) <= {"core", "secondary", "peripheral"}
    assert ui.tiers().count("core") == 1


def test_unknown_item_is_reported():
    h = events([(0, 1)])
    h.loc[0, C.ITEM] = "nope"
    with pytest.raises(ValueError, match="not in the catalogue.*'nope'"):
        discover(h, CAT)


def test_average_linkage_matches_scikit_learn():
    """The library clusters with SciPy; scikit-learn's AgglomerativeClustering is the independent reference."""
    from sklearn.cluster import AgglomerativeClustering

    r = np.random.default_rng(1)
    for trial in range(20):
        centres = r.normal(size=(r.integers(1, 5), 16))
        x = centres[r.integers(len(centres), size=r.integers(2, 40))] + r.uniform(0.1, 0.8) * r.normal(size=(1, 16))
        x = x + 0.3 * r.normal(size=x.shape)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        t = float(r.uniform(0.2, 0.9))
        ours = cluster_history(x, TierConfig(distance_threshold=t, merge_cosine=1.0))
        ref = AgglomerativeClustering(n_clusters=None, distance_threshold=t, linkage="average",
                                      metric="cosine").fit_predict(x)
        assert pd.crosstab(ours, ref).astype(bool).sum(axis=1).eq(1).all(), trial  # the same partition
        assert len(set(ours)) == len(set(ref)), trial


def test_near_duplicates_merge():
    x = np.array([[1, 0, 0], [0.98, 0.2, 0], [0, 1, 0], [0, 0.97, 0.24]], dtype=float)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert merge_near_duplicates(x, np.array([0, 1, 2, 3]), 0.9).tolist() == [0, 0, 1, 1]
    assert merge_near_duplicates(x, np.array([0, 1, 2, 3]), 1.0).tolist() == [0, 1, 2, 3]
    assert merge_near_duplicates(x, np.array([0, 1, 2, 3]), -1.0).tolist() == [0, 0, 0, 0]


def test_kmeans_option():
    ui = discover(story(), CAT, TierConfig(clustering="kmeans"))
    assert 2 <= len(ui.interests) <= 8
    assert {topic(it) for it in ui.interests if it.tier == "core"} == {"A"}


def test_max_interests_caps_the_non_peripheral_ones():
    h = events([(0, 1), (1, 2), (2, 3), (6, 4), (7, 5), (12, 6), (13, 7)])  # A: 3 events, B: 2, C: 2
    assert discover(h, CAT, TierConfig()).tiers().count("peripheral") == 0
    capped = discover(h, CAT, TierConfig(max_interests=2))
    assert capped.tiers().count("peripheral") == 1 and capped.interests[0].events == 3


@pytest.mark.parametrize("change,error,match", [
    ({"emerging_trend": -5}, ValueError, "emerging_trend must be >= 0, got -5.0"),
    ({"emerging_trend": float("nan")}, ValueError, "emerging_trend must be a finite number, got nan"),
    ({"fading_trend": -0.1}, ValueError, "fading_trend must be >= 0"),
    ({"fading_trend": 1.5}, ValueError, "fading_trend must be below emerging_trend"),
    ({"emerging_new_frac": 1.5}, ValueError, "emerging_new_frac must be <= 1, got 1.5"),
    ({"emerging_new_frac": -0.2}, ValueError, "emerging_new_frac must be >= 0"),
    ({"emerging_new_frac": float("nan")}, ValueError, "emerging_new_frac must be a finite number"),
    ({"min_share": -0.1}, ValueError, "min_share must be >= 0"),
    ({"min_share": float("nan")}, ValueError, "min_share must be a finite number"),
    ({"min_recent_events": -1}, ValueError, "min_recent_events must be >= 0, got -1"),
    ({"kmeans_per_log2": 0}, ValueError, "kmeans_per_log2 must be > 0, got 0.0"),
    ({"kmeans_per_log2": -1.0}, ValueError, "kmeans_per_log2 must be > 0"),
    ({"max_interests": 2.5}, TypeError, r"max_interests must be an integer, got 2.5 \(float\)"),
    ({"max_interests": "8"}, TypeError, "max_interests must be an integer, got '8'"),
    ({"max_interests": 0}, ValueError, "max_interests must be >= 1"),
    ({"min_events": 0}, ValueError, "min_events must be >= 1"),
    ({"half_life_days": 0}, ValueError, "half_life_days must be > 0"),
    ({"fading_quiet_days": -3}, ValueError, "fading_quiet_days must be >= 0"),
    ({"distance_threshold": 0}, ValueError, "distance_threshold must be > 0"),
    ({"merge_cosine": 1.5}, ValueError, "merge_cosine must be <= 1"),
    ({"clustering": "dbscan"}, ValueError, r"clustering must be one of \('average', 'kmeans'\)"),
])
def test_bad_settings_get_one_clear_line(change, error, match):
    with pytest.raises(error, match=match) as e:
        TierConfig(**change)
    assert "\n" not in str(e.value) and next(iter(change)) in str(e.value)


def test_with_settings_validates_and_names_unknown_knobs():
    with pytest.raises(ValueError, match="half_life_days must be > 0"):
        with_settings(TierConfig(), half_life_days=0)
    with pytest.raises(ValueError, match="TierConfig has no setting 'halflife'"):
        with_settings(TierConfig(), halflife=30)
    with pytest.raises(TypeError, match="cfg must be a TierConfig"):
        discover(story(), CAT, {"half_life_days": 30})


# ---- the rule, written a second way: one table per user, vectorised ---------------------------------------------
def table_rule(ui, cfg):
    """The tier rule from a table of the interests' facts, with pandas (an independent reference)."""
    t = pd.DataFrame({"events": [it.events for it in ui.interests], "imp": [it.importance for it in ui.interests],
                      "aff": [it.affinity for it in ui.interests], "share": [it.event_share for it in ui.interests],
                      "trend": [it.trend for it in ui.interests], "quiet": [it.quiet_days for it in ui.interests],
                      "first_age": [it.ages.max() for it in ui.interests]})
    if t.empty:
        return []
    order = t.sort_values(["events", "imp"], ascending=False, kind="stable").index
    t["small"] = ~t.index.isin(order[:cfg.max_interests]) | (t.events < cfg.min_events) | (t.share < cfg.min_share)
    pool = t[~t.small] if (~t.small).any() else t
    core = pool.sort_values(["events", "aff", "imp"], ascending=False, kind="stable").index[0]
    new = (ui.ages.max() - t.first_age) >= (1 - cfg.emerging_new_frac) * ui.span_days
    rising = ui.trends_read & (t.trend >= cfg.emerging_trend) & new
    falling = ui.trends_read & (t.trend <= cfg.fading_trend) & (t.quiet >= cfg.fading_quiet_days)
    tier = np.select([t.index == core, t.small, rising, falling], ["core", "peripheral", "emerging", "fading"],
                     "secondary")
    return tier.tolist()


def shop_vectors(shop, noise=0.6, seed=0):
    sub = shop.items[C.SUBCATEGORY].astype("category").cat.codes.to_numpy()
    return np.eye(sub.max() + 1)[sub] + noise * np.random.default_rng(seed).normal(size=(len(sub), sub.max() + 1))


@pytest.mark.parametrize("cfg", [TierConfig(), TierConfig(half_life_days=30, emerging_trend=1.5, fading_trend=0.5,
                                                          fading_quiet_days=45, emerging_new_frac=0.5, max_interests=2)])
def test_the_rule_agrees_with_a_table_version_on_shop_users(shop, cfg):
    cat = Catalogue.from_items(shop.items, shop_vectors(shop))
    users = shop.interactions[C.USER].drop_duplicates().iloc[:250]
    desc = {u: np.random.default_rng(1).normal(size=cat.dim) for u in users[::3]}
    tiered = discover_all(shop.interactions, cat, cfg, users=users, descriptions=desc)
    checked = 0
    for ui in tiered.values():
        assert tier_rule(ui, cfg) == table_rule(ui, cfg) == ui.tiers()
        checked += len(ui.interests)
    assert checked > 500
    found = {t for ui in tiered.values() for t in ui.tiers()}
    assert found == {"core", "secondary", "emerging", "fading", "peripheral"}  # every branch was exercised


def test_the_rule_shown_in_notebook_04_is_the_library_rule(shop):
    """The fifteen lines a learner reads in notebook 04 (cell ``def my_tiers``) give the library's tiers."""
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "04_tiering.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    source = next(c for c in cells if c.startswith("def my_tiers("))
    assert 12 <= len(source.splitlines()) <= 20  # about fifteen readable lines
    space: dict = {}
    exec(source, space)
    cat = Catalogue.from_items(shop.items, shop_vectors(shop))
    users = shop.interactions[C.USER].drop_duplicates().iloc[:200]
    for cfg in (TierConfig(), TierConfig(half_life_days=30, fading_quiet_days=45, emerging_new_frac=0.5,
                                         max_interests=2)):
        tiered = discover_all(shop.interactions, cat, cfg, users=users)
        assert all(space["my_tiers"](ui, cfg) == tier_rule(ui, cfg) for ui in tiered.values())


def test_retier_equals_discovering_again(shop):
    cat = Catalogue.from_items(shop.items, shop_vectors(shop))
    users = shop.interactions[C.USER].drop_duplicates().iloc[:80]
    base = discover_all(shop.interactions, cat, TierConfig(), users=users)
    other = TierConfig(half_life_days=30, fading_quiet_days=30)
    again = discover_all(shop.interactions, cat, other, users=users)
    moved = retier(base, other)
    for u in users:
        assert [(it.members.tolist(), it.tier) for it in moved[u].interests] == \
               [(it.members.tolist(), it.tier) for it in again[u].interests]
        assert [it.trend for it in moved[u].interests] == pytest.approx([it.trend for it in again[u].interests],
                                                                         nan_ok=True)
    assert any(a.tiers() != b.tiers() for a, b in zip(base.values(), moved.values()))
    assert [ui.tiers() for ui in base.values()] == [ui.tiers() for ui in discover_all(
        shop.interactions, cat, TierConfig(), users=users).values()]  # retier left the original alone


def test_names_come_from_the_nearest_label():
    class Enc:  # encodes a label word to the topic axis it names
        def encode(self, words):
            return np.array([[1.0 if w == t else 0.0 for t in ("alpha", "beta", "gamma")] for w in words])

    tiered = {"u": discover(story(), CAT)}
    name_interests(tiered, {"Topic A": "alpha", "Topic B": "beta", "Topic C": "gamma"}, Enc())
    assert {topic(it): it.name for it in tiered["u"].interests} == {"A": "Topic A", "B": "Topic B", "C": "Topic C"}
    with pytest.raises(ValueError, match="label_words is empty"):
        name_interests(tiered, {}, Enc())


def test_tfidf_terms():
    assert tfidf_terms(["red running shoes", "running shoes for trails", "fast running"], top=1) == ["running"]


def test_segments():
    train = pd.DataFrame({C.USER: ["h"] * 20 + ["t"] * 2 + ["m"] * 6})
    assert user_segments(train, ["h", "t", "m", "x"]).to_dict() == {"h": "head", "t": "tail", "m": "torso", "x": "cold"}


def test_discover_all_uses_one_reference_time():
    log = pd.concat([story(), events([(0, 10), (1, 20)], user="v")])
    tiered = discover_all(log, CAT)
    last = log[C.TIMESTAMP].max()
    v = tiered["v"].interests[0]
    assert v.quiet_days == pytest.approx((last - (START + pd.Timedelta(days=20))).days)
    assert discover_all(log, CAT, users=["nobody"])["nobody"].interests == []
    assert math.isclose(sum(it.share for it in tiered["u"].interests), 1)
