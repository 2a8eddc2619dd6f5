"""Tiering judged by a ground truth: the user split, recovery tables, the fit on validation users, and the
per-true-tier recall of lists, on cases whose answers can be computed by hand."""
import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.catalogue import Catalogue
from course_lib.recovery import (add_truth_metrics, ceilings, fit_tier_rules, recovery, split_users, tier_score,
                                 truth_metrics)
from course_lib.tiers import TierConfig, discover_all, retier
from test_tiers import CAT, ITEMS, events, shop_vectors, story

LABELS = ITEMS[C.SUBCATEGORY].to_numpy()
TRUTH = pd.DataFrame({C.USER: ["u"] * 3, C.INTEREST: ["A", "B", "C"], C.TIER: ["core", "emerging", "fading"]})


def test_split_users_is_seeded_disjoint_and_complete():
    users = [f"u{k}" for k in range(101)]
    val, held = split_users(users, 0.5, seed=3)
    assert set(val) | set(held) == set(users) and not set(val) & set(held) and len(val) == 50
    assert split_users(list(reversed(users)), 0.5, seed=3) == (val, held)  # order of the input does not matter
    assert split_users(users, 0.5, seed=4) != (val, held)
    assert len(split_users(users, 0.1, seed=3)[0]) == 10
    with pytest.raises(ValueError, match="frac must be < 1"):
        split_users(users, 1.0)
    with pytest.raises(ValueError, match="need at least 2 users"):
        split_users(["a"], 0.5)


def test_recovery_on_the_story():
    tiered = discover_all(story(), CAT)
    r = recovery(tiered, TRUTH, LABELS)
    s = r["summary"].loc["all"]
    assert s["core found as core"] == 1 and s["emerging recall"] == 1 and s["fading precision"] == 1
    assert s["|found − true| interests"] == 0
    assert r["confusion"].loc["emerging", "emerging"] == 1
    assert r["pairs"].set_index("label")["events"].to_dict() == {"A": 20, "B": 8, "C": 6}


def test_recovery_counts_misses_exploration_and_wrong_tiers():
    log = pd.concat([events([(0, 0), (1, 60), (2, 120), (0, 170), (12, 170), (13, 171)], "v")])
    tiered = discover_all(log, CAT)  # A: 4 events (core), C: 2 recent ones
    truth = pd.DataFrame({C.USER: ["v", "v"], C.INTEREST: ["A", "B"], C.TIER: ["core", "fading"]})
    r = recovery(tiered, truth, LABELS)
    pairs = r["pairs"].set_index("label")
    assert pairs.loc["A", "found"] == "core" and pairs.loc["B", "found"] == "missed"
    assert pairs.loc["C", "true"] == "none (exploration)" and pairs.loc["B", "events"] == 0
    assert r["counts"].loc[0, "found"] == 2 and r["counts"].loc[0, "true"] == 2
    assert np.isnan(r["summary"].loc["all", "fading precision"]) and r["summary"].loc["all", "fading recall"] == 0


def test_ceilings_explain_a_recall_by_the_events_left():
    pairs = pd.DataFrame({C.USER: list("abcd"), "label": "x", "true": "emerging",
                          "found": ["emerging", "missed", "missed", "secondary"], "events": [3, 0, 1, 2]})
    c = ceilings({"pairs": pairs}, min_events=2).set_index("true tier").loc["emerging"]
    assert c["true interests"] == 4 and c["with enough events"] == 2 and c["ceiling"] == 0.5
    assert c["recall"] == 0.25 and c["recall among those"] == 0.5


def test_tier_score_is_the_mean_of_core_and_two_f1s():
    row = pd.Series({"core found as core": 0.9, "emerging precision": 0.5, "emerging recall": 0.5,
                     "fading precision": 1.0, "fading recall": 0.0})
    assert tier_score(row) == pytest.approx((0.9 + 0.5 + 0.0) / 3)


