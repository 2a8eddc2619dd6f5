"""Explanations: each history item's term of the score is exact (the terms add up to the score the model ranks by),
the sentence is built from the evidence only, and removing the cited items matters more than removing random ones."""
import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib.baselines import EASE, Content, ItemKNN
from course_lib.catalogue import Catalogue
from course_lib.data import make_split
from course_lib.explain import explain, fidelity
from course_lib.serving import MultiInterest
from course_lib.tiers import discover_all


@pytest.fixture(scope="module")
def setup(shop):
    rng = np.random.default_rng(0)
    sub = shop.items[C.SUBCATEGORY].astype("category").cat.codes.to_numpy()
    vecs = np.eye(sub.max() + 1)[sub] + 0.3 * rng.normal(size=(len(sub), sub.max() + 1))  # stand-in "text" vectors
    cat = Catalogue.from_items(shop.items, vecs)
    split = make_split(shop.interactions, "global", 0.2)
    users = split.train.groupby(C.USER).size().sort_values().index[-40:].tolist()  # active users
    return cat, split.train, users


@pytest.mark.parametrize("make", [lambda cat: Content(cat, half_life_days=30), lambda cat: EASE(cat),
                                  lambda cat: ItemKNN(cat)], ids=["content", "EASE", "item-kNN"])
def test_terms_add_up_to_the_score(setup, make):
    cat, train, users = setup
    model = make(cat).fit(train)
    for user in users[:5]:
        item = cat.ids[model.recommend([user], 1)[0, 0]]
        exp = explain(model, user, item)
        total = sum(c.value for c in exp.contributions)
        assert total == pytest.approx(exp.score, abs=1e-4)
        assert exp.score == pytest.approx(float(model.score([user])[0, cat.row[item]]), abs=1e-6)
        assert sum(c.share for c in exp.contributions) == pytest.approx(1.0)
        seen = set(train.loc[train[C.USER] == user, C.ITEM])
        assert {c.item_id for c in exp.contributions} <= seen  # only the user's own history is ever cited
        assert exp.sentence.startswith("Because you") and exp.cited()[0].title in exp.sentence


def test_multi_interest_names_the_interest_and_decomposes_its_cosine(setup):
    cat, train, users = setup
    model = MultiInterest(cat, k=10).fit(train)
    user = users[-1]
    item = cat.ids[model.recommend([user], 1)[0, 0]]
    exp = explain(model, user, item)
    assert exp.interest and exp.interest["tier"] in ("core", "secondary", "emerging", "fading", "peripheral")
    c = np.stack([it.centroid for it in model.tiered_[user].interests])
    v = model.catalogue.vectors[cat.row[item]]  # the model ranks in its own (unit) space
    assert sum(t.value for t in exp.contributions) == pytest.approx(float((c @ v).max()), abs=1e-4)
    assert f"interest in {exp.interest['name']}" in exp.sentence


def test_tiers_name_the_interest_for_other_methods(setup):
    cat, train, users = setup
    model = EASE(cat).fit(train)
    tiered = discover_all(train, cat, users=users[:3])
    exp = explain(model, users[0], cat.ids[model.recommend([users[0]], 1)[0, 0]], tiered=tiered)
    assert exp.interest is not None and exp.interest["name"]


def test_a_new_user_is_told_the_truth(setup):
    cat, train, _ = setup
    exp = explain(EASE(cat).fit(train), "stranger", cat.ids[0])
    assert exp.source == "popularity" and not exp.contributions
    assert exp.sentence.startswith("Popular with others") and "no history" in exp.sentence
    desc = Content(cat, user_vecs={"stranger": cat.vectors[5]}, fallback="description").fit(train)
    assert explain(desc, "stranger", cat.ids[5]).source == "description"


def test_bad_input(setup):
    cat, train, users = setup
    model = EASE(cat).fit(train)
    with pytest.raises(ValueError, match="'nope'"):
        explain(model, users[0], "nope")
    from course_lib.baselines import Popularity

    with pytest.raises(TypeError, match="knows content, multi-interest, item-kNN and EASE"):
        explain(Popularity(cat).fit(train), users[0], cat.ids[0])


def test_cited_items_matter_more_than_random_ones(setup):
    cat, train, users = setup
    for model in (EASE(cat).fit(train), Content(cat, half_life_days=30).fit(train)):
        f = fidelity(model, users, k=10, n_cite=3)
        assert len(f) >= 30
        cited, rand = f["leaves top-10 (cited removed)"].mean(), f["leaves top-10 (random removed)"].mean()
        assert cited > rand, (type(model).__name__, cited, rand)