def test_fit_picks_the_rule_that_recovers_the_truth():
    tiered = discover_all(story(), CAT)
    table, best = fit_tier_rules(tiered, TRUTH, LABELS, {"half_life_days": [30, 100_000],
                                                          "fading_trend": [0.5, 2.0]})
    assert best.half_life_days == 30 and table.loc[0, "score"] == 1.0
    assert table.attrs["skipped"] == 2  # fading_trend 2.0 is above the default emerging_trend: invalid, skipped
    assert type(best.half_life_days) is int
    with pytest.raises(ValueError, match="change which events form an interest"):
        fit_tier_rules(tiered, TRUTH, LABELS, {"distance_threshold": [0.5]})
    with pytest.raises(ValueError, match="grid is empty"):
        fit_tier_rules(tiered, TRUTH, LABELS, {})


def test_truth_metrics_by_hand():
    train = events([(0, 1), (6, 2)])
    test = events([(1, 10), (2, 11), (7, 12), (12, 13), (0, 14)])  # A: 1, 2 (new), 0 (seen); B: 7; C: 12
    truth = pd.DataFrame({C.USER: ["u"] * 3, C.INTEREST: ["A", "B", "C"], C.TIER: ["core", "secondary", "emerging"]})
    lists = np.array([[1, 12, 17, -1]])
    m = truth_metrics(lists, ["u"], train, test, CAT, truth, LABELS).iloc[0]
    assert m["core-interest recall"] == 0.5  # item 1 of {1, 2}; the seen item 0 is not relevant
    assert m["secondary-interest recall"] == 0.0 and m["emerging-interest recall"] == 1.0
    assert np.isnan(m["fading-interest recall"])
    assert m["interest coverage"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="one label per catalogue item"):
        truth_metrics(lists, ["u"], train, test, CAT, truth, LABELS[:5])


def test_truth_metrics_join_the_evaluation_and_pair(shop):
    from course_lib.baselines import Content, Popularity
    from course_lib.data import split_by_time
    from course_lib.evaluate import evaluate

    cat = Catalogue.from_items(shop.items, shop_vectors(shop, noise=0.3))
    keep = shop.interactions[C.USER].drop_duplicates().iloc[:300]
    log = shop.interactions[shop.interactions[C.USER].isin(keep)]
    split = split_by_time(log, test_frac=0.2)
    ev = evaluate({"popularity": Popularity(cat), "content": Content(cat, fallback="popularity")},
                  split.train, split.test, cat, 10, with_auc=False)
    add_truth_metrics(ev, split.train, split.test, cat, shop.truth, shop.items[C.SUBCATEGORY].to_numpy())
    assert {"emerging-interest recall", "interest coverage"} <= set(ev.per_user.columns)
    p = ev.compare("content", "popularity", "interest coverage", n_boot=100)
    assert p.n == ev.users["evaluated"] and p.mean_a > p.mean_b  # one user vector stays near its interests
    users, lists = ev.lists["content"]
    direct = truth_metrics(lists, users, split.train, split.test, cat, shop.truth, shop.items[C.SUBCATEGORY])
    joined = ev.per_user[ev.per_user["method"] == "content"].set_index("user")
    assert np.allclose(joined.loc[direct["user"], "interest coverage"], direct["interest coverage"])


def test_shop_recovery_beats_chance_and_retier_moves_it(shop):
    """On real-sized data: the discovered core matches the true core far more often than a random interest would,
    and a stricter fading rule (a long quiet period) finds fewer fading interests."""
    cat = Catalogue.from_items(shop.items, shop_vectors(shop, noise=0.2))
    heavy = shop.interactions.groupby(C.USER).size()
    users = heavy[heavy >= 40].index[:80]
    tiered = discover_all(shop.interactions, cat, users=users)
    labels = shop.items[C.SUBCATEGORY].to_numpy()
    s = recovery(tiered, shop.truth, labels)["summary"].loc["all"]
    assert s["core found as core"] > 0.7  # a random pick among ~4 true interests: ~0.25
    assert s["|found − true| interests"] < 1.5
    strict = recovery(retier(tiered, TierConfig(fading_quiet_days=120)), shop.truth, labels)["summary"].loc["all"]
    assert strict["fading recall"] < s["fading recall"]
